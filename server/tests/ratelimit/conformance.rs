//! The same checks against both adapters of each port, the embedded one
//! and the Redis one on a real redis-server: the `Limiter` (LocalLimiter,
//! RedisLimiter) and the `Revocations` list (EmbeddedRevocations,
//! RedisRevocations). Quotas are an hour long, so nothing depends on
//! timing.

use std::sync::Arc;
use std::time::Duration;

use chalktalk_adapters::EmbeddedStore;
use chalktalk_adapters::ratelimit::{
    Class, Limiter, LocalLimiter, Quota, Quotas, RateLimitConfig, RedisLimiter,
};
use chalktalk_adapters::revocations::RedisRevocations;
use chalktalk_adapters::revocations::{EmbeddedRevocations, Revocations};

use crate::common::redis::RedisServer;

const HOUR: Duration = Duration::from_secs(3600);

fn config() -> RateLimitConfig {
    RateLimitConfig {
        quotas: Quotas::defaults()
            .with(Class::Public, Quota::new(10, HOUR, 3))
            .with(Class::Upload, Quota::new(1, HOUR, 1)),
        ..RateLimitConfig::default()
    }
}

/// Checks every limiter must pass; `tag` keeps keys of runs apart.
async fn limiter_conformance(l: &dyn Limiter, tag: &str) {
    let (a, b) = (format!("ip:a-{tag}"), format!("ip:b-{tag}"));
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let d = l.check(&a, Class::Public).await;
        assert!(
            d.allowed && d.limit == 3 && d.retry_after_secs == 0,
            "{d:?}"
        );
        remaining.push(d.remaining);
    }
    assert_eq!(remaining, [2, 1, 0]);
    let d = l.check(&a, Class::Public).await;
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.remaining, 0);
    // One emission interval (6 min) until the next, a full bucket in 18.
    assert!((359..=360).contains(&d.retry_after_secs), "{d:?}");
    assert!((1079..=1080).contains(&d.reset_after_secs), "{d:?}");
    // Refusals do not cost anything more.
    assert_eq!(
        l.check(&a, Class::Public).await.retry_after_secs,
        d.retry_after_secs
    );
    // Other keys, other classes: their own buckets.
    let d = l.check(&b, Class::Public).await;
    assert!(d.allowed && d.remaining == 2, "{d:?}");
    let d = l.check(&a, Class::Upload).await;
    assert!(d.allowed && d.limit == 1 && d.remaining == 0, "{d:?}");
    assert!(!l.check(&a, Class::Upload).await.allowed);
    assert!(l.check(&a, Class::Authenticated).await.allowed);
}

#[tokio::test]
async fn local_limiter_conforms() {
    let c = config();
    let l = LocalLimiter::new(c.quotas.clone(), c.local_max_keys);
    limiter_conformance(&l, "local").await;
    assert_eq!(l.backend(), "local");
}

#[tokio::test]
async fn redis_limiter_conforms_and_is_shared() {
    let redis = RedisServer::start().await;
    let c = config();
    let start = || async {
        let local = LocalLimiter::new(c.quotas.clone(), c.local_max_keys);
        RedisLimiter::start(&redis.url(), &c, local)
            .await
            .expect("redis url")
    };
    let (one, two) = (start().await, start().await);
    assert_eq!(one.backend(), "redis");
    limiter_conformance(&one, "redis").await;
    // A second limiter on the same Redis (another node) sees the same
    // buckets.
    assert!(!two.check("ip:a-redis", Class::Public).await.allowed);
    assert_eq!(two.check("ip:b-redis", Class::Public).await.remaining, 1);
    assert_eq!(one.local_decisions() + two.local_decisions(), 0);
}

#[tokio::test]
async fn redis_limiter_started_while_redis_is_down_joins_it_later() {
    let mut redis = RedisServer::start().await;
    redis.stop();
    let c = config();
    let local = LocalLimiter::new(c.quotas.clone(), c.local_max_keys);
    let l = RedisLimiter::start(&redis.url(), &c, local)
        .await
        .expect("starts anyway");
    assert_eq!(l.backend(), "local");
    // Local limits meanwhile, not none.
    limiter_conformance(&l, "down").await;
    assert!(l.local_decisions() > 0);
    redis.restart().await;
    crate::ratelimit::support::eventually(Duration::from_secs(10), "limiter on redis", || async {
        l.is_up()
    })
    .await;
    let before = l.local_decisions();
    limiter_conformance(&l, "back").await;
    assert_eq!(l.local_decisions(), before, "redis decided");
}

/// Checks every revocation list must pass.
async fn revocations_conformance(r: &dyn Revocations) {
    let mut heard = r.subscribe();
    assert!(!r.is_revoked("s-1").await && !r.is_revoked_locally("s-1"));
    r.revoke("s-1").await.expect("revoke");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), heard.recv())
            .await
            .expect("told")
            .expect("sid"),
        "s-1"
    );
    assert!(r.is_revoked("s-1").await && r.is_revoked_locally("s-1"));
    assert!(!r.is_revoked("s-2").await);
    // Revoking again is harmless.
    r.revoke("s-1").await.expect("revoke again");
    assert!(r.is_revoked("s-1").await);
}

#[tokio::test]
async fn embedded_revocations_conform() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let r = EmbeddedRevocations::open(store, HOUR).await.expect("open");
    revocations_conformance(&r).await;
}

#[tokio::test]
async fn redis_revocations_conform_and_are_shared() {
    let redis = RedisServer::start().await;
    let one = Arc::new(RedisRevocations::open(&redis.url(), HOUR).expect("open"));
    let two = Arc::new(RedisRevocations::open(&redis.url(), HOUR).expect("open"));
    // `two` is subscribed once a revocation made by `one` reaches its
    // own list without `two` asking Redis.
    let mut i = 0;
    crate::ratelimit::support::eventually(Duration::from_secs(5), "two subscribed", || {
        i += 1;
        let (one, two, sid) = (one.clone(), two.clone(), format!("probe-{i}"));
        async move {
            let _ = one.revoke(&sid).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            two.is_revoked_locally(&sid)
        }
    })
    .await;
    let mut heard_by_two = two.subscribe();
    revocations_conformance(one.as_ref()).await;
    // Another node hears it (pub/sub) and knows it without asking.
    let sid = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match heard_by_two.recv().await {
                Ok(sid) if sid == "s-1" => return sid,
                Ok(_) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("two hears s-1");
    assert_eq!(sid, "s-1");
    assert!(two.is_revoked_locally("s-1") && two.is_revoked("s-1").await);
}
