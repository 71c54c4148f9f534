//! Revocations shared by every node through Redis: `SET
//! chalktalk:revoked:{sid} 1 PX ttl` plus `PUBLISH chalktalk:revocations
//! {sid}`. Each node subscribes to the channel and keeps what it hears in
//! its [`LocalList`], which closes WebSockets of revoked sessions; after a
//! (re)connect of the subscription it rescans the keys it may have missed.
//!
//! Checks ask Redis (`EXISTS`, 500 ms timeout). When Redis is unreachable
//! they fall back to what this node knows (its own revocations and those
//! heard before the outage): requests keep being served, and a session
//! revoked elsewhere during the outage stays usable until its access token
//! expires; its refresh token is dead anyway (the session record is gone).

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Mutex, broadcast};

use super::revocations::{LocalList, RevocationError, Revocations};

const KEY_PREFIX: &str = "chalktalk:revoked:";
const CHANNEL: &str = "chalktalk:revocations";
const TIMEOUT: Duration = Duration::from_millis(500);

struct Inner {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    list: LocalList,
}

/// Revocations in Redis (see the module doc).
pub struct RedisRevocations {
    inner: Arc<Inner>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for RedisRevocations {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl RedisRevocations {
    /// Connects lazily: a Redis that is down at start is retried.
    pub fn open(url: &str, ttl: Duration) -> Result<RedisRevocations, RevocationError> {
        let client =
            redis::Client::open(url).map_err(|e| RevocationError::Unavailable(e.to_string()))?;
        let inner = Arc::new(Inner {
            client,
            conn: Mutex::new(None),
            list: LocalList::new(ttl),
        });
        let listener = tokio::spawn(listen(Arc::downgrade(&inner)));
        Ok(RedisRevocations { inner, listener })
    }
}

impl Inner {
    async fn conn(&self) -> Result<MultiplexedConnection, String> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(TIMEOUT, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "connect timeout".to_string())?
            .map_err(|e| e.to_string())?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut c = self.conn().await?;
        let r = match tokio::time::timeout(TIMEOUT, cmd.query_async::<T>(&mut c)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("timeout".into()),
        };
        if r.is_err() {
            // Reconnect on the next call.
            *self.conn.lock().await = None;
        }
        r
    }

    /// Every revoked sid in Redis, into the local list.
    async fn rescan(&self) -> Result<(), String> {
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{KEY_PREFIX}*"))
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            for k in keys {
                if let Some(sid) = k.strip_prefix(KEY_PREFIX) {
                    self.list.insert(sid, self.list.until());
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// Subscribes and feeds the local list until the revocations are dropped.
async fn listen(inner: Weak<Inner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(me) = inner.upgrade() else { return };
        let client = me.client.clone();
        drop(me);
        let sub = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(CHANNEL).await?;
            redis::RedisResult::Ok(ps)
        };
        match tokio::time::timeout(Duration::from_secs(2), sub).await {
            Ok(Ok(mut ps)) => {
                backoff = Duration::from_millis(100);
                if let Some(me) = inner.upgrade()
                    && let Err(e) = me.rescan().await
                {
                    tracing::warn!(%e, "cannot rescan revocations in redis");
                }
                let mut stream = ps.on_message();
                while let Some(msg) = stream.next().await {
                    let Some(me) = inner.upgrade() else { return };
                    if let Ok(sid) = msg.get_payload::<String>() {
                        me.list.insert(&sid, me.list.until());
                    }
                }
                tracing::warn!("redis revocation subscription ended; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(%e, "cannot subscribe to revocations in redis"),
            Err(_) => tracing::warn!("timeout subscribing to revocations in redis"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[async_trait]
impl Revocations for RedisRevocations {
    async fn revoke(&self, sid: &str) -> Result<(), RevocationError> {
        let me = &self.inner;
        me.list.insert(sid, me.list.until());
        let ttl_ms = me.list.ttl().as_millis() as u64;
        let set = redis::cmd("SET")
            .arg(format!("{KEY_PREFIX}{sid}"))
            .arg(1)
            .arg("PX")
            .arg(ttl_ms.max(1))
            .to_owned();
        me.query::<()>(&set)
            .await
            .map_err(RevocationError::Unavailable)?;
        let publish = redis::cmd("PUBLISH").arg(CHANNEL).arg(sid).to_owned();
        me.query::<i64>(&publish)
            .await
            .map_err(RevocationError::Unavailable)?;
        Ok(())
    }

    async fn is_revoked(&self, sid: &str) -> bool {
        let me = &self.inner;
        if me.list.contains(sid) {
            return true;
        }
        let exists = redis::cmd("EXISTS")
            .arg(format!("{KEY_PREFIX}{sid}"))
            .to_owned();
        match me.query::<i64>(&exists).await {
            Ok(n) => {
                if n > 0 {
                    me.list.insert(sid, me.list.until());
                }
                n > 0
            }
            Err(e) => {
                tracing::warn!(%e, "redis unreachable; revocation check uses this node's list");
                false
            }
        }
    }

    fn is_revoked_locally(&self, sid: &str) -> bool {
        self.inner.list.contains(sid)
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.list.subscribe()
    }
}
