//! [`KvLeases`]: the lease port on the key-value port, one record per
//! lease (namespace `lease`, key `room:ID` / `thread:ID` / `inbox:ID`, no
//! `/`, so each lease is a partition of its own and every change is one
//! compare-and-set on it: an LWT on ScyllaDB, a locked row in PostgreSQL).
//! Expiry uses this node's clock: run the nodes with synchronized clocks
//! (NTP) and keep the lease time far above their skew; the epoch, not the
//! clock, is what keeps two owners from both writing (fencing).

use std::sync::Arc;

use async_trait::async_trait;
use chalktalk_actors::lease::{Acquired, Lease, LeaseKind, Leases};
use chalktalk_actors::store::StoreError;

use crate::kv::{Kv, KvBatch};

/// The namespace of lease records.
pub const NS_LEASE: &str = "lease";

/// Rounds of compare-and-set before answering `Conflict`.
const ROUNDS: usize = 8;

/// Leases kept in a key-value store.
#[derive(Clone)]
pub struct KvLeases {
    kv: Arc<dyn Kv>,
}

impl KvLeases {
    pub fn new(kv: Arc<dyn Kv>) -> KvLeases {
        KvLeases { kv }
    }

    async fn read(&self, key: &str) -> Result<Option<(Lease, Vec<u8>)>, StoreError> {
        match self.kv.get(NS_LEASE, key).await? {
            Some(bytes) => {
                let lease = rmp_serde::from_slice(&bytes)
                    .map_err(|e| StoreError::Corrupt(format!("lease {key}: {e}")))?;
                Ok(Some((lease, bytes)))
            }
            None => Ok(None),
        }
    }

    /// Writes `new` if the record is still `old`.
    async fn swap(&self, key: &str, old: Option<Vec<u8>>, new: &Lease) -> Result<bool, StoreError> {
        let bytes = rmp_serde::to_vec_named(new).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let batch = match old {
            Some(o) => KvBatch::default().if_equals(NS_LEASE, key.to_string(), o),
            None => KvBatch::default().if_absent(NS_LEASE, key.to_string()),
        };
        self.kv
            .apply(batch.put(NS_LEASE, key.to_string(), bytes))
            .await
    }
}

fn key(kind: LeaseKind, id: &str) -> String {
    format!("{}:{id}", kind.as_str())
}

fn now() -> u64 {
    chalktalk_actors::now_ms()
}

fn lost_races(what: &str) -> StoreError {
    StoreError::Conflict(format!("lease {what}: lost {ROUNDS} races in a row"))
}

#[async_trait]
impl Leases for KvLeases {
    async fn acquire(
        &self,
        kind: LeaseKind,
        id: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<Acquired, StoreError> {
        let k = key(kind, id);
        for _ in 0..ROUNDS {
            let t = now();
            let cur = self.read(&k).await?;
            let new = match &cur {
                Some((l, _)) if l.expires_ms > t && l.owner != owner => {
                    return Ok(Acquired::Busy(l.clone()));
                }
                Some((l, _)) if l.expires_ms > t => Lease {
                    expires_ms: t + ttl_ms,
                    ..l.clone()
                },
                Some((l, _)) => Lease {
                    kind,
                    id: id.to_string(),
                    owner: owner.to_string(),
                    epoch: l.epoch + 1,
                    expires_ms: t + ttl_ms,
                },
                None => Lease {
                    kind,
                    id: id.to_string(),
                    owner: owner.to_string(),
                    epoch: 1,
                    expires_ms: t + ttl_ms,
                },
            };
            if self.swap(&k, cur.map(|(_, b)| b), &new).await? {
                return Ok(Acquired::Held(new));
            }
        }
        Err(lost_races(&k))
    }

    async fn renew(&self, lease: &Lease, ttl_ms: u64) -> Result<Option<Lease>, StoreError> {
        let k = key(lease.kind, &lease.id);
        for _ in 0..ROUNDS {
            let t = now();
            let Some((cur, bytes)) = self.read(&k).await? else {
                return Ok(None);
            };
            if cur.owner != lease.owner || cur.epoch != lease.epoch || cur.expires_ms <= t {
                return Ok(None);
            }
            let new = Lease {
                expires_ms: t + ttl_ms,
                ..cur
            };
            if self.swap(&k, Some(bytes), &new).await? {
                return Ok(Some(new));
            }
        }
        Err(lost_races(&k))
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let k = key(lease.kind, &lease.id);
        for _ in 0..ROUNDS {
            let Some((cur, bytes)) = self.read(&k).await? else {
                return Ok(());
            };
            if cur.owner != lease.owner || cur.epoch != lease.epoch {
                return Ok(());
            }
            let new = Lease {
                expires_ms: 0,
                ..cur
            };
            if self.swap(&k, Some(bytes), &new).await? {
                return Ok(());
            }
        }
        Err(lost_races(&k))
    }

    async fn holder(&self, kind: LeaseKind, id: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self.read(&key(kind, id)).await?.map(|(l, _)| l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbeddedStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_lease_suite_on_the_embedded_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let a = Arc::new(KvLeases::new(store.clone()));
        let b = Arc::new(KvLeases::new(store));
        crate::conformance::lease::run_all(a, b).await;
    }

    #[tokio::test]
    async fn a_corrupt_record_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .apply(KvBatch::default().put(NS_LEASE, "room:x", vec![0xc1]))
            .await
            .unwrap();
        let l = KvLeases::new(store);
        assert!(matches!(
            l.acquire(LeaseKind::Room, "x", "n1", 100).await,
            Err(StoreError::Corrupt(_))
        ));
    }
}
