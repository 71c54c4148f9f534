//! `PATCH /api/v1/uploads/{id}`: appends one chunk at the stored offset.
//!
//! The body is streamed into the staging file through a small buffer, never
//! held whole. The file is fsynced and then the new offset persisted before
//! the answer. The stored offset is the truth: bytes past it in the data
//! file (an unpersisted write before a crash, a discarded chunk) are cut off
//! before the next chunk is written.
//!
//! A body that ends early (the connection dropped, fewer bytes than
//! `Content-Length`, or nothing received for `body_idle_timeout`) keeps what
//! arrived when the request had no `Upload-Checksum`; with a checksum the
//! chunk is all or nothing.

use std::io::{self, SeekFrom};
use std::time::SystemTime;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::fs::File;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::{UPLOAD_CHECKSUM, UPLOAD_LENGTH, UPLOAD_OFFSET, owned};
use crate::http::staging::{self, LockGuard, Record, io_error, unix_ms};
use crate::http::{ApiError, HttpState};
use chalktalk_services::auth::Claims;

/// The only content type a PATCH body may have.
pub(crate) const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
const WRITE_BUFFER: usize = 256 * 1024;

/// The headers of a PATCH, checked before anything is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PatchRequest {
    pub offset: u64,
    pub declared_len: Option<u64>,
    /// SHA-256 the chunk must have.
    pub checksum: Option<[u8; 32]>,
}

impl PatchRequest {
    pub(crate) fn parse(headers: &HeaderMap) -> Result<PatchRequest, ApiError> {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let media_type = text(header::CONTENT_TYPE)
            .and_then(|ct| ct.split(';').next())
            .map(str::trim);
        if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(OFFSET_OCTET_STREAM)) {
            return Err(ApiError::unsupported_media_type(format!(
                "a PATCH body must be sent as Content-Type: {OFFSET_OCTET_STREAM}"
            )));
        }
        let offset = text(UPLOAD_OFFSET)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request("Upload-Offset: a non-negative integer is required")
            })?;
        let declared_len = text(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        let checksum = match text(UPLOAD_CHECKSUM) {
            None if headers.contains_key(UPLOAD_CHECKSUM) => {
                return Err(ApiError::bad_request("Upload-Checksum is not ASCII"));
            }
            None => None,
            Some(v) => Some(parse_checksum(v)?),
        };
        Ok(PatchRequest {
            offset,
            declared_len,
            checksum,
        })
    }
}

/// `sha256 <base64 digest>`.
fn parse_checksum(v: &str) -> Result<[u8; 32], ApiError> {
    let (algo, digest) = v
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::bad_request("Upload-Checksum: expected `sha256 <base64>`"))?;
    if !algo.eq_ignore_ascii_case("sha256") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_checksum",
            format!("checksum algorithm {algo:?} is not supported; use sha256"),
        ));
    }
    STANDARD
        .decode(digest.trim())
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .ok_or_else(|| {
            ApiError::bad_request("Upload-Checksum: the digest is not 32 bytes of base64")
        })
}

/// How the body ended.
enum End {
    Complete,
    Interrupted(String),
    TooLarge,
    WriteFailed(io::Error),
}

/// Copies the body to `file` (at its position), at most `limit` bytes.
/// Returns the bytes written, the end and the digest when asked for one.
async fn receive(
    file: &mut File,
    body: Body,
    limit: u64,
    declared_len: Option<u64>,
    idle: std::time::Duration,
    mut hasher: Option<Sha256>,
) -> (u64, End, Option<[u8; 32]>) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut end = loop {
        let frame = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => break End::Interrupted("no data for too long".into()),
            Ok(None) => break End::Complete,
            Ok(Some(Err(e))) => break End::Interrupted(e.to_string()),
            Ok(Some(Ok(frame))) => frame,
        };
        let n = frame.len() as u64;
        if received.saturating_add(n) > limit {
            break End::TooLarge;
        }
        if let Err(e) = out.write_all(&frame).await {
            break End::WriteFailed(e);
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&frame);
        }
        received += n;
    };
    if let End::Complete = end
        && declared_len.is_some_and(|d| received < d)
    {
        end = End::Interrupted("the body is shorter than its Content-Length".into());
    }
    if let Err(e) = out.flush().await
        && !matches!(end, End::WriteFailed(_))
    {
        end = End::WriteFailed(e);
    }
    (received, end, hasher.map(|h| h.finalize().into()))
}

fn no_content(rec: &Record) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(rec.offset));
    h.insert(UPLOAD_LENGTH, HeaderValue::from(rec.size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Cuts the data file back to the stored offset (a discarded chunk).
async fn discard(file: &File, rec: &Record) {
    if let Err(e) = file.set_len(rec.offset).await {
        tracing::warn!(upload = %rec.id, error = %e, "cannot truncate a discarded chunk");
    }
}

/// Persists `rec` with `received` more bytes (already written to `file`).
async fn commit(
    st: &HttpState,
    file: &File,
    rec: &mut Record,
    received: u64,
) -> Result<(), ApiError> {
    file.sync_data()
        .await
        .map_err(|e| io_error("cannot sync the upload", e))?;
    rec.offset += received;
    rec.updated_ms = unix_ms(SystemTime::now());
    staging::save(&st.uploads.staging_dir, rec)
        .await
        .map_err(|e| io_error("cannot save the upload offset", e))
}

/// The PATCH itself, holding the upload's lock.
pub(crate) async fn run(
    st: HttpState,
    user: Claims,
    id: String,
    req: PatchRequest,
    body: Body,
    _guard: LockGuard,
) -> Result<Response, ApiError> {
    let dir = st.uploads.staging_dir.clone();
    let mut rec = owned(&st, &user, &id).await?;
    let path = staging::data_path(&dir, &id);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .await
        .map_err(|e| io_error("cannot open the upload data", e))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| io_error("cannot stat the upload data", e))?
        .len();
    if len < rec.offset {
        // The data lost bytes the record counted (should not happen: data is
        // synced before the offset is saved). Resume from what is there.
        tracing::warn!(upload = %id, len, offset = rec.offset, "upload data shorter than its offset");
        rec.offset = 0;
        commit(&st, &file, &mut rec, len).await?;
    }
    if req.offset != rec.offset {
        return Err(ApiError::conflict(
            "offset_mismatch",
            format!("the upload is at offset {}, not {}", rec.offset, req.offset),
        )
        .with("offset", rec.offset));
    }
    if len > rec.offset {
        file.set_len(rec.offset)
            .await
            .map_err(|e| io_error("cannot truncate the upload data", e))?;
    }
    let remaining = rec.size - rec.offset;
    let limit = st.uploads.max_chunk_bytes.min(remaining);
    let too_large = || {
        let msg = if remaining <= st.uploads.max_chunk_bytes {
            format!("the chunk goes past the upload's size: {remaining} bytes remain")
        } else {
            format!(
                "a chunk may have at most {} bytes",
                st.uploads.max_chunk_bytes
            )
        };
        ApiError::too_large(msg).with("offset", rec.offset)
    };
    if req.declared_len.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    file.seek(SeekFrom::Start(rec.offset))
        .await
        .map_err(|e| io_error("cannot seek the upload data", e))?;
    let hasher = req.checksum.map(|_| Sha256::new());
    let idle = st.uploads.body_idle_timeout;
    let (received, end, digest) =
        receive(&mut file, body, limit, req.declared_len, idle, hasher).await;
    match end {
        End::Complete => {}
        End::TooLarge => {
            discard(&file, &rec).await;
            return Err(too_large());
        }
        End::WriteFailed(e) => {
            discard(&file, &rec).await;
            return Err(io_error("cannot write the upload data", e).with("offset", rec.offset));
        }
        End::Interrupted(why) => {
            if req.checksum.is_some() {
                discard(&file, &rec).await;
            } else if received > 0 {
                commit(&st, &file, &mut rec, received).await?;
            }
            tracing::info!(upload = %id, offset = rec.offset, "upload chunk interrupted: {why}");
            return Err(
                ApiError::bad_request(format!("the body ended early: {why}"))
                    .with("offset", rec.offset),
            );
        }
    }
    if let (Some(want), Some(got)) = (req.checksum, digest)
        && want != got
    {
        discard(&file, &rec).await;
        return Err(ApiError::checksum_mismatch(
            "the chunk does not match Upload-Checksum; discarded",
        )
        .with("offset", rec.offset));
    }
    if received > 0 {
        commit(&st, &file, &mut rec, received).await?;
    }
    drop(file);
    if rec.offset < rec.size {
        return Ok(no_content(&rec));
    }
    complete(&st, &user, rec).await
}

/// Hands a full upload to the handler.
async fn complete(st: &HttpState, user: &Claims, rec: Record) -> Result<Response, ApiError> {
    let dir = &st.uploads.staging_dir;
    match st.handler.completed(user, rec.completed(dir)).await {
        Ok(value) => {
            if let Err(e) = staging::remove_file(&staging::json_path(dir, &rec.id)).await {
                tracing::warn!(upload = %rec.id, error = %e, "cannot remove a completed upload");
            }
            tracing::info!(upload = %rec.id, size = rec.size, "upload completed");
            let mut res = Json(value).into_response();
            res.headers_mut()
                .insert(UPLOAD_OFFSET, HeaderValue::from(rec.offset));
            Ok(res)
        }
        Err(e) if e.is_retryable() => {
            tracing::info!(upload = %rec.id, error = %e, "upload completion to be retried");
            Err(e.with("offset", rec.offset))
        }
        Err(e) => {
            tracing::info!(upload = %rec.id, error = %e, "upload refused at completion");
            if let Err(io) = staging::remove(dir, &rec.id).await {
                tracing::warn!(upload = %rec.id, error = %io, "cannot remove a refused upload");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn patch_headers() {
        let ct = ("content-type", OFFSET_OCTET_STREAM);
        let r = PatchRequest::parse(&headers(&[
            ct,
            ("upload-offset", "5"),
            ("content-length", "3"),
        ]))
        .unwrap();
        assert_eq!((r.offset, r.declared_len, r.checksum), (5, Some(3), None));
        let e = PatchRequest::parse(&headers(&[("upload-offset", "5")])).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        for bad in ["", "-1", "x", "1.5"] {
            let e = PatchRequest::parse(&headers(&[ct, ("upload-offset", bad)])).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        let good = format!("sha256 {}", STANDARD.encode(digest));
        let r = PatchRequest::parse(&headers(&[
            ct,
            ("upload-offset", "0"),
            ("upload-checksum", &good),
        ]))
        .unwrap();
        assert_eq!(r.checksum, Some(digest));
        let e = PatchRequest::parse(&headers(&[
            ct,
            ("upload-offset", "0"),
            ("upload-checksum", "md5 AAAA"),
        ]))
        .unwrap_err();
        assert_eq!(e.code, "unsupported_checksum");
        let e = PatchRequest::parse(&headers(&[
            ct,
            ("upload-offset", "0"),
            ("upload-checksum", "sha256 AAAA"),
        ]))
        .unwrap_err();
        assert_eq!(e.code, "bad_request");
    }
}
