//! Resumable uploads (tus-1.0-core-like): `POST /api/v1/uploads` creates an
//! upload from a JSON description, `HEAD`/`GET /api/v1/uploads/{id}` tell
//! the stored offset, `PATCH` appends one chunk at that offset (streamed to
//! the staging file, see `patch`), `DELETE` drops it. Only the creator
//! sees an upload; anyone else gets 404.

use std::time::SystemTime;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chalktalk_protocol::MediaKind;
use serde_json::{Map, Value, json};

use super::staging::{self, Record, io_error, unix_ms};
use super::{ApiError, HttpState, NewUpload, authenticate};
use chalktalk_services::auth::Claims;

mod patch;

pub(crate) const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
pub(crate) const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
pub(crate) const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");

/// Longest filename, in bytes.
pub(crate) const MAX_FILENAME_BYTES: usize = 255;
/// Longest room id, in bytes.
pub(crate) const MAX_ROOM_BYTES: usize = 128;
/// Longest content type, in bytes.
pub(crate) const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// Checks the fields shared by both kinds of upload; `fields` collects the
/// problems by field name.
pub(crate) fn check_fields(req: &NewUpload, fields: &mut Map<String, Value>) {
    let mut bad = |k: &str, v: &str| {
        fields.insert(k.into(), Value::String(v.into()));
    };
    if req.filename.is_empty() {
        bad("filename", "must not be empty");
    } else if req.filename.len() > MAX_FILENAME_BYTES {
        bad("filename", "longer than 255 bytes");
    } else if req.filename.chars().any(char::is_control) {
        bad("filename", "contains control characters");
    }
    if let Some(ct) = &req.content_type
        && (ct.is_empty()
            || ct.len() > MAX_CONTENT_TYPE_BYTES
            || !ct.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
    {
        bad("content_type", "must be 1-255 printable ASCII characters");
    }
    if let Some(room) = &req.room
        && (room.is_empty() || room.len() > MAX_ROOM_BYTES || room.chars().any(char::is_control))
    {
        bad("room", "must be 1-128 bytes without control characters");
    }
    if let Some(at) = req.at_ms
        && !(at.is_finite() && at >= 0.0)
    {
        bad("at_ms", "must be a finite number >= 0");
    }
}

/// Parses and validates the creation body.
fn parse_new(body: &[u8], max_bytes: u64) -> Result<NewUpload, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::bad_request("expected a JSON object"));
    };
    let mut fields = Map::new();
    let mut bad = |k: &str, v: &str| {
        fields.insert(k.into(), Value::String(v.into()));
    };
    let kind = match obj.get("kind") {
        None => {
            bad("kind", "required");
            None
        }
        Some(v) => serde_json::from_value::<MediaKind>(v.clone())
            .map_err(|_| bad("kind", "must be \"video\", \"voice_over\" or \"document\""))
            .ok(),
    };
    let text = |k: &str, bad: &mut dyn FnMut(&str, &str)| match obj.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            bad(k, "must be a string");
            None
        }
    };
    let filename = text("filename", &mut bad);
    if filename.is_none() && !obj.contains_key("filename") {
        bad("filename", "required");
    }
    let content_type = text("content_type", &mut bad);
    let room = text("room", &mut bad);
    let at_ms = match obj.get("at_ms") {
        None | Some(Value::Null) => None,
        Some(v) => v.as_f64().or_else(|| {
            bad("at_ms", "must be a number");
            None
        }),
    };
    let size = match obj.get("size") {
        None => {
            bad("size", "required");
            None
        }
        Some(v) => v.as_u64().or_else(|| {
            bad("size", "must be a whole number of bytes");
            None
        }),
    };
    if let Some(size) = size {
        if size > max_bytes {
            return Err(ApiError::too_large(format!(
                "size {size} is above the limit of {max_bytes} bytes"
            ))
            .with("max_bytes", max_bytes));
        }
        if size == 0 {
            bad("size", "must be at least 1 byte");
        }
    }
    let req = NewUpload {
        kind: kind.unwrap_or(MediaKind::Video),
        filename: filename.unwrap_or_default(),
        size: size.unwrap_or(0),
        content_type,
        room,
        at_ms,
    };
    // Type problems found above win over the value checks.
    let mut rest = Map::new();
    check_fields(&req, &mut rest);
    for (k, v) in rest {
        fields.entry(k).or_insert(v);
    }
    if fields.is_empty() {
        Ok(req)
    } else {
        Err(ApiError::validation(fields))
    }
}

fn location(id: &str) -> String {
    format!("/api/v1/uploads/{id}")
}

/// `POST /api/v1/uploads`.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", security(("bearer" = [])), request_body = crate::http::doc::NewUploadBody,
    responses((status = 201, description = "Created; PATCH the bytes to `Location`", body = crate::http::doc::UploadCreated),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed (e.g. not a member of `room`)", body = crate::openapi::ErrorBody),
        (status = 413, description = "Above the size limit", body = crate::openapi::ErrorBody), (status = 422, description = "Bad fields", body = crate::openapi::ErrorBody),
        (status = 429, description = "Upload rate limit", body = crate::openapi::ErrorBody), (status = 503, description = "Encoders busy", body = crate::openapi::ErrorBody)))]
pub(crate) async fn create(
    State(st): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let user = authenticate(&st.auth, &headers).await?;
    let body = body.map_err(|e| ApiError::new(e.status(), "bad_request", e.body_text()))?;
    let req = parse_new(&body, st.uploads.max_upload_bytes)?;
    st.handler.check(&user, &req).await?;
    let dir = &st.uploads.staging_dir;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io_error("cannot create the staging directory", e))?;
    let id = staging::new_id()?;
    let now = unix_ms(SystemTime::now());
    let rec = Record {
        id: id.clone(),
        owner: user.sub,
        kind: req.kind,
        filename: req.filename,
        size: req.size,
        content_type: req.content_type,
        room: req.room,
        at_ms: req.at_ms,
        offset: 0,
        created_ms: now,
        updated_ms: now,
    };
    let data = staging::data_path(dir, &id);
    let created = async {
        tokio::fs::File::create(&data).await?.sync_all().await?;
        staging::save(dir, &rec).await
    };
    if let Err(e) = created.await {
        let _ = staging::remove(dir, &id).await;
        return Err(io_error("cannot create the upload", e));
    }
    let expires_ms = rec.expires_ms(st.uploads.incomplete_ttl);
    tracing::info!(upload = %id, owner = %rec.owner, size = rec.size, "upload created");
    let body = json!({
        "id": id,
        "offset": 0,
        "size": rec.size,
        "max_chunk_bytes": st.uploads.max_chunk_bytes,
        "expires_ms": expires_ms,
    });
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location(&id)) {
        h.insert(header::LOCATION, v);
    }
    h.insert(UPLOAD_OFFSET, HeaderValue::from(0u64));
    h.insert(UPLOAD_LENGTH, HeaderValue::from(rec.size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The record of upload `id` if `user` owns it, else 404.
pub(crate) async fn owned(st: &HttpState, user: &Claims, id: &str) -> Result<Record, ApiError> {
    let rec = staging::load(&st.uploads.staging_dir, id)
        .await
        .map_err(|e| io_error("cannot read the upload", e))?;
    match rec {
        Some(rec) if rec.owner == user.sub => Ok(rec),
        _ => Err(ApiError::not_found("no such upload")),
    }
}

fn offset_headers(res: &mut Response, rec: &Record) {
    let h = res.headers_mut();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(rec.offset));
    h.insert(UPLOAD_LENGTH, HeaderValue::from(rec.size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `HEAD /api/v1/uploads/{id}`.
#[utoipa::path(head, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])), params(("id" = String, Path, description = "The upload id")),
    responses((status = 200, description = "`Upload-Offset` and `Upload-Length` headers: resume from the offset"),
        (status = 401, description = "No valid token"), (status = 404, description = "No such upload of the caller")))]
pub(crate) async fn head(
    State(st): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = authenticate(&st.auth, &headers).await?;
    let rec = owned(&st, &user, &id).await?;
    let mut res = StatusCode::OK.into_response();
    offset_headers(&mut res, &rec);
    Ok(res)
}

/// `GET /api/v1/uploads/{id}`.
#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])), params(("id" = String, Path, description = "The upload id")),
    responses((status = 200, description = "Where the upload stands", body = crate::http::doc::UploadStatus),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody), (status = 404, description = "No such upload of the caller", body = crate::openapi::ErrorBody)))]
pub(crate) async fn status(
    State(st): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = authenticate(&st.auth, &headers).await?;
    let rec = owned(&st, &user, &id).await?;
    let mut res = Json(json!({
        "id": rec.id,
        "offset": rec.offset,
        "size": rec.size,
        "complete": rec.offset == rec.size,
        "kind": rec.kind,
        "filename": rec.filename,
        "expires_ms": rec.expires_ms(st.uploads.incomplete_ttl),
    }))
    .into_response();
    offset_headers(&mut res, &rec);
    Ok(res)
}

/// `PATCH /api/v1/uploads/{id}`: checks the request, then appends the body
/// in a task of its own, so a client that goes away mid-body cannot cancel
/// the fsync and offset update of what was received.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])), params(("id" = String, Path, description = "The upload id")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream",
        description = "The next bytes; headers `Upload-Offset` (must equal the stored offset) and optional `Upload-Checksum: sha256 <base64>`"),
    responses((status = 204, description = "Stored; `Upload-Offset` is the new offset"),
        (status = 200, description = "The last chunk: the upload is complete and its asset created", body = crate::http::doc::UploadedAsset),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody), (status = 404, description = "No such upload of the caller", body = crate::openapi::ErrorBody),
        (status = 409, description = "`offset_mismatch` (with the stored `offset`) or `upload_busy`", body = crate::openapi::ErrorBody),
        (status = 413, description = "Chunk too large", body = crate::openapi::ErrorBody), (status = 415, description = "Wrong content type", body = crate::openapi::ErrorBody),
        (status = 422, description = "Completed but not usable media", body = crate::openapi::ErrorBody), (status = 460, description = "`checksum_mismatch`", body = crate::openapi::ErrorBody)))]
pub(crate) async fn patch(
    State(st): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let user = authenticate(&st.auth, &headers).await?;
    let req = patch::PatchRequest::parse(&headers)?;
    owned(&st, &user, &id).await?;
    let guard = st.locks.try_lock(&id).ok_or_else(|| {
        ApiError::conflict(
            "upload_busy",
            "another request is writing this upload; retry after HEAD",
        )
    })?;
    let job = tokio::spawn(patch::run(st, user, id, req, body, guard));
    job.await
        .map_err(|e| ApiError::internal(format!("upload task failed: {e}")))?
}

/// `DELETE /api/v1/uploads/{id}`.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])), params(("id" = String, Path, description = "The upload id")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such upload of the caller", body = crate::openapi::ErrorBody), (status = 409, description = "`upload_busy`", body = crate::openapi::ErrorBody)))]
pub(crate) async fn delete(
    State(st): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = authenticate(&st.auth, &headers).await?;
    owned(&st, &user, &id).await?;
    let _guard = st.locks.try_lock(&id).ok_or_else(|| {
        ApiError::conflict("upload_busy", "another request is writing this upload")
    })?;
    staging::remove(&st.uploads.staging_dir, &id)
        .await
        .map_err(|e| io_error("cannot remove the upload", e))?;
    tracing::info!(upload = %id, "upload deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<NewUpload, ApiError> {
        parse_new(v.as_bytes(), 1000)
    }

    #[test]
    fn creation_bodies() {
        let ok = parse(
            r#"{"kind":"voice_over","filename":"a.m4a","size":10,"room":"r1","at_ms":1500.5}"#,
        )
        .unwrap();
        assert_eq!(ok.kind, MediaKind::VoiceOver);
        assert_eq!((ok.size, ok.at_ms), (10, Some(1500.5)));
        assert_eq!(parse("{").unwrap_err().code, "bad_request");
        assert_eq!(parse("[1]").unwrap_err().code, "bad_request");
        assert_eq!(
            parse(r#"{"kind":"video","filename":"a","size":1001}"#)
                .unwrap_err()
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let e = parse(r#"{"kind":"gif","filename":"","size":0,"at_ms":-1,"room":""}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields = e.extra["fields"].as_object().unwrap();
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["at_ms", "filename", "kind", "room", "size"]);
        let e = parse(r#"{"size":"x","filename":7}"#).unwrap_err();
        let fields = e.extra["fields"].as_object().unwrap();
        assert_eq!(fields["filename"], "must be a string");
        assert_eq!(fields["kind"], "required");
        assert_eq!(fields["size"], "must be a whole number of bytes");
        let e = parse(r#"{"kind":"video","filename":"a\u0007b","size":5}"#).unwrap_err();
        assert!(e.extra["fields"]["filename"].is_string());
        let long = format!(
            r#"{{"kind":"video","filename":"{}","size":5}}"#,
            "x".repeat(256)
        );
        assert!(parse(&long).is_err());
    }
}
