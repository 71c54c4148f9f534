//! `chalktalk bench ratelimit [--redis URL]`: decisions per second and the
//! latency of one decision, for the in-process limiter (one thread, then
//! one thread per core) and, with `--redis`, for the Redis limiter against
//! that server (one caller, then `--concurrency` callers), on the quota
//! table's `public` class over `--keys` distinct clients. The Redis runs
//! use the server's real limiter (the Lua script, its 50 ms timeout) and
//! report how many decisions fell back to local limits (should be 0).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::BenchError;
use chalktalk_adapters::ratelimit::{Class, Limiter, LocalLimiter, RateLimitConfig, RedisLimiter};

#[derive(Args, Debug)]
pub struct RatelimitArgs {
    /// Also measure the Redis limiter against this server
    /// (`redis://127.0.0.1:6379/`); its `chalktalk:rl:*` keys are used.
    #[arg(long)]
    pub redis: Option<String>,
    /// Decisions per in-process run.
    #[arg(long, default_value_t = 1_000_000)]
    pub local_decisions: usize,
    /// Decisions per Redis run.
    #[arg(long, default_value_t = 50_000)]
    pub redis_decisions: usize,
    /// Distinct clients (keys) the decisions are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    /// Concurrent callers of the concurrent Redis run.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Accepted for symmetry; output is always JSON.
    #[arg(long)]
    pub json: bool,
}

/// One run: how many decisions, how fast, how long each took.
#[derive(Serialize, Debug)]
pub struct Run {
    pub name: String,
    pub callers: usize,
    pub decisions: usize,
    pub allowed: usize,
    pub seconds: f64,
    pub decisions_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Redis runs: decisions the local fallback made (Redis too slow or
    /// down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_fallbacks: Option<u64>,
}

#[derive(Serialize, Debug)]
pub struct RatelimitReport {
    pub keys: usize,
    pub class: &'static str,
    pub quota: String,
    pub runs: Vec<Run>,
}

/// Nearest-rank percentile of sorted nanosecond samples, in µs.
fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn run_of(name: &str, callers: usize, mut lat_ns: Vec<u64>, allowed: usize, wall: Duration) -> Run {
    lat_ns.sort_unstable();
    let n = lat_ns.len();
    Run {
        name: name.into(),
        callers,
        decisions: n,
        allowed,
        seconds: wall.as_secs_f64(),
        decisions_per_sec: n as f64 / wall.as_secs_f64().max(1e-9),
        p50_us: pct(&lat_ns, 0.50),
        p99_us: pct(&lat_ns, 0.99),
        max_us: lat_ns.last().map_or(0.0, |v| *v as f64 / 1000.0),
        local_fallbacks: None,
    }
}

fn keys(n: usize, tag: &str) -> Arc<Vec<String>> {
    let run = std::process::id();
    Arc::new(
        (0..n.max(1))
            .map(|i| format!("ip:bench-{run}-{tag}-{i}"))
            .collect(),
    )
}

/// `n` decisions on `threads` OS threads sharing one local limiter.
fn local_run(config: &RateLimitConfig, n: usize, threads: usize, keys: &Arc<Vec<String>>) -> Run {
    let limiter = LocalLimiter::new(config.quotas.clone(), config.local_max_keys);
    let per = n / threads.max(1);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|t| {
            let (limiter, keys) = (limiter.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(per);
                let mut allowed = 0;
                for i in 0..per {
                    let key = &keys[(i * 7919 + t) % keys.len()];
                    let s = Instant::now();
                    let d = limiter.check_now(key, Class::Public);
                    lat.push(s.elapsed().as_nanos() as u64);
                    allowed += usize::from(d.allowed);
                }
                (lat, allowed)
            })
        })
        .collect();
    let (mut lat, mut allowed) = (Vec::with_capacity(n), 0);
    for h in handles {
        if let Ok((l, a)) = h.join() {
            lat.extend(l);
            allowed += a;
        }
    }
    run_of("local", threads.max(1), lat, allowed, t0.elapsed())
}

/// `n` decisions from `callers` concurrent tasks on one Redis limiter.
async fn redis_run(
    limiter: &RedisLimiter,
    n: usize,
    callers: usize,
    keys: &Arc<Vec<String>>,
) -> Result<Run, BenchError> {
    let callers = callers.max(1);
    let per = n / callers;
    let before = limiter.local_decisions();
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let (limiter, keys) = (limiter.clone(), keys.clone());
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                let mut allowed = 0;
                for i in 0..per {
                    let key = &keys[(i * 7919 + c) % keys.len()];
                    let s = Instant::now();
                    let d = limiter.check(key, Class::Public).await;
                    lat.push(s.elapsed().as_nanos() as u64);
                    allowed += usize::from(d.allowed);
                }
                (lat, allowed)
            })
        })
        .collect();
    let (mut lat, mut allowed) = (Vec::with_capacity(n), 0);
    for t in tasks {
        let (l, a) = t.await?;
        lat.extend(l);
        allowed += a;
    }
    let mut run = run_of("redis", callers, lat, allowed, t0.elapsed());
    run.local_fallbacks = Some(limiter.local_decisions() - before);
    Ok(run)
}

pub async fn run(a: RatelimitArgs) -> Result<RatelimitReport, BenchError> {
    let config = RateLimitConfig::default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let local_keys = keys(a.keys, "local");
    let mut runs = vec![
        local_run(&config, a.local_decisions, 1, &local_keys),
        local_run(&config, a.local_decisions, cores, &local_keys),
    ];
    if let Some(url) = &a.redis {
        let local = LocalLimiter::new(config.quotas.clone(), config.local_max_keys);
        let limiter = RedisLimiter::start(url, &config, local).await?;
        if !limiter.is_up() {
            return Err(format!("redis at {url} does not answer").into());
        }
        let redis_keys = keys(a.keys, "redis");
        // Warm-up: connections, the script cache.
        redis_run(&limiter, 1000, 4, &redis_keys).await?;
        runs.push(redis_run(&limiter, a.redis_decisions / 5, 1, &redis_keys).await?);
        runs.push(redis_run(&limiter, a.redis_decisions, a.concurrency, &redis_keys).await?);
    }
    Ok(RatelimitReport {
        keys: a.keys,
        class: Class::Public.name(),
        quota: config.quotas.get(Class::Public).to_string(),
        runs,
    })
}
