//! `chalktalk-bench ratelimit` against a real redis-server on 127.0.0.1:
//! the bench makes real decisions, in process and through Redis.

// The server tests' Redis helper; this test uses only part of it.
#[allow(dead_code)]
#[path = "../../server/tests/common/redis.rs"]
mod redis_server;

use redis_server::RedisServer;

#[tokio::test]
async fn bench_ratelimit_measures_real_decisions() {
    let redis = RedisServer::start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chalktalk-bench"))
        .args(["ratelimit", "--redis", &redis.url(), "--json"])
        .args(["--local-decisions", "2000", "--redis-decisions", "1000"])
        .args(["--keys", "2", "--concurrency", "8"])
        .output()
        .await
        .expect("run the bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let runs = v["runs"].as_array().expect("runs");
    let names: Vec<&str> = runs.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["local", "local", "redis", "redis"]);
    for r in runs {
        assert!(
            r["decisions_per_sec"].as_f64().is_some_and(|d| d > 0.0),
            "{r}"
        );
        assert!(r["p99_us"].as_f64() >= r["p50_us"].as_f64(), "{r}");
    }
    // Two keys, burst 150 each: the limiters really refuse (the warm-up
    // already used both Redis buckets) and Redis decided every time.
    assert!(
        (300..=302).contains(&runs[0]["allowed"].as_u64().unwrap_or(0)),
        "{}",
        runs[0]
    );
    assert!(
        runs[3]["allowed"].as_u64().unwrap_or(99) <= 2,
        "{}",
        runs[3]
    );
    assert_eq!(runs[3]["local_fallbacks"], 0);
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("chalktalk:rl:public:ip:bench-*")
        .query_async(&mut c)
        .await
        .expect("redis command");
    assert_eq!(keys.len(), 2);
}
