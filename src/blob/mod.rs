//! Blob-store adapters implementing `chalktalk_actors::blob::BlobStore`: the
//! local-files adapter (the default), the S3 adapter on aws-sdk-s3 (any
//! S3-compatible server with path-style requests) and the conformance suite
//! both must pass. The S3 run of the suite is `tests/blob_s3.rs`, against a
//! real `s3s-fs` server on 127.0.0.1 (installed by `scripts/install-deps.sh`).

pub mod conformance;
pub mod local;
pub mod s3;

pub use local::LocalBlobStore;
pub use s3::{S3BlobStore, S3Config};
