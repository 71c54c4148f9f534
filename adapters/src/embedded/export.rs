//! [`Export`] for the embedded store: ids and key-value rows read straight
//! from the redb tables, in key order (what `chalktalk store copy` reads).

use std::ops::Bound;

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use redb::{ReadTransaction, TableDefinition};

use super::{EmbeddedStore, INBOX, MEMBERSHIPS, ROOMS, THREADS, unavailable};
use crate::copy::{Export, KvRow, Listing};

/// Opens a table; `None` when it was never created (nothing stored yet).
macro_rules! open_or_empty {
    ($txn:expr, $def:expr) => {
        match $txn.open_table($def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(e)),
        }
    };
}

/// Keys of a table keyed by id, after `after`.
fn ids<V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<&str, V>,
    after: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let t = open_or_empty!(txn, def);
    let range = t
        .range::<&str>((Bound::Excluded(after), Bound::Unbounded))
        .map_err(unavailable)?;
    let mut out = Vec::new();
    for item in range.take(limit) {
        let (k, _) = item.map_err(unavailable)?;
        out.push(k.value().to_string());
    }
    Ok(out)
}

/// Distinct users of the inbox table, after `after` (one seek per user).
fn inbox_users(
    txn: &ReadTransaction,
    after: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let t = open_or_empty!(txn, INBOX);
    let mut out: Vec<String> = Vec::new();
    let mut from = after.to_string();
    while out.len() < limit {
        let mut range = t
            .range::<(&str, u64)>((Bound::Excluded((from.as_str(), u64::MAX)), Bound::Unbounded))
            .map_err(unavailable)?;
        let Some(item) = range.next() else { break };
        let (k, _) = item.map_err(unavailable)?;
        from = k.value().0.to_string();
        out.push(from.clone());
    }
    Ok(out)
}

/// Distinct users of the memberships table (kinds are 0 and 1).
fn member_users(
    txn: &ReadTransaction,
    after: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let t = open_or_empty!(txn, MEMBERSHIPS);
    let mut out: Vec<String> = Vec::new();
    let mut from = after.to_string();
    while out.len() < limit {
        let mut range = t
            .range::<(&str, u8, &str)>((
                Bound::Included((from.as_str(), u8::MAX, "")),
                Bound::Unbounded,
            ))
            .map_err(unavailable)?;
        let Some(item) = range.next() else { break };
        let (k, _) = item.map_err(unavailable)?;
        from = k.value().0.to_string();
        out.push(from.clone());
    }
    Ok(out)
}

#[async_trait]
impl Export for EmbeddedStore {
    async fn list(
        &self,
        what: Listing,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let after = after.to_string();
        self.read(move |txn| match what {
            Listing::Rooms => ids(txn, ROOMS, &after, limit),
            Listing::Threads => ids(txn, THREADS, &after, limit),
            Listing::Inboxes => inbox_users(txn, &after, limit),
            Listing::Members => member_users(txn, &after, limit),
            Listing::Assets => ids(txn, super::media::ASSETS, &after, limit),
            Listing::Jobs => ids(txn, super::media::JOBS, &after, limit),
        })
        .await
    }

    async fn kv_rows(&self, after: (&str, &str), limit: usize) -> Result<Vec<KvRow>, StoreError> {
        let (ns, key) = (after.0.to_string(), after.1.to_string());
        self.read(move |txn| {
            let t = open_or_empty!(txn, super::kv::KV);
            let range = t
                .range::<(&str, &str)>((
                    Bound::Excluded((ns.as_str(), key.as_str())),
                    Bound::Unbounded,
                ))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for item in range.take(limit) {
                let (k, v) = item.map_err(unavailable)?;
                let (ns, key) = k.value();
                out.push((ns.to_string(), key.to_string(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }
}
