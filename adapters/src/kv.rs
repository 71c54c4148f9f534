//! The key-value port for the account, session, relationship, profile and
//! revocation records: namespaced keys, conditional batches
//! (insert-if-absent, compare-and-set), prefix scans.
//! Adapters: the embedded store (`crate::embedded::kv`), PostgreSQL
//! (`crate::postgres`), ScyllaDB.
//!
//! **Partitions.** A key's partition is its text before the first `/` (the
//! whole key when it has none), whatever its namespace: `u1/s9` in
//! `session` and `u1` in `account` share partition `u1`; `a@b.example` in
//! `email` is one of its own. ScyllaDB stores each partition together and
//! can make a condition atomic only within one, so the port promises
//! exactly that on every engine:
//! - every condition of a batch names keys of **one** partition (otherwise
//!   `apply` answers [`StoreError::Conflict`] and writes nothing;
//!   [`KvBatch::cond_partition`] checks it);
//! - writes in that partition are applied atomically with the conditions;
//! - writes elsewhere are applied only if the conditions held, after them,
//!   and a crash in between may leave them unwritten (the embedded and
//!   PostgreSQL adapters still apply them in the same transaction; callers
//!   must not count on it). Callers that keep a record in one partition and
//!   an index or reservation in another order their steps so that no such
//!   crash is visible: see docs/ARCHITECTURE.md, "Conditions on one
//!   partition".

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;

/// A precondition of a batch; if any fails, nothing is written.
#[derive(Debug, Clone, PartialEq)]
pub enum KvCond {
    /// No value under the key.
    Absent { ns: &'static str, key: String },
    /// The value is exactly these bytes.
    Equals {
        ns: &'static str,
        key: String,
        value: Vec<u8>,
    },
}

/// Writes applied together (`None` deletes).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KvBatch {
    pub conds: Vec<KvCond>,
    pub writes: Vec<(&'static str, String, Option<Vec<u8>>)>,
}

impl KvBatch {
    pub fn put(mut self, ns: &'static str, key: impl Into<String>, value: Vec<u8>) -> KvBatch {
        self.writes.push((ns, key.into(), Some(value)));
        self
    }
    pub fn delete(mut self, ns: &'static str, key: impl Into<String>) -> KvBatch {
        self.writes.push((ns, key.into(), None));
        self
    }
    pub fn if_absent(mut self, ns: &'static str, key: impl Into<String>) -> KvBatch {
        self.conds.push(KvCond::Absent {
            ns,
            key: key.into(),
        });
        self
    }
    pub fn if_equals(
        mut self,
        ns: &'static str,
        key: impl Into<String>,
        value: Vec<u8>,
    ) -> KvBatch {
        self.conds.push(KvCond::Equals {
            ns,
            key: key.into(),
            value,
        });
        self
    }
}

/// The partition of `key`: its text before the first `/`, or all of it.
pub fn partition(key: &str) -> &str {
    key.split_once('/').map_or(key, |(p, _)| p)
}

impl KvBatch {
    /// The one partition that every condition names (`None` for a batch
    /// without conditions), or a `Conflict` when the conditions span
    /// several: such a batch cannot be atomic on ScyllaDB, so no adapter
    /// accepts it.
    pub fn cond_partition(&self) -> Result<Option<&str>, StoreError> {
        let mut found: Option<&str> = None;
        for c in &self.conds {
            let key = match c {
                KvCond::Absent { key, .. } | KvCond::Equals { key, .. } => key,
            };
            let here = partition(key);
            match found {
                None => found = Some(here),
                Some(p) if p == here => {}
                Some(p) => {
                    return Err(StoreError::Conflict(format!(
                        "a batch's conditions must name one partition: `{p}` and `{here}`"
                    )));
                }
            }
        }
        Ok(found)
    }
}

/// Durable namespaced key-value records.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    async fn get(&self, ns: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Keys starting with `prefix` in key order, at most `limit`.
    async fn scan(
        &self,
        ns: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Applies `batch` durably (atomically within the conditions'
    /// partition, see the module docs); `Ok(false)` when a condition failed
    /// (nothing written), `Conflict` when its conditions span partitions.
    async fn apply(&self, batch: KvBatch) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_condition_checks() {
        assert_eq!(partition("u1/s9"), "u1");
        assert_eq!(partition("acct-1"), "acct-1");
        assert_eq!(partition("/x"), "");
        let ok = KvBatch::default()
            .if_absent("a", "u1/x")
            .if_equals("a", "u1/y/z", vec![1])
            .put("b", "elsewhere", vec![]);
        assert_eq!(ok.cond_partition().unwrap(), Some("u1"));
        assert_eq!(
            KvBatch::default()
                .put("a", "k", vec![])
                .cond_partition()
                .unwrap(),
            None
        );
        let two_keys = KvBatch::default().if_absent("a", "k1").if_absent("a", "k2");
        assert!(matches!(
            two_keys.cond_partition(),
            Err(StoreError::Conflict(_))
        ));
        let two_ns = KvBatch::default()
            .if_absent("a", "u1")
            .if_absent("b", "u1/x");
        assert_eq!(
            two_ns.cond_partition().unwrap(),
            Some("u1"),
            "namespaces share partitions"
        );
    }
}
