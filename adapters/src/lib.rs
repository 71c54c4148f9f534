//! Ports and the adapters behind them: everything that talks to a disk, a
//! database or another server on behalf of the services and actors.
//!
//! | port | defined in | adapters |
//! |---|---|---|
//! | room/thread/inbox `Store` | `chalktalk_actors::store` | [`embedded`] (redb), [`postgres`], [`scylla`] |
//! | assets and jobs `MediaStore` | `chalktalk_actors::encoder` | [`embedded::media`], [`postgres`], [`scylla`] |
//! | records [`kv::Kv`] | [`kv`] | [`embedded::kv`], [`postgres`], [`scylla`] |
//! | programs [`programs::ProgramStore`] | [`programs`] | [`embedded::programs`], [`postgres`], [`scylla`] |
//! | payments [`payments::Payments`] | [`payments`] | [`payments::StripePayments`] (async-stripe) |
//! | objects [`blob::BlobStore`] | [`blob`] | [`blob::local`], [`blob::s3`] |
//! | [`revocations::Revocations`] | [`revocations`] | embedded (in [`revocations`]), [`revocations::RedisRevocations`] |
//! | [`ratelimit::Limiter`] | [`ratelimit`] | [`ratelimit::LocalLimiter`], [`ratelimit::RedisLimiter`] |
//!
//! [`copy`] lists everything a store holds ([`copy::Export`], embedded and
//! PostgreSQL) and moves it to another store (`chalktalk store copy`).
//!
//! Every adapter of a port passes the same suite in [`conformance`]
//! (feature `conformance`, on in tests). The [`scylla`] adapter runs it only
//! against a cluster given by `CHALKTALK_TEST_SCYLLA` (none here); its error
//! paths are tested against scylla-proxy.

pub mod billing;
pub mod blob;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod copy;
pub mod embedded;
pub mod kv;
pub mod lease;
pub mod payments;
pub mod postgres;
pub mod programs;
pub mod ratelimit;
pub mod revocations;
pub mod scylla;
mod seqs;

pub use embedded::EmbeddedStore;
