//! Rate limits: one quota table ([`Quotas::defaults`]), GCRA decisions
//! behind the [`Limiter`] port and its two implementations.
//!
//! - [`LocalLimiter`]: in-process, bounded memory (idle keys are evicted);
//!   the default when no Redis is configured, and the fallback of
//!   [`RedisLimiter`] while Redis does not answer.
//! - [`RedisLimiter`]: shared by every node through Redis (one atomic Lua
//!   script per decision, keys `chalktalk:rl:{class}:{key}` that expire once
//!   their bucket is full again). Fails open to the node's local limits,
//!   never to "unlimited" (docs/OPERATIONS.md, "Rate limits").
//! - The HTTP layer over these (the server's `ratelimit::layer`) keys by
//!   user or client IP and picks the class by route.
//! - [`SessionLimiter`]: WebSocket frames of one session, in process (a
//!   session lives on one node), with the numbers of [`Class::WsFrame`].

mod gcra;
mod local;
mod redis;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use gcra::{Clock, FakeClock, MonotonicClock, SessionLimiter};
pub use local::LocalLimiter;
pub use redis::RedisLimiter;
pub use settings::{Cidr, RateLimitConfig};

/// What is being limited; each class has its own quota and its own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Anonymous HTTP requests, per client IP.
    Public,
    /// Authenticated HTTP requests, per user.
    Authenticated,
    /// Creating an upload (`POST /api/v1/uploads`, `/api/v1/uploads/simple`).
    Upload,
    /// `/api/v1/webhooks*`.
    Webhooks,
    /// `/api/v1/analytics*`.
    Analytics,
    /// WebSocket frames of one session (limited in process, see
    /// [`SessionLimiter`]).
    WsFrame,
}

impl Class {
    /// Every class, in table order.
    pub const ALL: [Class; 6] = [
        Class::Public,
        Class::Authenticated,
        Class::Upload,
        Class::Webhooks,
        Class::Analytics,
        Class::WsFrame,
    ];

    /// The name in settings, logs and Redis keys.
    pub fn name(self) -> &'static str {
        match self {
            Class::Public => "public",
            Class::Authenticated => "authenticated",
            Class::Upload => "upload",
            Class::Webhooks => "webhooks",
            Class::Analytics => "analytics",
            Class::WsFrame => "ws_frame",
        }
    }

    /// The class named `name` (see [`Class::name`]).
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// `rate` requests per `period` sustained, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub rate: u32,
    pub period: Duration,
    pub burst: u32,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl Quota {
    /// `rate` per `period`, burst `burst` (both at least 1).
    pub const fn new(rate: u32, period: Duration, burst: u32) -> Quota {
        Quota {
            rate,
            period,
            burst,
        }
    }

    /// The time one request "costs", in µs (at least 1).
    pub fn emission_us(&self) -> u64 {
        let period = u64::try_from(self.period.as_micros()).unwrap_or(u64::MAX);
        (period / u64::from(self.rate.max(1))).max(1)
    }

    /// The burst as a time budget, in µs.
    pub fn tolerance_us(&self) -> u64 {
        self.emission_us()
            .saturating_mul(u64::from(self.burst.max(1)))
    }

    /// The frame quota of a WebSocket session from the node's limits (the
    /// numbers announced to clients in `welcome`).
    pub fn ws_frames(limits: &chalktalk_protocol::Limits) -> Quota {
        Quota::new(
            limits.frames_per_sec,
            Duration::from_secs(1),
            limits.frame_burst,
        )
    }
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}s burst {}",
            self.rate,
            self.period.as_secs_f64(),
            self.burst
        )
    }
}

/// The quota of every class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas([Quota; 6]);

impl Quotas {
    /// THE table (issue 4). WebSocket frames take the protocol's default
    /// limits; a node's `core.limits` (announced in `welcome`) decides what
    /// its sessions actually get, see [`Quota::ws_frames`].
    pub fn defaults() -> Quotas {
        let ws = Quota::ws_frames(&chalktalk_protocol::Limits::default());
        Quotas([
            Quota::new(100, MINUTE, 150),   // Public
            Quota::new(1000, MINUTE, 1500), // Authenticated
            Quota::new(10, HOUR, 15),       // Upload
            Quota::new(50, MINUTE, 75),     // Webhooks
            Quota::new(500, MINUTE, 750),   // Analytics
            ws,                             // WsFrame
        ])
    }

    /// The quota of `class`.
    pub fn get(&self, class: Class) -> Quota {
        self.0[class.index()]
    }

    /// Replaces the quota of `class`.
    pub fn set(&mut self, class: Class, quota: Quota) {
        self.0[class.index()] = quota;
    }

    /// Builder form of [`Quotas::set`].
    pub fn with(mut self, class: Class, quota: Quota) -> Quotas {
        self.set(class, quota);
        self
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::defaults()
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's size: requests allowed at once from a full bucket
    /// (`X-RateLimit-Limit`).
    pub limit: u32,
    /// Requests allowed right now after this one (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`X-RateLimit-Reset`).
    pub reset_after_secs: u64,
    /// Seconds until a refused request would be allowed (0 when allowed).
    pub retry_after_secs: u64,
}

/// Where decisions come from.
#[async_trait]
pub trait Limiter: Send + Sync + 'static {
    /// Counts one request of `key` in `class` and says whether it may go on.
    /// Never fails: an implementation whose backend is down decides with a
    /// fallback.
    async fn check(&self, key: &str, class: Class) -> Decision;

    /// `"local"` or `"redis"`: who decides right now (for logs and tests).
    fn backend(&self) -> &'static str;
}

/// Why rate limiting could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("invalid redis_url: {0}")]
    RedisUrl(String),
    #[error("invalid {key}: {message}")]
    Setting { key: &'static str, message: String },
}

/// A node's rate limiting: the limiter and how clients are keyed.
#[derive(Clone)]
pub struct RateLimits {
    pub limiter: Arc<dyn Limiter>,
    pub config: Arc<RateLimitConfig>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("backend", &self.limiter.backend())
            .field("config", &self.config)
            .finish()
    }
}

impl RateLimits {
    /// The limiter for `config`: Redis when `redis_url` is set (one connect
    /// attempt of at most a second now; if it fails the node starts on local
    /// limits and keeps reconnecting), else in process.
    pub async fn start(
        config: &RateLimitConfig,
        redis_url: Option<&str>,
    ) -> Result<RateLimits, RateLimitError> {
        let local = LocalLimiter::new(config.quotas.clone(), config.local_max_keys);
        let limiter: Arc<dyn Limiter> = match redis_url {
            Some(url) => Arc::new(RedisLimiter::start(url, config, local).await?),
            None => Arc::new(local),
        };
        Ok(RateLimits {
            limiter,
            config: Arc::new(config.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_issue() {
        let q = Quotas::defaults();
        assert_eq!(q.get(Class::Public), Quota::new(100, MINUTE, 150));
        assert_eq!(q.get(Class::Authenticated), Quota::new(1000, MINUTE, 1500));
        assert_eq!(q.get(Class::Upload), Quota::new(10, HOUR, 15));
        assert_eq!(q.get(Class::Webhooks), Quota::new(50, MINUTE, 75));
        assert_eq!(q.get(Class::Analytics), Quota::new(500, MINUTE, 750));
        let l = chalktalk_protocol::Limits::default();
        assert_eq!(q.get(Class::WsFrame).rate, l.frames_per_sec);
        assert_eq!(q.get(Class::WsFrame).burst, l.frame_burst);
        assert_eq!(q.get(Class::Public).emission_us(), 600_000);
        assert_eq!(q.get(Class::Upload).tolerance_us(), 15 * 360_000_000);
        for c in Class::ALL {
            assert_eq!(Class::from_name(c.name()), Some(c));
        }
    }
}
