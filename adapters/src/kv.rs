//! The key-value port for the account, session, relationship, profile and
//! revocation records: namespaced keys, conditional batches
//! (insert-if-absent, compare-and-set) committed atomically, prefix scans.
//! Adapters: the embedded store (`crate::embedded::kv`).

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
    /// Applies `batch` atomically and durably; `Ok(false)` when a condition
    /// failed (nothing written).
    async fn apply(&self, batch: KvBatch) -> Result<bool, StoreError>;
}
