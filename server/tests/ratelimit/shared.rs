//! Two nodes sharing one real redis-server: one budget for both, bucket
//! keys that expire, Redis killed (each node limits with its own buckets,
//! answers at once, stays up), Redis frozen (SIGSTOP: answers within the
//! Redis timeouts, never hang), Redis restarted (shared again).

use std::time::{Duration, Instant};

use crate::common::TestServer;
use crate::common::redis::RedisServer;
use crate::ratelimit::support::{
    assert_429, eventually, limits, node, node_sharing_accounts_of, redis_cmd, text, within,
};

const KEY: &str = "chalktalk:rl:public:ip:127.0.0.1";

async fn pair(limits: &str, redis: &RedisServer) -> (TestServer, TestServer) {
    let url = redis.url();
    let a = node(limits, "", Some(&url)).await;
    let b = node(limits, "", Some(&url)).await;
    (a, b)
}

/// `n` anonymous requests alternating between the nodes: how many passed.
async fn alternate(a: &TestServer, b: &TestServer, n: usize) -> usize {
    let mut allowed = 0;
    for i in 0..n {
        let node = if i % 2 == 0 { a } else { b };
        let r = within(
            Duration::from_secs(2),
            "request",
            node.get("/api/v1/me", None),
        )
        .await;
        limits(&r);
        match r.status {
            429 => {
                assert_429(&r);
            }
            401 => allowed += 1,
            _ => panic!("{}", text(&r)),
        }
    }
    allowed
}

/// Requests to one node until it refuses one: how many passed.
async fn until_refused(node: &TestServer, max: usize) -> usize {
    for i in 0..max {
        let r = within(
            Duration::from_secs(1),
            "request",
            node.get("/api/v1/me", None),
        )
        .await;
        if r.status == 429 {
            assert_429(&r);
            return i;
        }
    }
    panic!("no 429 in {max} requests: unlimited");
}

/// True once `node` decides through Redis (its probe key appears).
async fn on_redis(node: &TestServer, redis: &RedisServer, probe: &str) -> bool {
    let t = crate::token(probe);
    let r = node.get("/api/v1/me", Some(&t)).await;
    r.status != 429
        && redis_cmd::<i64>(
            &redis.url(),
            redis::cmd("EXISTS").arg(format!("chalktalk:rl:authenticated:u:{probe}")),
        )
        .await
            == 1
}

#[tokio::test]
async fn two_nodes_share_one_budget_in_keys_that_expire() {
    let redis = RedisServer::start().await;
    let (a, b) = pair("public=1/hour:4", &redis).await;
    assert_eq!(
        alternate(&a, &b, 10).await,
        4,
        "one budget, not one per node"
    );
    // The bucket holds its TAT until it is full again (4 h), then vanishes.
    let ttl: i64 = redis_cmd(&redis.url(), redis::cmd("PTTL").arg(KEY)).await;
    assert!((1..=4 * 3_600_000).contains(&ttl), "PTTL {ttl}");
    let keys: Vec<String> = redis_cmd(&redis.url(), redis::cmd("KEYS").arg("chalktalk:rl:*")).await;
    for k in keys {
        let ttl: i64 = redis_cmd(&redis.url(), redis::cmd("PTTL").arg(&k)).await;
        assert!(ttl > 0, "{k} never expires");
    }
}

#[tokio::test]
async fn redis_killed_then_restarted() {
    let mut redis = RedisServer::start().await;
    let (a, b) = pair("public=1/hour:3", &redis).await;
    assert_eq!(alternate(&a, &b, 8).await, 3);
    redis.stop();
    // Fail open to each node's own buckets: a burst per node, then 429,
    // every answer at once, both nodes up.
    let t0 = Instant::now();
    assert_eq!(until_refused(&a, 10).await, 3);
    assert_eq!(until_refused(&b, 10).await, 3);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    for n in [&a, &b] {
        assert_eq!(n.get("/health", None).await.status, 200);
    }
    // Back (empty): both nodes share again once they reconnect.
    redis.restart().await;
    eventually(Duration::from_secs(10), "node a on redis", || {
        on_redis(&a, &redis, "probe-a")
    })
    .await;
    eventually(Duration::from_secs(10), "node b on redis", || {
        on_redis(&b, &redis, "probe-b")
    })
    .await;
    let _: () = redis_cmd(&redis.url(), redis::cmd("DEL").arg(KEY)).await;
    assert_eq!(alternate(&a, &b, 8).await, 3, "shared again");
}

#[tokio::test]
async fn frozen_redis_never_hangs_a_request() {
    let redis = RedisServer::start().await;
    let a = node("public=1/hour:3", "", Some(&redis.url())).await;
    let b = node_sharing_accounts_of(&a, "public=1/hour:3", Some(&redis.url())).await;
    // A signed-in user: its requests also check revocations in Redis.
    let t = a.athlete_tokens("frozen@example.com", "laptop").await;
    assert_eq!(a.get("/api/v1/sessions", Some(&t.access)).await.status, 200);
    redis.pause();
    // Waves of concurrent requests on both nodes, anonymous and signed
    // in: each answers within the Redis timeouts (50 ms limiter, 500 ms
    // revocation check), and after the first failure Redis is left alone
    // for a while instead of costing every request a timeout.
    let t0 = Instant::now();
    for wave in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..12 {
            let addr = if i % 2 == 0 { a.addr() } else { b.addr() };
            let access = t.access.clone();
            tasks.push(tokio::spawn(async move {
                let headers = vec![("Authorization", format!("Bearer {access}"))];
                let path = if i % 3 == 0 {
                    "/api/v1/me"
                } else {
                    "/api/v1/sessions"
                };
                let t = Instant::now();
                let r = crate::common::client::send(addr, "GET", path, &headers, Vec::new()).await;
                (r.status, t.elapsed())
            }));
        }
        for task in tasks {
            let (status, took) = task.await.expect("task");
            // Revocation checks fail open (docs/OPERATIONS.md, "Redis").
            assert_eq!(status, 200);
            assert!(
                took < Duration::from_millis(2000),
                "wave {wave}: a request took {took:?}"
            );
        }
    }
    // Still limited: each node's own buckets.
    assert_eq!(until_refused(&a, 10).await, 3);
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    redis.resume();
    eventually(Duration::from_secs(10), "node b on redis", || {
        on_redis(&b, &redis, "probe-b")
    })
    .await;
}
