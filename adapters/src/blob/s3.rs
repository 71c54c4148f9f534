//! The S3 blob adapter on aws-sdk-s3: one bucket, path-style requests (so
//! MinIO, s3s and other S3-compatible servers work), explicit static
//! credentials and region (the SDK never looks at the environment, profile
//! files or instance metadata), multipart uploads mapped one to one, and
//! presigned GET/PUT URLs.
//!
//! Request checksums are only sent when an operation requires them, the
//! setting S3-compatible servers handle best. Part and object etags are
//! returned without their quotes.

use std::time::Duration;

use crate::blob::{
    BlobError, BlobInfo, BlobStore, CompletedPart, PartETag, UploadId, validate_key,
    validate_part_number, validate_parts, validate_prefix,
};
use async_trait::async_trait;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart as S3Part};
use bytes::Bytes;
use serde::Deserialize;

/// Where the bucket is and how to sign for it.
#[derive(Clone, Deserialize)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:9000` or `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Reads a whole response body.
async fn read_body(body: ByteStream) -> Result<Bytes, BlobError> {
    let data = body
        .collect()
        .await
        .map_err(|e| BlobError::Unavailable(format!("read object body: {e}")))?;
    Ok(data.into_bytes())
}

/// Blob store on one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3BlobStore {
    /// Builds the client; makes no request.
    pub fn new(config: &S3Config) -> S3BlobStore {
        let credentials = Credentials::new(
            config.access_key.clone(),
            config.secret_key.clone(),
            None,
            None,
            "chalktalk-config",
        );
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .build();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .endpoint_url(config.endpoint.clone())
            .credentials_provider(credentials)
            .force_path_style(true)
            .timeout_config(timeouts)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        S3BlobStore {
            client: aws_sdk_s3::Client::from_conf(conf),
            bucket: config.bucket.clone(),
        }
    }

    /// The underlying SDK client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Creates the bucket unless it exists already (and is ours).
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou")) => Ok(()),
            // Some servers answer this for their own buckets too: it is ours
            // if we can reach it.
            Err(e) if matches!(e.code(), Some("BucketAlreadyExists")) => self
                .client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_err(e, "bucket exists but is not accessible")),
            Err(e) => Err(map_err(e, "create bucket")),
        }
    }
}

/// Maps an SDK error: missing key/upload → `NotFound`, 416 → `InvalidRange`,
/// part problems → `InvalidPart`, anything else → `Unavailable`.
fn map_err<E, R>(e: SdkError<E, R>, what: &str) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(se) = &e {
        let code = se.err().code().unwrap_or("");
        match code {
            "NoSuchKey" | "NoSuchUpload" | "NotFound" => return BlobError::NotFound,
            "InvalidRange" => return BlobError::InvalidRange,
            "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" => {
                return BlobError::InvalidPart(format!(
                    "{code}: {}",
                    se.err().message().unwrap_or("")
                ));
            }
            _ => {}
        }
    }
    let detail = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
    };
    BlobError::Unavailable(format!("{what}: {detail}"))
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or("").trim_matches('"').to_string()
}

/// `bytes=start-end`; an end far beyond any object (S3 objects are at most
/// 5 TiB) is sent open-ended, since some servers reject huge numbers.
fn range_header(start: u64, end_inclusive: u64) -> String {
    if end_inclusive >= 1 << 50 {
        format!("bytes={start}-")
    } else {
        format!("bytes={start}-{end_inclusive}")
    }
}

fn presigning(ttl: Duration) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::expires_in(ttl)
        .map_err(|e| BlobError::InvalidArgument(format!("presign lifetime: {e}")))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<BlobInfo, BlobError> {
        validate_key(key)?;
        let size = bytes.len() as u64;
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| map_err(e, "put object"))?;
        Ok(BlobInfo {
            size,
            content_type: content_type.to_string(),
            etag: unquote(out.e_tag()),
        })
    }

    async fn create_multipart(&self, key: &str, content_type: &str) -> Result<UploadId, BlobError> {
        validate_key(key)?;
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| map_err(e, "create multipart upload"))?;
        out.upload_id()
            .map(|id| UploadId(id.to_string()))
            .ok_or_else(|| BlobError::Unavailable("server returned no upload id".into()))
    }

    async fn upload_part(
        &self,
        key: &str,
        upload: &UploadId,
        part_number: u32,
        bytes: Bytes,
    ) -> Result<PartETag, BlobError> {
        validate_key(key)?;
        validate_part_number(part_number)?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload.0)
            .part_number(part_number as i32)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| map_err(e, "upload part"))?;
        match out.e_tag() {
            Some(tag) => Ok(PartETag(unquote(Some(tag)))),
            None => Err(BlobError::Unavailable(
                "server returned no part etag".into(),
            )),
        }
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload: &UploadId,
        parts: &[CompletedPart],
    ) -> Result<BlobInfo, BlobError> {
        validate_key(key)?;
        validate_parts(parts)?;
        let s3_parts = parts
            .iter()
            .map(|p| {
                S3Part::builder()
                    .part_number(p.part_number as i32)
                    .e_tag(format!("\"{}\"", p.etag.0))
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload.0)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(s3_parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                // The part list is the only free input here: any other
                // rejection of it (servers differ: InvalidRequest, ...) is
                // about the parts too.
                let bad_request = matches!(
                    &e,
                    SdkError::ServiceError(se) if se.raw().status().as_u16() == 400
                );
                match map_err(e, "complete multipart upload") {
                    BlobError::Unavailable(msg) if bad_request => BlobError::InvalidPart(msg),
                    other => other,
                }
            })?;
        // The response carries the etag but neither size nor type.
        self.head(key).await?.ok_or_else(|| {
            BlobError::Unavailable("object missing right after completing its upload".into())
        })
    }

    async fn abort_multipart(&self, key: &str, upload: &UploadId) -> Result<(), BlobError> {
        validate_key(key)?;
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload.0)
            .send()
            .await
            .map_err(|e| map_err(e, "abort multipart upload"))
        {
            Ok(_) | Err(BlobError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(e, "get object"))?;
        read_body(out.body).await
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        end_inclusive: u64,
    ) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        if end_inclusive < start {
            return Err(BlobError::InvalidRange);
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(range_header(start, end_inclusive))
            .send()
            .await
            .map_err(|e| map_err(e, "get object range"))?;
        read_body(out.body).await
    }

    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        validate_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(BlobInfo {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                etag: unquote(out.e_tag()),
            })),
            // HEAD answers carry no error body: a 404 has no code.
            Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 404 => Ok(None),
            Err(e) => match map_err(e, "head object") {
                BlobError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(e, "delete object"))
        {
            Ok(_) | Err(BlobError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        validate_prefix(prefix)?;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self.client.list_objects_v2().bucket(&self.bucket);
            if !prefix.is_empty() {
                req = req.prefix(prefix);
            }
            if let Some(t) = token.take() {
                req = req.continuation_token(t);
            }
            let out = req.send().await.map_err(|e| map_err(e, "list objects"))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| k.starts_with(prefix))
                    .map(str::to_string),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError> {
        validate_key(key)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| map_err(e, "presign get"))?;
        Ok(Some(req.uri().to_string()))
    }

    async fn presign_put(
        &self,
        key: &str,
        ttl: Duration,
        content_type: &str,
    ) -> Result<Option<String>, BlobError> {
        validate_key(key)?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| map_err(e, "presign put"))?;
        Ok(Some(req.uri().to_string()))
    }
}
