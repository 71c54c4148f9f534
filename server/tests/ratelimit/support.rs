//! Helpers of the rate-limit tests: nodes with given quotas (and Redis),
//! plain HTTP requests that report their rate-limit headers, accounts on a
//! node (register, sign in), and a second node sharing the first one's
//! accounts (its key-value store) the way nodes share one accounts
//! database in production.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chalktalk::config::Config;
use chalktalk::gateway::Running;
use chalktalk_adapters::EmbeddedStore;
use chalktalk_adapters::ratelimit::RateLimitConfig;
use serde_json::Value;

use crate::common::api::Api;
pub use crate::common::api::PASSWORD;
use crate::common::client::Resp;

/// A node of these tests.
pub struct Node {
    pub running: Running,
    pub addr: SocketAddr,
    pub store: Arc<EmbeddedStore>,
    _dir: tempfile::TempDir,
}

/// The configuration of a test node: `limits` as in `CHALKTALK_RATE_LIMITS`,
/// `proxies` as in `CHALKTALK_TRUSTED_PROXIES`.
pub fn config(dir: &std::path::Path, limits: &str, proxies: &str, redis: Option<&str>) -> Config {
    let mut c = Config::for_tests(dir);
    c.media.worker_exe = crate::common::worker_exe();
    c.ratelimit = RateLimitConfig::from_settings(limits, proxies).expect("rate limit settings");
    c.redis_url = redis.map(str::to_string);
    c
}

impl Node {
    /// A node with its own stores.
    pub async fn start(limits: &str, proxies: &str, redis: Option<&str>) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = config(dir.path(), limits, proxies, redis);
        let store = EmbeddedStore::open(dir.path()).expect("store");
        let running = chalktalk::server::start_with_stores(
            &c,
            store.clone(),
            Some(store.clone()),
            Some(store.clone()),
        )
        .await
        .expect("node starts");
        let addr = running.addr;
        Node {
            running,
            addr,
            store,
            _dir: dir,
        }
    }

    /// A node with its own rooms store whose accounts and sessions are
    /// those of `other` (one accounts database, several nodes).
    pub async fn sharing_accounts_of(other: &Node, limits: &str, redis: Option<&str>) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = config(dir.path(), limits, "", redis);
        let store = EmbeddedStore::open(dir.path()).expect("store");
        let running = chalktalk::server::start_with_stores(
            &c,
            store.clone(),
            None,
            Some(other.store.clone()),
        )
        .await
        .expect("node starts");
        let addr = running.addr;
        Node {
            running,
            addr,
            store,
            _dir: dir,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The node's REST API (tests/common/api.rs).
    pub fn api(&self) -> Api {
        Api(self.addr)
    }

    /// `method path` with optional bearer token, extra headers and JSON.
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, String)],
        body: Option<Value>,
    ) -> Resp {
        let body = body.map(|b| b.to_string().into_bytes());
        self.api().req(method, path, token, extra, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.api().get(path, token).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.api().post(path, token, body).await
    }

    /// Registers an athlete `email` and signs in from `device`: the tokens.
    pub async fn athlete(&self, email: &str, device: &str) -> Tokens {
        Tokens::of(&self.api().athlete(email, device).await)
    }

    pub async fn sign_in(&self, email: &str, device: &str) -> Tokens {
        let r = self.api().sign_in(email, PASSWORD, device).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        Tokens::of(&r.json())
    }
}

/// What a sign-in answers.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub sid: String,
}

impl Tokens {
    fn of(v: &Value) -> Tokens {
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("no {k} in {v}"))
                .to_string()
        };
        Tokens {
            access: s("access_token"),
            refresh: s("refresh_token"),
            sid: s("session"),
        }
    }
}

pub fn text(r: &Resp) -> String {
    format!("{} {}", r.status, String::from_utf8_lossy(&r.body))
}

/// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (panics when one is missing).
pub fn limits(r: &Resp) -> (u64, u64, u64) {
    let h = |name: &str| -> u64 {
        r.header(name)
            .unwrap_or_else(|| panic!("no {name} on {} {:?}", r.status, r.headers))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number"))
    };
    (
        h("x-ratelimit-limit"),
        h("x-ratelimit-remaining"),
        h("x-ratelimit-reset"),
    )
}

/// Asserts `r` is the documented 429: body exactly {"error",
/// "message", "retry_after"}, `Retry-After` equal to `retry_after`, and
/// the rate-limit headers with nothing remaining. Returns `retry_after`.
pub fn assert_429(r: &Resp) -> u64 {
    assert_eq!(r.status, 429, "{}", text(r));
    let v = r.json();
    let obj = v.as_object().expect("object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["error", "message", "retry_after"], "{v}");
    assert_eq!(v["error"], "rate_limit_exceeded");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    let retry = v["retry_after"].as_u64().expect("retry_after number");
    assert!(retry >= 1);
    assert_eq!(r.header("retry-after"), Some(retry.to_string().as_str()));
    let (_, remaining, reset) = limits(r);
    assert_eq!(remaining, 0);
    assert!(reset >= retry);
    retry
}

/// Runs `f` and asserts it finished within `max`.
pub async fn within<T>(max: Duration, what: &str, f: impl std::future::Future<Output = T>) -> T {
    let t0 = Instant::now();
    let out = tokio::time::timeout(max, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {max:?}"));
    assert!(t0.elapsed() <= max, "{what} took {:?}", t0.elapsed());
    out
}

/// A Redis command on `url` (the test's own connection).
pub async fn redis_cmd<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> T {
    let client = redis::Client::open(url).expect("redis url");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    cmd.query_async(&mut c).await.expect("redis command")
}

/// Polls `f` every 50 ms until it is true, at most `max`.
pub async fn eventually<F, Fut>(max: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within {max:?}");
}
