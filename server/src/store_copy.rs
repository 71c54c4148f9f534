//! `chalktalk store copy --from A --to B`: moves a deployment between
//! stores (`chalktalk_adapters::copy`) and verifies it, and `chalktalk
//! store count --store A`. A store is named `embedded:DIR` (the redb file of
//! a data dir) or by its URL (`postgres://...`, and `scylla://...` as a
//! target only: the ScyllaDB adapter cannot list what it holds yet). Run it
//! with every node of the source stopped (the embedded file is locked by a
//! running node).

use std::path::PathBuf;
use std::sync::Arc;

use chalktalk_adapters::EmbeddedStore;
use chalktalk_adapters::copy::{Backend, CopyError, Summary, Target, copy, summarize};

use crate::config::redact_store_url;

/// Why a copy could not run or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum StoreCliError {
    #[error(
        "{flag} {spec}: expected `embedded:DIR`, `postgres://user@host[:port]/db` or (--to only) `scylla://host[:port]/keyspace`"
    )]
    BadSpec { flag: &'static str, spec: String },
    #[error(
        "{flag} {spec}: a ScyllaDB store can be copied into, not yet out of (it cannot list what it holds)"
    )]
    NotASource { flag: &'static str, spec: String },
    #[error("{flag} {spec}: cannot open it: {message}")]
    Open {
        flag: &'static str,
        spec: String,
        message: String,
    },
    #[error("--from and --to name the same store ({0})")]
    Same(String),
    #[error(transparent)]
    Copy(#[from] CopyError),
}

/// Opens the store `spec` names to write into (applying pending
/// migrations to a database).
pub async fn open_target(flag: &'static str, spec: &str) -> Result<Arc<dyn Target>, StoreCliError> {
    if spec.starts_with("scylla://") {
        let store =
            crate::server::open_scylla(spec, true)
                .await
                .map_err(|e| StoreCliError::Open {
                    flag,
                    spec: shown(spec),
                    message: e.to_string(),
                })?;
        return Ok(store);
    }
    let store: Arc<dyn Target> = open(flag, spec).await?;
    Ok(store)
}

/// Opens the store `spec` names to read everything from (applying pending
/// migrations to a database).
pub async fn open(flag: &'static str, spec: &str) -> Result<Arc<dyn Backend>, StoreCliError> {
    if spec.starts_with("scylla://") {
        return Err(StoreCliError::NotASource {
            flag,
            spec: shown(spec),
        });
    }
    let fail = |message: String| StoreCliError::Open {
        flag,
        spec: shown(spec),
        message,
    };
    if let Some(dir) = spec.strip_prefix("embedded:") {
        if dir.is_empty() {
            return Err(StoreCliError::BadSpec {
                flag,
                spec: spec.into(),
            });
        }
        let dir = PathBuf::from(dir);
        let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| {
                fail(format!(
                    "{e} (is a node still running on this data dir? stop it first)"
                ))
            })?;
        return Ok(store);
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let store = crate::server::open_postgres(spec, true)
            .await
            .map_err(|e| fail(e.to_string()))?;
        return Ok(store);
    }
    Err(StoreCliError::BadSpec {
        flag,
        spec: shown(spec),
    })
}

/// A store name as errors show it: a URL without its password.
fn shown(spec: &str) -> String {
    if spec.contains("://") {
        redact_store_url(spec)
    } else {
        spec.to_string()
    }
}

/// One line per kind, for the operator.
pub fn describe(s: &Summary) -> String {
    format!(
        "{} rooms ({} events, {} snapshots), {} threads ({} messages, {} cursors), \
         {} inboxes ({} events), {} memberships, {} key-value records \
         (accounts, sessions, relationships, profiles, grants, revocations), \
         {} media assets, {} media jobs, {} programs ({} items), {} entitlements, \
         {} items done, {} orders, {} webhook receipts ({} pending), \
         {} subscriptions, {} plan overrides, {} billing audit entries, \
         {} payout accounts",
        s.rooms,
        s.room_events,
        s.snapshots,
        s.threads,
        s.messages,
        s.cursors,
        s.inboxes,
        s.inbox_events,
        s.memberships,
        s.kv_rows,
        s.assets,
        s.jobs,
        s.programs,
        s.program_items,
        s.entitlements,
        s.progress,
        s.orders,
        s.receipts,
        s.pending_receipts,
        s.subscriptions,
        s.plan_overrides,
        s.audit_entries,
        s.payout_accounts
    )
}

/// Copies `from` into `to`, then verifies every record; the answer is what
/// was verified.
pub async fn run_copy(from: &str, to: &str) -> Result<Summary, StoreCliError> {
    if from.trim() == to.trim() {
        return Err(StoreCliError::Same(shown(from)));
    }
    let source = open("--from", from).await?;
    let target = open_target("--to", to).await?;
    let progress = |what: &str, n: u64| eprintln!("copied {n} {what}");
    copy(&*source, &*target, &progress).await?;
    eprintln!("verifying");
    Ok(summarize(&*source, Some(&*target)).await?)
}

/// Counts what `spec` holds.
pub async fn run_count(spec: &str) -> Result<Summary, StoreCliError> {
    let store = open("--store", spec).await?;
    Ok(summarize(&*store, None).await?)
}
