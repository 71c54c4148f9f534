//! The revocation list: session ids (`sid` of access tokens) revoked by a
//! sign-out, a device revocation or a reused refresh token. An access token
//! of a revoked session is refused everywhere until it would have expired
//! anyway (an entry lives `ttl` = the access-token lifetime plus leeway).
//!
//! [`Revocations`] is the port; [`EmbeddedRevocations`] keeps the list in
//! process and persists it in the key-value store (one node, survives
//! restarts); `RedisRevocations` (module `redis`) shares it between nodes.
//! Both tell local subscribers about every revocation they hear of, which
//! is how open WebSockets of a revoked session are closed
//! (the server's `spawn_closer` with its `SidIndex`).

mod redis;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use redis::RedisRevocations;

use crate::kv::{Kv, KvBatch};

/// Namespace of persisted revocations: key = sid, value = expiry (ms, BE).
pub const NS_REVOKED: &str = "revoked";

/// Why a revocation could not be recorded everywhere.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("revocation store unavailable: {0}")]
    Unavailable(String),
}

/// The revocation list port.
#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// Revokes `sid` on every node (and this one at once, even when the
    /// shared list is unreachable: then the error says the other nodes may
    /// not know).
    async fn revoke(&self, sid: &str) -> Result<(), RevocationError>;
    /// The authoritative answer (the shared list when there is one; what
    /// this node knows if it is unreachable).
    async fn is_revoked(&self, sid: &str) -> bool;
    /// What this node knows, without I/O.
    fn is_revoked_locally(&self, sid: &str) -> bool;
    /// Every revocation this node hears of, from any node.
    fn subscribe(&self) -> broadcast::Receiver<String>;
}

/// What one node knows: sid -> expiry (ms), plus the local broadcast.
pub struct LocalList {
    ttl: Duration,
    map: Mutex<HashMap<String, u64>>,
    tx: broadcast::Sender<String>,
}

impl LocalList {
    pub fn new(ttl: Duration) -> LocalList {
        LocalList {
            ttl,
            map: Mutex::default(),
            tx: broadcast::channel(1024).0,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `sid` until `until_ms`; tells subscribers if it is new.
    pub fn insert(&self, sid: &str, until_ms: u64) {
        let now = chalktalk_actors::now_ms();
        let fresh = {
            let mut m = self.lock();
            if m.len() > 4096 {
                m.retain(|_, exp| *exp > now);
            }
            m.insert(sid.to_string(), until_ms)
                .is_none_or(|old| old <= now)
        };
        if fresh {
            let _ = self.tx.send(sid.to_string());
        }
    }

    pub fn contains(&self, sid: &str) -> bool {
        let now = chalktalk_actors::now_ms();
        self.lock().get(sid).is_some_and(|exp| *exp > now)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    /// The unexpired entries: (sid, expiry in ms).
    pub fn live(&self) -> Vec<(String, u64)> {
        let now = chalktalk_actors::now_ms();
        self.lock()
            .iter()
            .filter(|(_, exp)| **exp > now)
            .map(|(sid, exp)| (sid.clone(), *exp))
            .collect()
    }

    /// Expiry of an entry made now.
    pub fn until(&self) -> u64 {
        chalktalk_actors::now_ms() + self.ttl.as_millis() as u64
    }
}

/// Single-node revocations: in process, persisted in the key-value store.
pub struct EmbeddedRevocations {
    list: LocalList,
    kv: Arc<dyn Kv>,
}

impl EmbeddedRevocations {
    /// Loads the unexpired entries and drops the expired ones.
    pub async fn open(
        kv: Arc<dyn Kv>,
        ttl: Duration,
    ) -> Result<EmbeddedRevocations, RevocationError> {
        let unavailable =
            |e: chalktalk_actors::store::StoreError| RevocationError::Unavailable(e.to_string());
        let list = LocalList::new(ttl);
        let now = chalktalk_actors::now_ms();
        let mut expired = KvBatch::default();
        for (sid, v) in kv
            .scan(NS_REVOKED, "", 1_000_000)
            .await
            .map_err(unavailable)?
        {
            let until = v.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0);
            if until > now {
                list.lock().insert(sid, until);
            } else {
                expired = expired.delete(NS_REVOKED, sid);
            }
        }
        if !expired.writes.is_empty() {
            kv.apply(expired).await.map_err(unavailable)?;
        }
        Ok(EmbeddedRevocations { list, kv })
    }
}

#[async_trait]
impl Revocations for EmbeddedRevocations {
    async fn revoke(&self, sid: &str) -> Result<(), RevocationError> {
        let until = self.list.until();
        self.list.insert(sid, until);
        let batch = KvBatch::default().put(NS_REVOKED, sid, until.to_be_bytes().to_vec());
        self.kv
            .apply(batch)
            .await
            .map(|_| ())
            .map_err(|e| RevocationError::Unavailable(e.to_string()))
    }

    async fn is_revoked(&self, sid: &str) -> bool {
        self.list.contains(sid)
    }

    fn is_revoked_locally(&self, sid: &str) -> bool {
        self.list.contains(sid)
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.list.subscribe()
    }
}

/// The node's revocation list: in Redis when `redis_url` is set, else
/// embedded in `kv`, else none (dev tokens only).
pub async fn open(
    redis_url: Option<&str>,
    kv: Option<Arc<dyn Kv>>,
    ttl: Duration,
) -> Result<Option<Arc<dyn Revocations>>, RevocationError> {
    Ok(match (redis_url, kv) {
        (Some(url), _) => Some(Arc::new(redis::RedisRevocations::open(url, ttl)?)),
        (None, Some(kv)) => Some(Arc::new(EmbeddedRevocations::open(kv, ttl).await?)),
        (None, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedStore;

    #[tokio::test]
    async fn embedded_persists_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let revs = EmbeddedRevocations::open(store.clone(), Duration::from_secs(60))
            .await
            .unwrap();
        let mut rx = revs.subscribe();
        revs.revoke("s1").await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), "s1");
        assert!(revs.is_revoked("s1").await && revs.is_revoked_locally("s1"));
        assert!(!revs.is_revoked("s2").await);
        drop(revs);
        let again = EmbeddedRevocations::open(store.clone(), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(again.is_revoked("s1").await, "persisted");
        let short = LocalList::new(Duration::from_millis(0));
        short.insert("x", short.until());
        assert!(!short.contains("x"), "expired at once");
    }
}
