//! `POST /api/v1/uploads/simple`: a small file in one multipart/form-data
//! request (fields `kind`, optional `room` and `at_ms`, one `file` part).
//! The file part is streamed to a staging file and refused with 413 as soon
//! as it passes `max_simple_upload_bytes`; then the handler's `check` and
//! `completed` run as for a resumable upload.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chalktalk_protocol::MediaKind;
use serde_json::{Map, Value};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::staging::{self, io_error, unix_ms};
use super::uploads::check_fields;
use super::{ApiError, CompletedUpload, HttpState, NewUpload, authenticate};
use chalktalk_services::auth::Claims;

/// Longest text field (`kind`, `room`, `at_ms`), in bytes.
const MAX_TEXT_FIELD: usize = 1024;

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(e.body_text())
    } else {
        ApiError::new(e.status(), "bad_request", e.body_text())
    }
}

fn timeout() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        "the body sent nothing for too long",
    )
}

async fn text_field(mut field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(ApiError::invalid_field(name, "longer than 1024 bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::invalid_field(name, "not UTF-8"))
}

/// What the form carried.
#[derive(Default)]
struct Form {
    kind: Option<String>,
    room: Option<String>,
    at_ms: Option<String>,
    /// (filename, content type, size) of the stored file part.
    file: Option<(String, Option<String>, u64)>,
}

/// Reads the form, streaming the file part to `path`.
async fn read_form(
    multipart: &mut Multipart,
    path: &std::path::Path,
    max: u64,
    idle: Duration,
) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(mut field) = tokio::time::timeout(idle, multipart.next_field())
        .await
        .map_err(|_| timeout())?
        .map_err(multipart_error)?
    {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "kind" => form.kind = Some(text_field(field, "kind").await?),
            "room" => form.room = Some(text_field(field, "room").await?),
            "at_ms" => form.at_ms = Some(text_field(field, "at_ms").await?),
            "file" => {
                if form.file.is_some() {
                    return Err(ApiError::invalid_field("file", "only one file per request"));
                }
                let filename = field.file_name().unwrap_or("").to_string();
                let content_type = field.content_type().map(str::to_string);
                let file = tokio::fs::File::create(path)
                    .await
                    .map_err(|e| io_error("cannot create the staging file", e))?;
                let mut out = BufWriter::with_capacity(256 * 1024, file);
                let mut size = 0u64;
                while let Some(chunk) = tokio::time::timeout(idle, field.chunk())
                    .await
                    .map_err(|_| timeout())?
                    .map_err(multipart_error)?
                {
                    size += chunk.len() as u64;
                    if size > max {
                        return Err(ApiError::too_large(format!(
                            "the file is larger than {max} bytes; use a resumable upload"
                        ))
                        .with("max_bytes", max));
                    }
                    out.write_all(&chunk)
                        .await
                        .map_err(|e| io_error("cannot write the staging file", e))?;
                }
                out.flush()
                    .await
                    .map_err(|e| io_error("cannot write the staging file", e))?;
                out.get_ref()
                    .sync_all()
                    .await
                    .map_err(|e| io_error("cannot sync the staging file", e))?;
                form.file = Some((filename, content_type, size));
            }
            // Unknown parts are skipped (but still count against the limit).
            _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
        }
    }
    Ok(form)
}

/// Validates the form into a [`NewUpload`].
fn new_upload(form: Form) -> Result<NewUpload, ApiError> {
    let mut fields = Map::new();
    let mut bad = |k: &str, v: &str| {
        fields.insert(k.into(), Value::String(v.into()));
    };
    let kind = match form.kind.as_deref() {
        None => {
            bad("kind", "required");
            None
        }
        Some(k) => serde_json::from_value::<MediaKind>(Value::String(k.into()))
            .map_err(|_| bad("kind", "must be \"video\", \"voice_over\" or \"document\""))
            .ok(),
    };
    let at_ms = match form.at_ms.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| bad("at_ms", "must be a number"))
            .ok(),
    };
    let (filename, content_type, size) = match form.file {
        Some(f) => f,
        None => {
            bad("file", "required");
            (String::new(), None, 0)
        }
    };
    let req = NewUpload {
        kind: kind.unwrap_or(MediaKind::Video),
        filename,
        size,
        content_type,
        room: form.room,
        at_ms,
    };
    let mut rest = Map::new();
    check_fields(&req, &mut rest);
    if req.size == 0 && !fields.contains_key("file") {
        rest.insert("file".into(), "must not be empty".into());
    }
    for (k, v) in rest {
        fields.entry(k).or_insert(v);
    }
    if fields.is_empty() {
        Ok(req)
    } else {
        Err(ApiError::validation(fields))
    }
}

/// Everything after the headers, in a task of its own.
async fn run(st: HttpState, user: Claims, mut multipart: Multipart) -> Result<Response, ApiError> {
    let dir = st.uploads.staging_dir.clone();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| io_error("cannot create the staging directory", e))?;
    let id = staging::new_id()?;
    let path = staging::data_path(&dir, &id);
    let started = unix_ms(SystemTime::now());
    let result = async {
        let (max, idle) = (
            st.uploads.max_simple_upload_bytes,
            st.uploads.body_idle_timeout,
        );
        let form = read_form(&mut multipart, &path, max, idle).await?;
        let req = new_upload(form)?;
        st.handler.check(&user, &req).await?;
        let upload = CompletedUpload {
            id: id.clone(),
            kind: req.kind,
            filename: req.filename,
            size: req.size,
            content_type: req.content_type,
            room: req.room,
            at_ms: req.at_ms,
            path: path.clone(),
        };
        st.handler.completed(&user, upload).await
    }
    .await;
    match result {
        Ok(value) => {
            let ms = unix_ms(SystemTime::now()).saturating_sub(started);
            tracing::info!(upload = %id, owner = %user.sub, ms, "simple upload completed");
            Ok(Json(value).into_response())
        }
        Err(e) => {
            if let Err(io) = staging::remove_file(&path).await {
                tracing::warn!(upload = %id, error = %io, "cannot remove a refused upload");
            }
            Err(e)
        }
    }
}

/// `POST /api/v1/uploads/simple`.
#[utoipa::path(post, path = "/api/v1/uploads/simple", tag = "uploads", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "multipart/form-data",
        description = "Fields `kind`?, `room`?, `at_ms`?, then the `file` part (at most 32 MiB)"),
    responses((status = 200, description = "Stored; the asset is queued for processing", body = crate::http::doc::UploadedAsset),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody), (status = 413, description = "File too large", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = crate::openapi::ErrorBody), (status = 422, description = "Bad fields or not usable media", body = crate::openapi::ErrorBody),
        (status = 429, description = "Upload rate limit", body = crate::openapi::ErrorBody), (status = 503, description = "Encoders busy", body = crate::openapi::ErrorBody)))]
pub(crate) async fn upload(
    State(st): State<HttpState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let user = authenticate(&st.auth, &headers).await?;
    let multipart = multipart.map_err(|e| {
        ApiError::unsupported_media_type(format!("expected multipart/form-data: {}", e.body_text()))
    })?;
    tokio::spawn(run(st, user, multipart))
        .await
        .map_err(|e| ApiError::internal(format!("upload task failed: {e}")))?
}
