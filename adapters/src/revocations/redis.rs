//! Revocations shared by every node through Redis: `SET
//! chalktalk:revoked:{sid} 1 PX ttl` plus `PUBLISH chalktalk:revocations
//! {sid}`. Each node subscribes to the channel and keeps what it hears in
//! its [`LocalList`], which closes WebSockets of revoked sessions; after a
//! (re)connect of the subscription it rescans the keys it may have missed.
//!
//! Checks ask Redis (`EXISTS`, 500 ms timeout). When Redis is unreachable
//! they fail open to what this node knows (its own revocations and those
//! heard before the outage): requests keep being served, and a session
//! revoked on another node during the outage stays usable on this one
//! until Redis is back (or its access token expires); its refresh token is
//! dead anyway (the session record is gone). After a failure Redis is not
//! asked again for [`RETRY_AFTER`] (checks answer at once from the local
//! list), so an unresponsive Redis costs one timeout, not one per request.
//!
//! Convergence: a revocation that could not be written (Redis down) is
//! written and published again once Redis answers (checked every
//! [`FLUSH_EVERY`]), and every (re)subscription writes back each revocation
//! the node knows that Redis lacks (`SET NX`; a Redis restarted empty
//! learns them again, and each is published once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Mutex, broadcast};

use super::{LocalList, RevocationError, Revocations};

const KEY_PREFIX: &str = "chalktalk:revoked:";
const CHANNEL: &str = "chalktalk:revocations";
const TIMEOUT: Duration = Duration::from_millis(500);
/// How long Redis is left alone after a failed call.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often unshared revocations are retried while subscribed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
const CLOSED: &str = "redis unavailable (retrying shortly)";

struct Inner {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    /// No call to Redis before this instant (set after a failure).
    closed_until: std::sync::Mutex<Option<Instant>>,
    /// A revocation of this node is not in Redis yet.
    unshared: AtomicBool,
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
            closed_until: std::sync::Mutex::new(None),
            unshared: AtomicBool::new(false),
            list: LocalList::new(ttl),
        });
        let listener = tokio::spawn(listen(Arc::downgrade(&inner)));
        Ok(RedisRevocations { inner, listener })
    }
}

impl Inner {
    fn closed(&self) -> bool {
        let until = *self.closed_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    async fn conn(&self) -> Result<MultiplexedConnection, String> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        // Waited for the lock while another call found Redis away.
        if self.closed() {
            return Err(CLOSED.into());
        }
        let c = tokio::time::timeout(TIMEOUT, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "connect timeout".to_string())?
            .map_err(|e| e.to_string())?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// One command, at most [`TIMEOUT`]; none while Redis is left alone.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        if self.closed() {
            return Err(CLOSED.into());
        }
        let r = async {
            let mut c = self.conn().await?;
            match tokio::time::timeout(TIMEOUT, cmd.query_async::<T>(&mut c)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("timeout".into()),
            }
        }
        .await;
        if let Err(e) = &r
            && e != CLOSED
        {
            // At most one line per RETRY_AFTER while Redis is away.
            tracing::warn!(%e, "redis unreachable: revocation checks use this node's list; revocations are shared once it answers");
            *self.conn.lock().await = None;
            *self.closed_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + RETRY_AFTER);
        }
        r
    }

    /// Writes `sid` (until `until_ms`) to Redis and publishes it; with
    /// `only_if_missing`, neither when Redis already has it.
    async fn share(&self, sid: &str, until_ms: u64, only_if_missing: bool) -> Result<(), String> {
        let left = until_ms.saturating_sub(chalktalk_actors::now_ms());
        if left == 0 {
            return Ok(());
        }
        let mut set = redis::cmd("SET");
        set.arg(format!("{KEY_PREFIX}{sid}"))
            .arg(1)
            .arg("PX")
            .arg(left);
        if only_if_missing {
            set.arg("NX");
        }
        let written: Option<String> = self.query(&set).await?;
        if written.is_some() {
            let publish = redis::cmd("PUBLISH").arg(CHANNEL).arg(sid).to_owned();
            self.query::<i64>(&publish).await?;
        }
        Ok(())
    }

    /// Writes back every revocation this node knows that Redis lacks.
    async fn write_back(&self) -> Result<(), String> {
        self.unshared.store(false, Ordering::SeqCst);
        for (sid, until) in self.list.live() {
            if let Err(e) = self.share(&sid, until, true).await {
                self.unshared.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
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
                if let Some(me) = inner.upgrade() {
                    // A fresh subscription: Redis answers again.
                    *me.closed_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    if let Err(e) = me.write_back().await {
                        tracing::warn!(%e, "cannot write revocations back to redis");
                    }
                    if let Err(e) = me.rescan().await {
                        tracing::warn!(%e, "cannot rescan revocations in redis");
                    }
                }
                let mut stream = ps.on_message();
                let mut flush = tokio::time::interval(FLUSH_EVERY);
                loop {
                    tokio::select! {
                        msg = stream.next() => {
                            let Some(msg) = msg else { break };
                            let Some(me) = inner.upgrade() else { return };
                            if let Ok(sid) = msg.get_payload::<String>() {
                                me.list.insert(&sid, me.list.until());
                            }
                        }
                        _ = flush.tick() => {
                            let Some(me) = inner.upgrade() else { return };
                            if me.unshared.load(Ordering::SeqCst) && !me.closed() {
                                match me.write_back().await {
                                    Ok(()) => tracing::info!("revocations made while redis was unreachable are shared now"),
                                    Err(e) => tracing::debug!(%e, "revocations still unshared"),
                                }
                            }
                        }
                    }
                }
                tracing::warn!("redis revocation subscription ended; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(%e, "cannot subscribe to revocations in redis"),
            Err(_) => tracing::warn!("timeout subscribing to revocations in redis"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[async_trait]
impl Revocations for RedisRevocations {
    async fn revoke(&self, sid: &str) -> Result<(), RevocationError> {
        let me = &self.inner;
        let until = me.list.until();
        me.list.insert(sid, until);
        if let Err(e) = me.share(sid, until, false).await {
            // Retried by the listener once Redis answers.
            me.unshared.store(true, Ordering::SeqCst);
            return Err(RevocationError::Unavailable(e));
        }
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
                tracing::debug!(%e, "revocation check from this node's list");
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
