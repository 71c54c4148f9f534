//! The [`Limiter`] shared by every node: one GCRA step per request as a Lua
//! script in Redis (atomic, one round trip; `EVALSHA`, `EVAL` when Redis
//! says `NOSCRIPT`), on Redis's clock so the nodes' clocks do not matter.
//! Buckets are `chalktalk:rl:{class}:{key}` holding the TAT in µs, with a
//! TTL that ends when the bucket is full again, so idle keys vanish.
//!
//! Failure direction: a request waits at most `redis_timeout` (50 ms by
//! default) on Redis. Any error or timeout marks Redis down (logged once)
//! and from then on this node's [`LocalLimiter`] decides: local limits,
//! never unlimited, never an error. A background task reconnects with
//! backoff (50 ms doubling to 2 s); once a connection answers the script,
//! Redis decides again (logged once).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, ServerErrorKind};

use super::gcra::decision;
use super::{
    Class, Decision, Limiter, LocalLimiter, Quota, Quotas, RateLimitConfig, RateLimitError,
};

/// Prefix of every rate-limit key in Redis.
pub const KEY_PREFIX: &str = "chalktalk:rl:";

/// The GCRA step of `gcra.rs`. KEYS[1]: the bucket; ARGV[1]: emission
/// interval (µs); ARGV[2]: tolerance (µs). Returns {allowed (0/1),
/// backlog µs (TAT after the step minus now), retry µs}.
const SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, new_tat - now, 0}
";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Redis-backed limiter with a local fallback; clones share everything.
#[derive(Clone)]
pub struct RedisLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// The live connection, while Redis is up.
    conn: Mutex<Option<Live>>,
    /// Numbers connections, so a late failure of an old one cannot take
    /// down its replacement.
    generation: AtomicU64,
    local: LocalLimiter,
    quotas: Quotas,
    timeout: Duration,
    /// Last state logged (up/down transitions are logged once each); who
    /// decides is whether `conn` holds a connection.
    up: AtomicBool,
    reconnecting: AtomicBool,
    /// Decisions made by `local` because Redis did not answer.
    local_decisions: AtomicU64,
}

type Step = (bool, u64, u64);

#[derive(Clone)]
struct Live {
    conn: MultiplexedConnection,
    /// SHA1 of [`SCRIPT`], from `SCRIPT LOAD`.
    sha: Arc<str>,
    generation: u64,
}

async fn run_script(
    conn: &mut MultiplexedConnection,
    sha: &str,
    key: &str,
    quota: &Quota,
) -> Result<Step, String> {
    let (t, tau) = (quota.emission_us(), quota.tolerance_us());
    let by_sha: redis::RedisResult<Vec<i64>> = redis::cmd("EVALSHA")
        .arg(sha)
        .arg(1)
        .arg(key)
        .arg(t)
        .arg(tau)
        .query_async(conn)
        .await;
    let reply = match by_sha {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            redis::cmd("EVAL")
                .arg(SCRIPT)
                .arg(1)
                .arg(key)
                .arg(t)
                .arg(tau)
                .query_async::<Vec<i64>>(conn)
                .await
        }
        other => other,
    }
    .map_err(|e| e.to_string())?;
    let num = |i: usize| {
        reply
            .get(i)
            .and_then(|v| u64::try_from(*v).ok())
            .ok_or_else(|| format!("unexpected script reply {reply:?}"))
    };
    Ok((num(0)? == 1, num(1)?, num(2)?))
}

impl Inner {
    /// Opens a connection, loads the script and runs it once on a probe key.
    async fn connect(&self) -> Result<(), String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SCRIPT)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let probe = Quota::new(1000, Duration::from_secs(1), 1);
        run_script(&mut conn, &sha, &format!("{KEY_PREFIX}probe"), &probe).await?;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(Live {
            conn,
            sha: sha.into(),
            generation,
        });
        Ok(())
    }

    /// Redis failed on connection `generation` (`None`: while connecting):
    /// local limits decide until the reconnect task succeeds.
    fn down(self: &Arc<Self>, generation: Option<u64>, why: &str) {
        {
            let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            match (&*conn, generation) {
                (Some(live), Some(g)) if live.generation != g => return,
                _ => *conn = None,
            }
        }
        if self.up.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                error = why,
                "redis rate limiter unavailable: this node falls back to its in-process limits"
            );
        }
        self.spawn_reconnect();
    }

    fn spawn_reconnect(self: &Arc<Self>) {
        if self.reconnecting.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = BACKOFF_MIN;
            loop {
                tokio::time::sleep(backoff).await;
                let Some(inner) = weak.upgrade() else { return };
                let res = tokio::time::timeout(CONNECT_TIMEOUT * 2, inner.connect()).await;
                match res {
                    Ok(Ok(())) => {
                        inner.reconnecting.store(false, Ordering::SeqCst);
                        if !inner.up.swap(true, Ordering::SeqCst) {
                            tracing::info!("redis rate limiter reachable again: limits are shared");
                        }
                        return;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "redis rate limiter reconnect"),
                    Err(_) => tracing::debug!("redis rate limiter reconnect timed out"),
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        });
    }
}

impl RedisLimiter {
    /// Connects to `url` (waiting at most about a second); if Redis does
    /// not answer, starts on `local` limits and keeps trying. Only a
    /// malformed URL is an error.
    pub async fn start(
        url: &str,
        config: &RateLimitConfig,
        local: LocalLimiter,
    ) -> Result<RedisLimiter, RateLimitError> {
        let client =
            redis::Client::open(url).map_err(|e| RateLimitError::RedisUrl(e.to_string()))?;
        let inner = Arc::new(Inner {
            client,
            conn: Mutex::new(None),
            generation: AtomicU64::new(0),
            quotas: config.quotas.clone(),
            local,
            timeout: config.redis_timeout,
            up: AtomicBool::new(false),
            reconnecting: AtomicBool::new(false),
            local_decisions: AtomicU64::new(0),
        });
        match tokio::time::timeout(CONNECT_TIMEOUT, inner.connect()).await {
            Ok(Ok(())) => {
                inner.up.store(true, Ordering::SeqCst);
                tracing::info!("rate limits shared through redis");
            }
            Ok(Err(e)) => inner.down(None, &e),
            Err(_) => inner.down(None, "connect timeout"),
        }
        if !inner.up.load(Ordering::SeqCst) {
            tracing::warn!(
                "redis unreachable at start: this node uses its in-process limits until it answers"
            );
        }
        Ok(RedisLimiter { inner })
    }

    /// Decisions made so far by the local fallback (Redis down or slower
    /// than `redis_timeout`).
    pub fn local_decisions(&self) -> u64 {
        self.inner.local_decisions.load(Ordering::Relaxed)
    }

    /// True while Redis decides (false: local fallback).
    pub fn is_up(&self) -> bool {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn check(&self, key: &str, class: Class) -> Decision {
        let inner = &self.inner;
        let quota = inner.quotas.get(class);
        let conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(mut live) = conn {
            let rkey = format!("{KEY_PREFIX}{}:{key}", class.name());
            let script = run_script(&mut live.conn, &live.sha, &rkey, &quota);
            let g = Some(live.generation);
            match tokio::time::timeout(inner.timeout, script).await {
                Ok(Ok((allowed, backlog, retry))) => {
                    return decision(&quota, allowed, backlog, retry);
                }
                Ok(Err(e)) => inner.down(g, &e),
                Err(_) => inner.down(g, "no answer within redis_timeout"),
            }
        } else {
            // No connection: make sure someone is bringing it back (a
            // no-op while the reconnect task runs; heals a connection that
            // failed in the instant its reconnect task was finishing).
            inner.spawn_reconnect();
        }
        inner.local_decisions.fetch_add(1, Ordering::Relaxed);
        inner.local.check_now(key, class)
    }

    fn backend(&self) -> &'static str {
        if self.is_up() { "redis" } else { "local" }
    }
}
