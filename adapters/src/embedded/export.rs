//! [`Export`] for the embedded store: ids and key-value rows read straight
//! from the redb tables, in key order (what `chalktalk store copy` reads),
//! the program and billing records' among them.

use std::ops::Bound;

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use redb::{ReadTransaction, TableDefinition};

use super::billing::{AUDIT, OVERRIDES, PAYOUTS, SUBS};
use super::programs::{ENTITLEMENTS, ORDERS, PROGRAMS, PROGRESS, RECEIPTS};
use super::{EmbeddedStore, INBOX, MEMBERSHIPS, ROOMS, THREADS, unavailable};
use crate::copy::{Export, KvRow, Listing, PAIR_SEP, pair, unpair};

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

/// The smallest string after `s` (in byte order).
fn successor(s: &str) -> String {
    format!("{s}{PAIR_SEP}")
}

/// The (user, program) keys of the entitlements after the pair cursor
/// `after`, as pair ids.
fn entitlement_pairs(
    txn: &ReadTransaction,
    after: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let t = open_or_empty!(txn, ENTITLEMENTS);
    let start = match unpair(after) {
        (a, Some(b)) => Bound::Excluded((a, b)),
        (a, None) => Bound::Included((a, "")),
    };
    let mut out = Vec::new();
    for item in t
        .range::<(&str, &str)>((start, Bound::Unbounded))
        .map_err(unavailable)?
        .take(limit)
    {
        let (k, _) = item.map_err(unavailable)?;
        let (user, program) = k.value();
        out.push(pair(user, program));
    }
    Ok(out)
}

/// Distinct (user, program) of the progress table (keyed by user, program,
/// item) after the pair cursor `after`, as pair ids (one seek per pair).
fn progress_pairs(
    txn: &ReadTransaction,
    after: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let t = open_or_empty!(txn, PROGRESS);
    let mut from = match unpair(after) {
        (a, Some(b)) => (a.to_string(), successor(b)),
        (a, None) => (a.to_string(), String::new()),
    };
    let mut out = Vec::new();
    while out.len() < limit {
        let mut range = t
            .range::<(&str, &str, &str)>((
                Bound::Included((from.0.as_str(), from.1.as_str(), "")),
                Bound::Unbounded,
            ))
            .map_err(unavailable)?;
        let Some(item) = range.next() else { break };
        let (k, _) = item.map_err(unavailable)?;
        let (user, program, _) = k.value();
        out.push(pair(user, program));
        from = (user.to_string(), successor(program));
    }
    Ok(out)
}

/// Distinct subjects of the billing audit (keyed by subject, time, id)
/// after `after` (one seek per subject).
fn audit_subjects(
    txn: &ReadTransaction,
    after: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let t = open_or_empty!(txn, AUDIT);
    let mut from = successor(after);
    let mut out = Vec::new();
    while out.len() < limit {
        let mut range = t
            .range::<(&str, u64, &str)>((Bound::Included((from.as_str(), 0, "")), Bound::Unbounded))
            .map_err(unavailable)?;
        let Some(item) = range.next() else { break };
        let (k, _) = item.map_err(unavailable)?;
        let subject = k.value().0.to_string();
        from = successor(&subject);
        out.push(subject);
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
            Listing::Programs => ids(txn, PROGRAMS, &after, limit),
            Listing::Entitlements => entitlement_pairs(txn, &after, limit),
            Listing::Progress => progress_pairs(txn, &after, limit),
            Listing::Orders => ids(txn, ORDERS, &after, limit),
            Listing::Receipts => ids(txn, RECEIPTS, &after, limit),
            Listing::Subscriptions => ids(txn, SUBS, &after, limit),
            Listing::PlanOverrides => ids(txn, OVERRIDES, &after, limit),
            Listing::Audits => audit_subjects(txn, &after, limit),
            Listing::PayoutAccounts => ids(txn, PAYOUTS, &after, limit),
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
