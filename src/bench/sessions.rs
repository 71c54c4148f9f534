//! `bench sessions`: memory per idle connected session. Measures the
//! server's resident memory before and after N clients connect (hello done,
//! inbox registered, nothing else) and divides.

use std::time::Duration;

use chalktalk_protocol::Role;
use clap::Args;
use serde::Serialize;

use super::{BenchError, Target, TargetArgs, connect_many};

#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Make one request per session first, so each has its Session actor
    /// (an idle connection that only heartbeats has none).
    #[arg(long)]
    pub active: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Debug)]
pub struct SessionsReport {
    pub sessions: usize,
    pub active: bool,
    pub connect_seconds: f64,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    pub bytes_per_session: Option<f64>,
    pub errors: u64,
}

pub async fn run(a: SessionsArgs) -> Result<SessionsReport, BenchError> {
    let target = Target::open(&a.target).await?;
    // Warm up allocator and runtime with a few sessions first.
    let warm = connect_many(
        &target,
        (0..16).map(|i| (format!("w{i}"), Role::Athlete)).collect(),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = target.rss_bytes();
    let t0 = std::time::Instant::now();
    let users = (0..a.count)
        .map(|i| (format!("idle{i}"), Role::Athlete))
        .collect();
    let clients = connect_many(&target, users).await?;
    let connect_seconds = t0.elapsed().as_secs_f64();
    if a.active {
        for c in &clients {
            // Refused (no such thread), but it starts the Session actor.
            let _ = c
                .request(chalktalk_protocol::ClientMsg::CloseThread {
                    thread: "none".into(),
                })
                .await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = target.rss_bytes();
    let errors = clients.iter().filter(|c| c.close_info().is_some()).count() as u64;
    drop(clients);
    drop(warm);
    target.close().await;
    Ok(SessionsReport {
        sessions: a.count,
        active: a.active,
        connect_seconds,
        server_rss_before_bytes: before,
        server_rss_after_bytes: after,
        bytes_per_session: match (before, after) {
            (Some(b), Some(a2)) if a.count > 0 => {
                Some((a2.saturating_sub(b)) as f64 / a.count as f64)
            }
            _ => None,
        },
        errors,
    })
}
