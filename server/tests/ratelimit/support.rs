//! Helpers of the rate-limit tests: nodes (the one [`TestServer`]) with
//! given quotas and Redis, a second node sharing the first one's accounts
//! (its key-value store) the way nodes share one accounts database in
//! production, and checks of the rate-limit headers and 429 answers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use crate::common::TestServer;
use crate::common::client::Resp;

/// A node with its own stores: `limits` as in `CHALKTALK_RATE_LIMITS`,
/// `proxies` as in `CHALKTALK_TRUSTED_PROXIES`, Redis at `redis`.
pub async fn node(limits: &str, proxies: &str, redis: Option<&str>) -> TestServer {
    TestServer::builder()
        .rate_limits(limits, proxies)
        .redis(redis)
        .start()
        .await
}

/// A node with its own rooms store whose accounts and sessions are those
/// of `other` (one accounts database, several nodes).
pub async fn node_sharing_accounts_of(
    other: &TestServer,
    limits: &str,
    redis: Option<&str>,
) -> TestServer {
    TestServer::builder()
        .rate_limits(limits, "")
        .redis(redis)
        .accounts_of(other)
        .start()
        .await
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
