//! The PostgreSQL adapter of the `Store`, `MediaStore`, `Kv` and
//! `ProgramStore` (`programs.rs`, one statement per write) ports: a
//! shared store that several nodes can use at once (tokio-postgres through a
//! deadpool pool, schema in `sql/` at the top of the repository).
//!
//! Writes: like the embedded store, every write is handed to one writer task
//! per store, which drains what is queued (up to [`MAX_BATCH`]) and applies it
//! in one transaction: appends of all rooms, threads and inboxes in the batch
//! become one multi-row insert per table (group commit), the other writes
//! run in queue order, and every request is answered only after `COMMIT`
//! returned (durable with PostgreSQL's default `synchronous_commit = on`).
//! Seqs are checked against the stored heads read inside the transaction; a
//! writer on another node that appended first turns the insert into a unique
//! violation, and the batch is then replayed one request per transaction so
//! that only the losing request fails (`Conflict`). Key-value batches take a
//! transaction-scoped advisory lock per key they read or write (sorted, so
//! two batches never deadlock) before checking their conditions. See
//! `writer.rs`.
//!
//! Failures: a server that cannot be reached, a timeout (connect, pool wait,
//! every query and every batch have one) or a lost connection is
//! [`StoreError::Unavailable`]; nothing was acknowledged. A connection that
//! timed out mid-query is dropped, not returned to the pool. The pool makes
//! new connections when the server is back, so the store recovers by itself.

mod billing;
mod export;
mod kv;
mod media;
pub mod migrate;
mod programs;
mod store;
#[cfg(any(test, feature = "conformance"))]
pub mod test_server;
#[cfg(test)]
mod tests;
mod writer;

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chalktalk_actors::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

pub use migrate::{MIGRATIONS, Migration};

/// Most requests applied in one write transaction.
pub const MAX_BATCH: usize = 1024;

/// How to reach the database and how long to wait for it.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/db` (or a key=value string).
    pub url: String,
    /// Connections in the pool (the writer uses one at a time).
    pub pool_size: usize,
    /// Connecting, waiting for a pooled connection, and each query or batch.
    pub timeout: Duration,
    /// Apply pending migrations on connect; otherwise a schema that is
    /// behind the binary is an error.
    pub migrate: bool,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            pool_size: 8,
            timeout: Duration::from_secs(5),
            migrate: true,
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PgSetupError {
    #[error("invalid PostgreSQL URL: {0}")]
    BadUrl(String),
    #[error("PostgreSQL unreachable: {0}")]
    Unreachable(String),
    #[error(
        "the database schema is at version {found}, newer than this binary knows ({known}); \
         run a newer chalktalk"
    )]
    SchemaTooNew { found: i32, known: i32 },
    #[error(
        "the database schema is at version {found}, this binary needs {known}: run `chalktalk migrate`"
    )]
    SchemaBehind { found: i32, known: i32 },
    #[error("migration {version} failed: {message}")]
    Migration { version: i32, message: String },
}

/// The PostgreSQL implementation of [`chalktalk_actors::store::Store`],
/// [`chalktalk_actors::encoder::MediaStore`] and [`crate::kv::Kv`].
pub struct PgStore {
    pool: Pool,
    timeout: Duration,
    tx: mpsc::UnboundedSender<writer::Request>,
    writer: tokio::task::JoinHandle<()>,
    stats: Arc<Stats>,
}

/// What the writer task reports.
#[derive(Default)]
pub(super) struct Stats {
    /// Batches committed.
    commits: AtomicU64,
    /// Batches the server rejected and that were replayed one by one.
    replays: AtomicU64,
    /// The error of the last failed batch, cleared by the next commit.
    failing: Mutex<Option<StoreError>>,
}

impl PgStore {
    /// Connects, checks (and with `opts.migrate`, applies) the schema and
    /// starts the writer task. Needs a tokio runtime.
    pub async fn connect(opts: &PgOptions) -> Result<Arc<PgStore>, PgSetupError> {
        let pool = pool(opts)?;
        let mut client = connect_client(&pool, opts.timeout).await?;
        if opts.migrate {
            migrate::migrate(&mut client).await?;
        } else {
            migrate::check(&client).await?;
        }
        drop(client);
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(writer::run(pool.clone(), opts.timeout, rx, stats.clone()));
        Ok(Arc::new(PgStore {
            pool,
            timeout: opts.timeout,
            tx,
            writer,
            stats,
        }))
    }

    /// `Err` when the writer task is gone or the server does not answer.
    /// After a failed batch, an empty batch goes through the writer first:
    /// its commit clears the failure (the store recovers without waiting
    /// for the next real write).
    pub async fn health(&self) -> Result<(), StoreError> {
        if self.writer.is_finished() {
            return Err(StoreError::Unavailable("store writer stopped".into()));
        }
        let failing = self
            .stats
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if failing {
            self.write(writer::Op::Probe).await?;
        }
        self.query("SELECT 1", &[]).await.map(drop)
    }

    /// Write transactions committed since connect (each holds a batch).
    pub fn commit_count(&self) -> u64 {
        self.stats.commits.load(Ordering::Relaxed)
    }

    /// Batches rejected by the server (a racing writer) and replayed one
    /// request per transaction.
    pub fn replay_count(&self) -> u64 {
        self.stats.replays.load(Ordering::Relaxed)
    }

    async fn write(&self, op: writer::Op) -> Result<bool, StoreError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(writer::Request { op, reply })
            .map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    async fn client(&self) -> Result<Object, StoreError> {
        get_client(&self.pool, self.timeout).await
    }

    /// Runs one read (a cached prepared statement) with the store's timeout.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached(sql).await?;
            client.query(&stmt, params).await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(rows) => rows.map_err(pg_error),
            Err(_) => {
                // A query may still be in flight on it: never reuse it.
                drop(Object::take(client));
                Err(timed_out(self.timeout))
            }
        }
    }
}

/// Checks that `url` is a PostgreSQL connection string naming a host
/// (nothing is contacted).
pub fn check_url(url: &str) -> Result<(), PgSetupError> {
    let cfg =
        tokio_postgres::Config::from_str(url).map_err(|e| PgSetupError::BadUrl(e.to_string()))?;
    if cfg.get_hosts().is_empty() {
        return Err(PgSetupError::BadUrl("no host in the URL".into()));
    }
    Ok(())
}

/// Applies pending migrations to the database at `opts.url` (what
/// `chalktalk migrate` runs) without starting a store.
pub async fn migrate_url(opts: &PgOptions) -> Result<migrate::Migrated, PgSetupError> {
    let pool = pool(opts)?;
    let mut client = connect_client(&pool, opts.timeout).await?;
    migrate::migrate(&mut client).await
}

async fn connect_client(pool: &Pool, timeout: Duration) -> Result<Object, PgSetupError> {
    tokio::time::timeout(timeout, pool.get())
        .await
        .map_err(|_| PgSetupError::Unreachable(format!("no connection within {timeout:?}")))?
        .map_err(|e| PgSetupError::Unreachable(e.to_string()))
}

fn pool(opts: &PgOptions) -> Result<Pool, PgSetupError> {
    check_url(&opts.url)?;
    let mut cfg = tokio_postgres::Config::from_str(&opts.url)
        .map_err(|e| PgSetupError::BadUrl(e.to_string()))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(opts.timeout);
    }
    cfg.application_name("chalktalk");
    let manager = Manager::from_config(
        cfg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(opts.pool_size.max(2))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(opts.timeout))
        .create_timeout(Some(opts.timeout))
        .recycle_timeout(Some(opts.timeout))
        .build()
        .map_err(|e| PgSetupError::BadUrl(e.to_string()))
}

async fn get_client(pool: &Pool, timeout: Duration) -> Result<Object, StoreError> {
    match tokio::time::timeout(timeout, pool.get()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!("postgres: {e}"))),
        Err(_) => Err(timed_out(timeout)),
    }
}

fn timed_out(timeout: Duration) -> StoreError {
    StoreError::Unavailable(format!("postgres: no answer within {timeout:?}"))
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("store writer stopped".into())
}

/// A driver error as the port sees it: a unique violation is a `Conflict`
/// (a racing writer stored that key first), anything else `Unavailable`.
fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(format!("postgres: {e}"))
    } else {
        let detail = e
            .as_db_error()
            .map(|d| d.message().to_owned())
            .unwrap_or_else(|| e.to_string());
        StoreError::Unavailable(format!("postgres: {detail}"))
    }
}

/// A seq or position to store: PostgreSQL's `bigint` is signed.
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

fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    idx: usize,
) -> Result<T, StoreError> {
    row.try_get(idx)
        .map_err(|e| StoreError::Corrupt(format!("postgres column {idx}: {e}")))
}

/// The bodies of rows (key, body), each decoded as a `what`.
fn bodies<T: serde::de::DeserializeOwned>(what: &str, rows: &[Row]) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|row| crate::embedded::decode(what, column::<&str>(row, 0)?, column::<&[u8]>(row, 1)?))
        .collect()
}

/// The body of the first row (body), decoded as the `what` under `key`.
fn first<T: serde::de::DeserializeOwned>(
    what: &str,
    key: &str,
    rows: &[Row],
) -> Result<Option<T>, StoreError> {
    match rows.first() {
        Some(row) => Ok(Some(crate::embedded::decode(
            what,
            key,
            column::<&[u8]>(row, 0)?,
        )?)),
        None => Ok(None),
    }
}
