//! The ScyllaDB adapter of the `Store`, `MediaStore`, `Kv` and
//! `ProgramStore` (`programs.rs`) ports: one
//! shared driver `Session` (the `scylla` crate), every data-path statement
//! prepared once at open (`statements.rs`), the schema of `cql/` applied by
//! `migrate.rs`. See docs/ARCHITECTURE.md §9 for the mapping and what is
//! atomic.
//!
//! - Consistency: every read and write at the URL's `consistency` (default
//!   LOCAL_QUORUM: acknowledged by a quorum of the local datacenter's
//!   replicas before the call returns `Ok`); lightweight transactions at its
//!   `serial` (default LOCAL_SERIAL).
//! - Appends (room events, messages, inbox) are conditional batches
//!   (`INSERT ... IF NOT EXISTS`, one partition each), merged per partition
//!   while one is in flight (group commit, `append.rs`).
//! - Errors (`exec.rs`): every driver error is a [`StoreError`]; reads and
//!   idempotent plain writes are retried once, lightweight transactions never:
//!   one that timed out is settled by a read at the serial consistency.
//! - Options come from a `scylla://` URL (`options.rs`); `tls=true&ca=PATH`
//!   turns on TLS (rustls, the CA in PATH as the only roots; `tls_tests.rs`).

mod append;
mod billing;
mod exec;
mod fence;
mod kv;
mod media;
mod messages;
mod meta;
pub mod migrate;
mod options;
mod programs;
#[cfg(test)]
mod proxy_frames;
#[cfg(test)]
mod proxy_tests;
#[cfg(test)]
mod schema_check;
mod seqrows;
mod statements;
mod store;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chalktalk_actors::store::StoreError;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::statement::SerialConsistency;

pub use migrate::{MIGRATIONS, Migrated, Migration};
pub use options::{ScyllaOptions, check_url};
use statements::Statements;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ScyllaSetupError {
    #[error("invalid ScyllaDB URL: {0}")]
    BadUrl(String),
    #[error("ScyllaDB unreachable: {0}")]
    Unreachable(String),
    #[error(
        "keyspace `{0}` does not exist: create it (docs/OPERATIONS.md) or let migrate create it"
    )]
    NoKeyspace(String),
    #[error(
        "the keyspace schema is at version {found}, newer than this binary knows ({known}); \
         run a newer chalktalk"
    )]
    SchemaTooNew { found: i32, known: i32 },
    #[error(
        "the keyspace schema is at version {found}, this binary needs {known}: run `chalktalk migrate`"
    )]
    SchemaBehind { found: i32, known: i32 },
    #[error("migration {version} failed: {message}")]
    Migration { version: i32, message: String },
    #[error("cannot prepare statement {name}: {message}")]
    Prepare { name: String, message: String },
}

/// The ScyllaDB implementation of [`chalktalk_actors::store::Store`],
/// [`chalktalk_actors::encoder::MediaStore`] and [`crate::kv::Kv`].
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

/// What the store's calls and its append drains share.
pub(crate) struct Inner {
    session: Session,
    st: Statements,
    serial: SerialConsistency,
    /// Per-partition append queues (group commit, `append.rs`).
    queues: Mutex<HashMap<append::PartKey, append::Queue>>,
    /// Heads this store wrote last, per partition: an append that follows
    /// one skips reading the head (the conditional insert still guards it).
    heads: Mutex<HashMap<append::PartKey, u64>>,
}

impl ScyllaStore {
    /// Connects, checks (and with `opts.migrate`, applies) the schema and
    /// prepares every statement. Needs a tokio runtime.
    pub async fn connect(opts: &ScyllaOptions) -> Result<Arc<ScyllaStore>, ScyllaSetupError> {
        let session = session(opts).await?;
        if opts.migrate {
            migrate::migrate(&session, opts).await?;
        } else {
            migrate::check(&session, opts).await?;
        }
        Self::with_session(session, opts).await
    }

    /// A store on a session without migrations or schema checks (tests
    /// against scylla-proxy, which answers no schema query).
    #[cfg(test)]
    pub(crate) async fn open_unmigrated(
        opts: &ScyllaOptions,
    ) -> Result<Arc<ScyllaStore>, ScyllaSetupError> {
        let session = session(opts).await?;
        Self::with_session(session, opts).await
    }

    async fn with_session(
        session: Session,
        opts: &ScyllaOptions,
    ) -> Result<Arc<ScyllaStore>, ScyllaSetupError> {
        let st = tokio::time::timeout(opts.timeout * 4, Statements::prepare(&session))
            .await
            .map_err(|_| {
                ScyllaSetupError::Unreachable(format!(
                    "statements not prepared within {:?}",
                    opts.timeout * 4
                ))
            })?
            .map_err(|(name, e)| ScyllaSetupError::Prepare {
                name,
                message: e.to_string(),
            })?;
        Ok(Arc::new(ScyllaStore {
            inner: Arc::new(Inner {
                session,
                st,
                serial: opts.serial,
                queues: Mutex::new(HashMap::new()),
                heads: Mutex::new(HashMap::new()),
            }),
        }))
    }

    /// `Ok` if a read at the store's consistency succeeds now (for
    /// `/ready`): the same replicas a write needs answer. Not retried.
    pub async fn health(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner
            .session
            .execute_unpaged(&inner.st.SCHEMA_VERSIONS, (statements::SCHEMA_SCOPE,))
            .await
            .map(drop)
            .map_err(|e| exec::unavailable(&e))
    }
}

/// The session for `opts`: contact points, credentials, local datacenter,
/// and a default execution profile with the store's consistencies, its
/// timeout, and no driver-side retries (`exec.rs` decides what is retried).
async fn session(opts: &ScyllaOptions) -> Result<Session, ScyllaSetupError> {
    let profile = ExecutionProfile::builder()
        .consistency(opts.consistency)
        .serial_consistency(Some(opts.serial))
        .request_timeout(Some(opts.timeout))
        .retry_policy(Arc::new(FallthroughRetryPolicy))
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&opts.hosts)
        .connection_timeout(opts.timeout)
        .default_execution_profile_handle(profile.into_handle());
    if let Some(user) = &opts.user {
        builder = builder.user(user, opts.password.clone().unwrap_or_default());
    }
    if let Some(dc) = &opts.datacenter {
        builder = builder.prefer_datacenter(dc.clone());
    }
    if let Some(ca) = &opts.tls_ca {
        builder = builder.tls_context(Some(tls_config(ca)?));
    }
    let session = tokio::time::timeout(opts.timeout * 2, builder.build())
        .await
        .map_err(|_| {
            ScyllaSetupError::Unreachable(format!("no session within {:?}", opts.timeout * 2))
        })?
        .map_err(|e| ScyllaSetupError::Unreachable(e.to_string()))?;
    Ok(session)
}

/// The TLS client configuration: the CA certificates of `ca` (PEM) as the
/// only roots, rustls with the aws-lc-rs provider, TLS 1.2 and 1.3.
fn tls_config(ca: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, ScyllaSetupError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let fail = |m: String| ScyllaSetupError::BadUrl(format!("ca={}: {m}", ca.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| fail(e.to_string()))? {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("no certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Applies pending migrations to the keyspace of `opts` (what
/// `chalktalk migrate` runs) without opening a store.
pub async fn migrate_url(opts: &ScyllaOptions) -> Result<Migrated, ScyllaSetupError> {
    let session = session(opts).await?;
    migrate::migrate(&session, opts).await
}

/// A seq, position or time to store: CQL's `bigint` is signed.
fn to_db(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Conflict(format!("{what} {v} is out of range")))
}

/// A bound of a range query: past `i64::MAX` nothing is stored anyway.
fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_db(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what}: negative value {v}")))
}

/// A `LIMIT ?` value (CQL `int`).
fn limit_of(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
