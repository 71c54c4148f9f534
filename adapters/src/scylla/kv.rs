//! The key-value port ([`Kv`]) for [`ScyllaStore`]: table `kv` (cql/005),
//! partitioned by [`crate::kv::partition`] of the key.
//!
//! `apply`: the conditions must name one partition
//! ([`KvBatch::cond_partition`]). Without conditions the writes go out as
//! one logged batch (every write is applied eventually, even across a
//! coordinator crash). With conditions: one conditional batch on the
//! conditions' partition, holding each condition merged with the write to
//! the same key (`UPDATE ... IF value = null` for absent, `IF value = ?`
//! for equals) and that partition's other writes; then, only if it
//! applied, the writes to other partitions as a logged batch. A crash in
//! between can leave those unwritten, which the port allows (callers order
//! their steps, docs/ARCHITECTURE.md "Conditions on one partition"). A
//! conditional batch that timed out is settled by reading its partition's
//! keys at the serial consistency: every write visible → applied;
//! otherwise `Unavailable` (never a guess that could repeat an
//! increment).
//!
//! `scan`: a prefix containing '/' lies in one partition: a clustering
//! range `ns = ? AND key >= prefix AND key < next(prefix)`. A prefix
//! without '/' can span every partition: a full-table scan filtered by
//! `ns`, sorted here. Expensive: only revocations use it (prefix "", once
//! per node start, when Redis is not configured).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

use super::exec::{Lwt, corrupt};
use super::{ScyllaStore, limit_of};
use crate::kv::{Kv, KvBatch, KvCond, partition};

type Values = Box<dyn SerializeRow + Send + Sync>;

/// The smallest string greater than every string starting with `prefix`
/// (`None` when there is none: the prefix ends in `char::MAX`).
fn after_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(c) = next {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// What one key of the conditions' partition does in the conditional batch.
enum Step {
    Absent,
    Equals(Vec<u8>),
}

impl ScyllaStore {
    /// The value of a key at the serial consistency (settling a timeout).
    async fn kv_get_serial(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = &self.inner;
        let rows = inner
            .run_serial(&inner.st.KV_GET, (partition(key), ns, key))
            .await?
            .into_rows_result()
            .map_err(|e| corrupt("kv", e))?;
        Ok(rows
            .maybe_first_row::<(Option<Vec<u8>>,)>()
            .map_err(|e| corrupt("kv", e))?
            .and_then(|(v,)| v))
    }

    /// A plain write's statement and values.
    fn plain(
        &self,
        ns: &'static str,
        key: &str,
        value: &Option<Vec<u8>>,
    ) -> (PreparedStatement, Values) {
        let st = &self.inner.st;
        let part = partition(key).to_string();
        match value {
            Some(v) => (
                st.KV_PUT.clone(),
                Box::new((part, ns, key.to_string(), v.clone())),
            ),
            None => (st.KV_DELETE.clone(), Box::new((part, ns, key.to_string()))),
        }
    }

    async fn plain_batch(
        &self,
        writes: &[(&'static str, String, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new(BatchType::Logged);
        let mut values: Vec<Values> = Vec::new();
        for (ns, key, value) in writes {
            let (stmt, v) = self.plain(ns, key, value);
            batch.append_statement(stmt);
            values.push(v);
        }
        self.inner.run_batch(&batch, values).await
    }
}

#[async_trait]
impl Kv for ScyllaStore {
    async fn get(&self, ns: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = &self.inner;
        let rows = inner
            .run(&inner.st.KV_GET, (partition(key), ns, key))
            .await?
            .into_rows_result()
            .map_err(|e| corrupt("kv", e))?;
        Ok(rows
            .maybe_first_row::<(Option<Vec<u8>>,)>()
            .map_err(|e| corrupt("kv", e))?
            .and_then(|(v,)| v))
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
        let inner = &self.inner;
        let decode = |rows: &scylla::response::query_result::QueryRowsResult,
                      out: &mut Vec<(String, Vec<u8>)>| {
            for row in rows
                .rows::<(String, Option<Vec<u8>>)>()
                .map_err(|e| corrupt("kv scan", e))?
            {
                let (key, value) = row.map_err(|e| corrupt("kv scan", e))?;
                if let (true, Some(value)) = (key.starts_with(prefix), value) {
                    out.push((key, value));
                }
            }
            Ok(())
        };
        if prefix.contains('/') {
            let part = partition(prefix);
            return match after_prefix(prefix) {
                Some(end) => {
                    let values = (part, ns, prefix, end.as_str(), limit_of(limit));
                    inner
                        .pages(&inner.st.KV_SCAN_RANGE, values, limit, decode)
                        .await
                }
                None => {
                    let values = (part, ns, prefix);
                    inner
                        .pages(&inner.st.KV_SCAN_FROM, values, limit, decode)
                        .await
                }
            };
        }
        tracing::debug!(ns, prefix, "scylla kv: full-table scan");
        let mut all = inner
            .pages(&inner.st.KV_SCAN_ALL, (ns,), usize::MAX, decode)
            .await?;
        all.sort();
        all.truncate(limit);
        Ok(all)
    }

    #[tracing::instrument(skip_all, fields(conds = batch.conds.len(), writes = batch.writes.len()))]
    async fn apply(&self, batch: KvBatch) -> Result<bool, StoreError> {
        let Some(part) = batch.cond_partition()?.map(str::to_string) else {
            self.plain_batch(&batch.writes).await?;
            return Ok(true);
        };
        // The last write of each key wins, as in a transaction.
        let mut writes: BTreeMap<(&'static str, String), Option<Vec<u8>>> = BTreeMap::new();
        for (ns, key, value) in &batch.writes {
            writes.insert((ns, key.clone()), value.clone());
        }
        let mut steps: BTreeMap<(&'static str, String), Step> = BTreeMap::new();
        for cond in &batch.conds {
            let (k, step) = match cond {
                KvCond::Absent { ns, key } => ((*ns, key.clone()), Step::Absent),
                KvCond::Equals { ns, key, value } => {
                    ((*ns, key.clone()), Step::Equals(value.clone()))
                }
            };
            let same = match (steps.get(&k), &step) {
                (None, _) | (Some(Step::Absent), Step::Absent) => true,
                (Some(Step::Equals(a)), Step::Equals(b)) => a == b,
                _ => false,
            };
            if !same {
                return Ok(false); // two conditions on one key that cannot both hold
            }
            steps.insert(k, step);
        }
        let st = &self.inner.st;
        let mut cas = Batch::new(BatchType::Logged);
        let mut values: Vec<Values> = Vec::new();
        let mut elsewhere = Vec::new();
        for ((ns, key), step) in &steps {
            let p = partition(key).to_string();
            let (stmt, v): (&PreparedStatement, Values) =
                match (step, writes.remove(&(*ns, key.clone()))) {
                    (Step::Absent, Some(Some(v))) => {
                        (&st.KV_PUT_IF_ABSENT, Box::new((v, p, *ns, key.clone())))
                    }
                    (Step::Absent, _) => (&st.KV_CHECK_ABSENT, Box::new((p, *ns, key.clone()))),
                    (Step::Equals(old), Some(Some(v))) => (
                        &st.KV_PUT_IF_EQUALS,
                        Box::new((v, p, *ns, key.clone(), old.clone())),
                    ),
                    (Step::Equals(old), Some(None)) => (
                        &st.KV_DELETE_IF_EQUALS,
                        Box::new((p, *ns, key.clone(), old.clone())),
                    ),
                    (Step::Equals(old), None) => (
                        &st.KV_PUT_IF_EQUALS,
                        Box::new((old.clone(), p, *ns, key.clone(), old.clone())),
                    ),
                };
            cas.append_statement(stmt.clone());
            values.push(v);
        }
        let mut mine = Vec::new();
        for ((ns, key), value) in writes {
            if partition(&key) == part {
                let (stmt, v) = self.plain(ns, &key, &value);
                cas.append_statement(stmt);
                values.push(v);
                mine.push((ns, key, value));
            } else {
                elsewhere.push((ns, key, value));
            }
        }
        let applied = match self.inner.lwt_batch(&cas, values).await {
            Lwt::Applied => true,
            Lwt::NotApplied => false,
            Lwt::Failed(e) => return Err(e),
            Lwt::Unknown(e) => {
                // Settle: every write of the partition visible → applied.
                let mut expected: Vec<(&'static str, String, Option<Vec<u8>>)> = mine;
                for ((ns, key), step) in &steps {
                    let kept = batch
                        .writes
                        .iter()
                        .rev()
                        .find(|(n, k, _)| n == ns && k == key)
                        .map(|(_, _, v)| v.clone());
                    let v = match (step, kept) {
                        (_, Some(v)) => v,
                        (Step::Absent, None) => None,
                        (Step::Equals(old), None) => Some(old.clone()),
                    };
                    expected.push((ns, key.clone(), v));
                }
                for (ns, key, value) in &expected {
                    if self.kv_get_serial(ns, key).await? != *value {
                        tracing::warn!("scylla kv: timed-out conditional batch not visible");
                        return Err(e);
                    }
                }
                true
            }
        };
        if applied {
            self.plain_batch(&elsewhere).await?;
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::after_prefix;

    #[test]
    fn prefix_upper_bounds() {
        assert_eq!(after_prefix("u1/").as_deref(), Some("u10"));
        assert_eq!(after_prefix("a/b").as_deref(), Some("a/c"));
        assert_eq!(after_prefix("x\u{D7FF}").as_deref(), Some("x\u{E000}"));
        assert_eq!(after_prefix("x\u{10FFFF}").as_deref(), Some("y"));
        assert_eq!(after_prefix("\u{10FFFF}"), None);
    }
}
