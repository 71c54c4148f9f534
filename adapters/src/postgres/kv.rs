//! The key-value port ([`Kv`]) for [`PgStore`]: table `kv` (ns, key,
//! value). Batches go through the writer task, which locks every key a
//! batch names ([`lock_id`], taken by `writer.rs` before anything else of
//! the transaction) and then calls [`apply_kv`]: conditions, then writes.
//! Reads are plain statements. Prefix scans use the "C" collation's byte
//! order.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;

use deadpool_postgres::Transaction;

use super::writer::Op;
use super::{PgStore, clamp, column};
use crate::kv::{Kv, KvBatch, KvCond};

#[async_trait]
impl Kv for PgStore {
    async fn get(&self, ns: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .query(
                "SELECT value FROM kv WHERE ns = $1 AND key = $2",
                &[&ns, &key],
            )
            .await?;
        rows.first().map(|row| column(row, 0)).transpose()
    }

    async fn scan(
        &self,
        ns: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT key, value FROM kv WHERE ns = $1 AND key >= $2 \
                 AND starts_with(key, $2) ORDER BY key LIMIT $3",
                &[&ns, &prefix, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((column(row, 0)?, column(row, 1)?)))
            .collect()
    }

    async fn apply(&self, batch: KvBatch) -> Result<bool, StoreError> {
        batch.cond_partition()?;
        if batch.writes.is_empty() && batch.conds.is_empty() {
            return Ok(true);
        }
        self.write(Op::Kv(batch)).await
    }
}

/// Checks a key-value batch's conditions (its keys are locked), then writes.
pub(super) async fn apply_kv(
    tx: &Transaction<'_>,
    batch: &KvBatch,
) -> Result<Result<bool, StoreError>, tokio_postgres::Error> {
    if !batch.conds.is_empty() {
        let get = tx
            .prepare_cached("SELECT value FROM kv WHERE ns = $1 AND key = $2")
            .await?;
        for cond in &batch.conds {
            let (ns, key) = cond_key(cond);
            let row = tx.query_opt(&get, &[&ns, &key]).await?;
            let stored: Option<Vec<u8>> = row.map(|r| r.try_get(0)).transpose()?;
            let ok = match cond {
                KvCond::Absent { .. } => stored.is_none(),
                KvCond::Equals { value, .. } => stored.as_deref() == Some(value.as_slice()),
            };
            if !ok {
                return Ok(Ok(false));
            }
        }
    }
    for (ns, key, value) in &batch.writes {
        match value {
            Some(v) => {
                let stmt = tx
                    .prepare_cached(
                        "INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) \
                         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
                    )
                    .await?;
                tx.execute(&stmt, &[ns, key, v]).await?;
            }
            None => {
                let stmt = tx
                    .prepare_cached("DELETE FROM kv WHERE ns = $1 AND key = $2")
                    .await?;
                tx.execute(&stmt, &[ns, key]).await?;
            }
        }
    }
    Ok(Ok(true))
}

fn cond_key(cond: &KvCond) -> (&'static str, &str) {
    match cond {
        KvCond::Absent { ns, key } | KvCond::Equals { ns, key, .. } => (ns, key.as_str()),
    }
}

/// Every (namespace, key) a batch reads or writes.
pub(super) fn kv_keys(batch: &KvBatch) -> impl Iterator<Item = (&'static str, &str)> {
    batch
        .conds
        .iter()
        .map(cond_key)
        .chain(batch.writes.iter().map(|(ns, key, _)| (*ns, key.as_str())))
}

/// The advisory lock of a key: FNV-1a 64 of "ns\0key", the same on every
/// node (unrelated keys may share a lock; that only serializes them).
pub(super) fn lock_id(ns: &str, key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ns.bytes().chain([0]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::lock_id;

    #[test]
    fn lock_ids_are_stable_and_separate_namespaces() {
        assert_eq!(lock_id("acct", "a@x"), lock_id("acct", "a@x"));
        assert_ne!(lock_id("acct", "a@x"), lock_id("acc", "ta@x"));
        assert_ne!(lock_id("acct", "a@x"), lock_id("sess", "a@x"));
    }
}
