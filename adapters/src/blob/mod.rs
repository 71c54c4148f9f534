//! The blob-store port: where uploaded media, renditions, HLS segments,
//! posters and voice-overs live, and its two adapters: local files
//! ([`local`], the default) and S3 ([`s3`], aws-sdk-s3, any S3-compatible
//! server with path-style requests). Both pass the conformance suite
//! (`crate::conformance::blob`; the S3 run is server/tests/blob_s3.rs
//! against a real `s3s-fs` on 127.0.0.1).
//!
//! Contract shared by every adapter:
//! - Keys are checked with [`validate_key`] before anything else happens; a
//!   bad key is [`BlobError::InvalidKey`] from every method.
//! - A write is visible in full or not at all: readers never see a partly
//!   written object, and when `put` or `complete_multipart` resolves `Ok`
//!   the object is durable.
//! - Writing a key that exists replaces it (content, type and etag).
//! - Etags are opaque strings without surrounding quotes; equal content
//!   written the same way gives an equal etag, different content a different
//!   one.
//! - Objects whose key is a directory-like prefix of another key (`a` and
//!   `a/b`) may coexist.

pub mod local;
pub mod s3;

pub use local::LocalBlobStore;
pub use s3::{S3BlobStore, S3Config};

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Longest segment of a key (the text between two `/`), in bytes. Keeps every
/// segment a valid file name for the local adapter.
pub const MAX_SEGMENT_BYTES: usize = 200;
/// Smallest size of every multipart part except the last (the S3 limit).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
/// Highest multipart part number (the S3 limit); numbers start at 1.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// Blob-store failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// No object (or no multipart upload) with this key / id.
    #[error("blob not found")]
    NotFound,
    /// The key breaks the rules of [`validate_key`].
    #[error("invalid blob key: {0}")]
    InvalidKey(String),
    /// The requested byte range starts at or after the end of the object,
    /// or its end is before its start.
    #[error("range not satisfiable")]
    InvalidRange,
    /// A multipart completion names a part that was not uploaded, with a
    /// wrong etag, out of order, or a non-last part smaller than
    /// [`MIN_PART_BYTES`].
    #[error("invalid multipart part: {0}")]
    InvalidPart(String),
    /// Another argument is out of bounds (part number, presign lifetime).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backend cannot be reached, refused the operation or failed;
    /// usually retryable.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
}

/// What is known about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Size in bytes.
    pub size: u64,
    /// The content type given when the object was written.
    pub content_type: String,
    /// Opaque version tag, without quotes.
    pub etag: String,
}

/// Identifies a multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(pub String);

/// The tag a stored part answers with; hand it back to `complete_multipart`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartETag(pub String);

/// One part of a multipart upload to assemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// 1..=[`MAX_PART_NUMBER`].
    pub part_number: u32,
    pub etag: PartETag,
}

/// Storage for immutable-ish binary objects addressed by key.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores a small object in one request, replacing any object with this key.
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str)
    -> Result<BlobInfo, BlobError>;

    /// Starts a multipart upload for large objects. Nothing is visible under
    /// `key` until `complete_multipart` succeeds.
    async fn create_multipart(&self, key: &str, content_type: &str) -> Result<UploadId, BlobError>;
    /// Stores part `part_number` (1..=[`MAX_PART_NUMBER`]) of an upload;
    /// uploading the same number again replaces the part. Unknown upload:
    /// `NotFound`.
    async fn upload_part(
        &self,
        key: &str,
        upload: &UploadId,
        part_number: u32,
        bytes: Bytes,
    ) -> Result<PartETag, BlobError>;
    /// Assembles the listed parts (ascending part numbers, every one but the
    /// last at least [`MIN_PART_BYTES`]) into the object, replacing any
    /// object with this key, and ends the upload.
    async fn complete_multipart(
        &self,
        key: &str,
        upload: &UploadId,
        parts: &[CompletedPart],
    ) -> Result<BlobInfo, BlobError>;
    /// Ends an upload and drops its parts. Idempotent: an unknown or already
    /// ended upload is `Ok`.
    async fn abort_multipart(&self, key: &str, upload: &UploadId) -> Result<(), BlobError>;

    /// The whole object. Missing: `NotFound`.
    async fn get(&self, key: &str) -> Result<Bytes, BlobError>;
    /// Bytes `start..=end_inclusive`. An end past the last byte is clamped
    /// to it (as in HTTP); a start at or past the end of the object, or an
    /// end before the start, is `InvalidRange`. Missing: `NotFound`.
    async fn get_range(
        &self,
        key: &str,
        start: u64,
        end_inclusive: u64,
    ) -> Result<Bytes, BlobError>;
    /// Size, type and etag, or `None` when there is no such object.
    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError>;
    /// Removes the object. Idempotent: a missing key is `Ok`.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Every key that starts with `prefix` (plain string prefix, may be
    /// empty), sorted by byte order. Unfinished multipart uploads are not
    /// listed. The prefix follows the key rules, except that it may be empty
    /// or end with `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError>;

    /// A URL a client can GET the object from directly for `ttl`, or `None`
    /// when the adapter cannot sign URLs (the server then signs its own).
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError>;
    /// A URL a client can PUT the object to directly for `ttl` (sending this
    /// `Content-Type`), or `None` when the adapter cannot sign URLs.
    async fn presign_put(
        &self,
        key: &str,
        ttl: Duration,
        content_type: &str,
    ) -> Result<Option<String>, BlobError>;
}

/// Checks a completion's part list: not empty, numbers strictly ascending.
pub fn validate_parts(parts: &[CompletedPart]) -> Result<(), BlobError> {
    if parts.is_empty() {
        return Err(BlobError::InvalidPart("no parts".into()));
    }
    if parts
        .windows(2)
        .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(BlobError::InvalidPart(
            "part numbers must be strictly ascending".into(),
        ));
    }
    Ok(())
}

/// Checks a multipart part number (1..=[`MAX_PART_NUMBER`]).
pub fn validate_part_number(part_number: u32) -> Result<(), BlobError> {
    if (1..=MAX_PART_NUMBER).contains(&part_number) {
        Ok(())
    } else {
        Err(BlobError::InvalidArgument(format!(
            "part number {part_number} not in 1..={MAX_PART_NUMBER}"
        )))
    }
}

/// Checks a key: 1..=[`MAX_KEY_BYTES`] bytes of `[A-Za-z0-9/_.-]`, made of
/// `/`-separated segments that are non-empty (so no leading, trailing or
/// double `/`), not `.` or `..`, and at most [`MAX_SEGMENT_BYTES`] long.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    check_chars(key, key.len())?;
    if key.is_empty() {
        return Err(BlobError::InvalidKey("empty key".into()));
    }
    for segment in key.split('/') {
        check_segment(key, segment)?;
    }
    Ok(())
}

/// Checks a `list` prefix: empty, or a key, or a key followed by `/`; its
/// last segment may also be a partial segment (`.` and `..` included, as it
/// only filters).
pub fn validate_prefix(prefix: &str) -> Result<(), BlobError> {
    check_chars(prefix, prefix.len())?;
    let mut segments: Vec<&str> = prefix.split('/').collect();
    // The last piece is partial (or empty after a trailing '/').
    let last = segments.pop().unwrap_or("");
    if last.len() > MAX_SEGMENT_BYTES {
        return Err(BlobError::InvalidKey(format!(
            "prefix segment longer than {MAX_SEGMENT_BYTES} bytes"
        )));
    }
    for segment in segments {
        check_segment(prefix, segment)?;
    }
    Ok(())
}

fn check_chars(key: &str, len: usize) -> Result<(), BlobError> {
    if len > MAX_KEY_BYTES {
        return Err(BlobError::InvalidKey(format!(
            "key is {len} bytes, longer than {MAX_KEY_BYTES}"
        )));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-')))
    {
        return Err(BlobError::InvalidKey(format!(
            "character {c:?} not allowed in {key:?}"
        )));
    }
    Ok(())
}

fn check_segment(key: &str, segment: &str) -> Result<(), BlobError> {
    if segment.is_empty() {
        return Err(BlobError::InvalidKey(format!(
            "empty segment (leading, trailing or double '/') in {key:?}"
        )));
    }
    if segment == "." || segment == ".." {
        return Err(BlobError::InvalidKey(format!(
            "'.' or '..' segment in {key:?}"
        )));
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(BlobError::InvalidKey(format!(
            "segment longer than {MAX_SEGMENT_BYTES} bytes in {key:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in [
            "a",
            "videos/v-1/src.mp4",
            "a.b_c-d/E9",
            ".hidden/x",
            "x..y",
            &"k".repeat(200),
        ] {
            assert_eq!(validate_key(ok), Ok(()), "{ok:?}");
        }
        let long = format!(
            "{}/{}/{}",
            "a".repeat(200),
            "b".repeat(200),
            "c".repeat(110)
        );
        assert_eq!(long.len(), 512);
        assert_eq!(validate_key(&long), Ok(()));
        for bad in [
            "",
            "../x",
            "a/../x",
            "a/..",
            "./a",
            "/abs",
            "a/",
            "a//b",
            "with space",
            "ü",
            "a\\b",
            "a?b",
            &format!("{long}c"),
            &"k".repeat(201),
        ] {
            assert!(
                matches!(validate_key(bad), Err(BlobError::InvalidKey(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefixes() {
        for ok in ["", "a", "a/", "a/b", "a/.", "a/..", "videos/v-"] {
            assert_eq!(validate_prefix(ok), Ok(()), "{ok:?}");
        }
        for bad in ["/", "/a", "../", "a/../b", "a//", "a b", &"a".repeat(513)] {
            assert!(
                matches!(validate_prefix(bad), Err(BlobError::InvalidKey(_))),
                "{bad:?}"
            );
        }
    }
}
