//! `GET`/`HEAD /media/{token}/{asset}/{*path}`: serves blob
//! `media/{asset}/{path}` to whoever holds a valid link (see `chalktalk_services::media::sign`).
//! Single byte ranges (206/416), `ETag` with `If-None-Match` (304) and
//! `If-Range`, content types by extension, documents (`doc/`) served for
//! download, and cache lifetimes bounded by the link's expiry. Bodies are streamed in 1 MiB `get_range` reads.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chalktalk_adapters::blob::{BlobError, BlobStore};

use super::{ApiError, HttpState};
use chalktalk_services::media::sign::{LinkError, checked_asset_key, content_type_for, unix_secs};

/// Bytes per blob read while streaming a body.
pub(crate) const CHUNK: u64 = 1024 * 1024;
/// Longest `max-age` of non-playlist files.
const MAX_AGE_CAP: u64 = 86_400;

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAsk {
    /// No usable single range: the whole body (200).
    Full,
    /// Bytes `start..=end` (206).
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`. Several ranges and syntax
/// errors give [`RangeAsk::Full`] (a server may ignore `Range`).
pub(crate) fn parse_range(value: &str, len: u64) -> RangeAsk {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Full;
    };
    if spec.contains(',') {
        return RangeAsk::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Full;
    };
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            None => RangeAsk::Full,
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if len == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part(len - n.min(len), len - 1),
        },
        (a, "") => match num(a) {
            None => RangeAsk::Full,
            Some(a) if a >= len => RangeAsk::Unsatisfiable,
            Some(a) => RangeAsk::Part(a, len - 1),
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= len {
                    RangeAsk::Unsatisfiable
                } else {
                    RangeAsk::Part(a, b.min(len - 1))
                }
            }
            _ => RangeAsk::Full,
        },
    }
}

/// Bytes `start..=end` of `key`, read `CHUNK` at a time as the body is sent.
fn stream_body(blobs: Arc<dyn BlobStore>, key: String, start: u64, end: u64) -> Body {
    let stream = futures_util::stream::try_unfold(start, move |pos| {
        let blobs = blobs.clone();
        let key = key.clone();
        async move {
            if pos > end {
                return Ok(None);
            }
            let last = end.min(pos.saturating_add(CHUNK - 1));
            let bytes: Bytes = blobs
                .get_range(&key, pos, last)
                .await
                .map_err(std::io::Error::other)?;
            if bytes.is_empty() {
                return Err(std::io::Error::other("the blob shrank while being served"));
            }
            let next = pos + bytes.len() as u64;
            Ok(Some((bytes, next)))
        }
    });
    Body::from_stream(stream)
}

fn blob_error(e: BlobError) -> ApiError {
    match e {
        BlobError::NotFound | BlobError::InvalidKey(_) => ApiError::not_found("no such file"),
        e => {
            tracing::warn!(error = %e, "media: blob store failed");
            ApiError::unavailable(format!("storage: {e}"))
        }
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t == etag
    })
}

/// `GET`/`HEAD /media/{token}/{asset}/{*path}`.
pub(crate) async fn serve(
    State(st): State<HttpState>,
    method: Method,
    headers: HeaderMap,
    parts: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((token, asset, path))) = parts else {
        return Err(ApiError::not_found("no such file"));
    };
    let now = unix_secs(SystemTime::now());
    let exp = st.signer.verify(&token, &asset, now).map_err(|e| match e {
        LinkError::Expired => ApiError::new(
            StatusCode::FORBIDDEN,
            "link_expired",
            "the link has expired; ask for a new one",
        ),
        LinkError::Invalid => ApiError::forbidden("invalid link"),
    })?;
    let key =
        checked_asset_key(&asset, &path).ok_or_else(|| ApiError::not_found("no such file"))?;
    let info = st
        .blobs
        .head(&key)
        .await
        .map_err(blob_error)?
        .ok_or_else(|| ApiError::not_found("no such file"))?;

    let cache = if path.to_ascii_lowercase().ends_with(".m3u8") {
        "private, max-age=2".to_string()
    } else {
        let age = exp.saturating_sub(now).min(MAX_AGE_CAP);
        format!("private, max-age={age}, immutable")
    };
    let etag = (!info.etag.is_empty()).then(|| format!("\"{}\"", info.etag));
    let mut out = HeaderMap::new();
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type_for(&path)),
    );
    if let Ok(v) = HeaderValue::from_str(&cache) {
        out.insert(header::CACHE_CONTROL, v);
    }
    if let Some(name) = path.strip_prefix("doc/") {
        // A document is downloaded, never rendered in our origin; its name
        // is `[A-Za-z0-9_-]` and an extension (services' documents.rs).
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            out.insert(header::CONTENT_DISPOSITION, v);
        }
        out.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    if let Some(v) = etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        out.insert(header::ETAG, v);
    }
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };

    if let (Some(tag), Some(inm)) = (&etag, header_text(header::IF_NONE_MATCH))
        && etag_matches(inm, tag)
    {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let len = info.size;
    let if_range_ok = match header_text(header::IF_RANGE) {
        None => true,
        Some(v) => etag.as_deref() == Some(v.trim()),
    };
    let ask = match header_text(header::RANGE) {
        Some(r) if if_range_ok => parse_range(r, len),
        _ => RangeAsk::Full,
    };
    let (status, start, end) = match ask {
        RangeAsk::Unsatisfiable => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                out.insert(header::CONTENT_RANGE, v);
            }
            let e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {len} bytes"),
            );
            let mut res = e.into_response();
            res.headers_mut().extend(out);
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return Ok(res);
        }
        RangeAsk::Part(a, b) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")) {
                out.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        RangeAsk::Full => (StatusCode::OK, 0, len.saturating_sub(1)),
    };
    let body_len = if len == 0 { 0 } else { end - start + 1 };
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    let body = if method == Method::HEAD || body_len == 0 {
        Body::empty()
    } else {
        stream_body(st.blobs.clone(), key, start, end)
    };
    Ok((status, out, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        let cases = [
            ("bytes=0-9", 100, Part(0, 9)),
            ("bytes=10-", 100, Part(10, 99)),
            ("bytes=-10", 100, Part(90, 99)),
            ("bytes=-1000", 100, Part(0, 99)),
            ("bytes=50-1000", 100, Part(50, 99)),
            ("bytes=99-99", 100, Part(99, 99)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=5-1", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=-", 100, Full),
            ("bytes=+1-2", 100, Full),
        ];
        for (h, len, want) in cases {
            assert_eq!(parse_range(h, len), want, "{h} of {len}");
        }
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_matches("W/\"a\"", "\"a\""));
        assert!(etag_matches("*", "\"a\""));
        assert!(!etag_matches("\"c\"", "\"a\""));
    }
}
