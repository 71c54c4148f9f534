//! `bench ops`: durable op throughput and ack latency over the WebSocket.
//! Each room has `writers` sessions, each keeping `in_flight` ops
//! outstanding (each an `add` of a 16-point stroke); an op counts when its
//! ack (stored and fsynced) arrives. A writer told `rate_limited` (the
//! per-session frame limit) backs off briefly and resends the same op id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chalktalk_protocol::client::ClientError;
use chalktalk_protocol::{
    Annotation, ClientMsg, ErrorCode, Point, Reply, Role, RoomOp, Shape, Style,
};
use clap::Args;
use serde::Serialize;

use super::{BenchError, Summary, Target, TargetArgs, connect_many};

#[derive(Args, Debug)]
pub struct OpsArgs {
    #[arg(long, default_value_t = 50)]
    pub rooms: usize,
    /// Sessions writing into each room.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Ops each writer keeps outstanding.
    #[arg(long, default_value_t = 2)]
    pub in_flight: usize,
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Offered load in ops/s over all writers (0: as fast as acks come).
    /// With a rate, each op's latency counts from when it was due, so a
    /// server that falls behind shows it (no coordinated omission).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Debug)]
pub struct OpsReport {
    /// `embedded` or the store URL without its password.
    pub store: String,
    /// The offered load (0: closed loop).
    pub rate: u64,
    pub rooms: usize,
    pub writers: usize,
    pub in_flight: usize,
    pub duration_s: f64,
    /// Requests answered `rate_limited` (resent after a pause).
    pub rate_limited: u64,
    pub acked: u64,
    pub ops_per_sec: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_p999_ms: f64,
    pub ack_max_ms: f64,
    pub server_rss_bytes: Option<u64>,
    pub server_cpu_s: Option<f64>,
    pub loadgen_cpu_s: f64,
    pub errors: u64,
}

pub async fn run(a: OpsArgs) -> Result<OpsReport, BenchError> {
    let target = Target::open(&a.target).await?;
    let coaches = (0..a.rooms)
        .map(|i| (format!("c{i}"), Role::Coach))
        .collect();
    let owners = connect_many(&target, coaches).await?;
    let mut rooms = Vec::new();
    for (i, c) in owners.iter().enumerate() {
        let Reply::RoomCreated { room } = c
            .request(ClientMsg::CreateRoom {
                video_id: format!("v{i}"),
                aspect: None,
                fps: None,
            })
            .await?
        else {
            return Err("unexpected reply to create_room".into());
        };
        rooms.push(room);
    }
    // Every writer logs in as its room's owner (any member may add).
    let users = (0..a.rooms * a.writers)
        .map(|i| (format!("c{}", i / a.writers), Role::Coach))
        .collect();
    let writers = connect_many(&target, users).await?;
    let run_for = Duration::from_secs(a.duration);
    let start = Instant::now();
    let (cpu0, own0) = (target.cpu_seconds(), super::target::own_cpu_seconds());
    let mut tasks = Vec::new();
    let lanes = (a.rooms * a.writers * a.in_flight).max(1);
    // Each lane sends one op per `every` (with a rate).
    let every = (a.rate > 0).then(|| Duration::from_secs_f64(lanes as f64 / a.rate as f64));
    for (i, c) in writers.into_iter().enumerate() {
        let c = Arc::new(c);
        let room = rooms[i / a.writers].clone();
        for lane in 0..a.in_flight {
            let lane_no = i * a.in_flight + lane;
            let (c, room) = (c.clone(), room.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let (mut errors, mut limited) = (0u64, 0u64);
                let mut n = 0u64;
                // Lanes start spread over one period.
                let offset = every.map(|e| e.mul_f64(lane_no as f64 / lanes as f64));
                while start.elapsed() < run_for && errors < 100 {
                    let due = match (every, offset) {
                        (Some(e), Some(o)) => {
                            let due = start + o + e * n as u32;
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        _ => Instant::now(),
                    };
                    let id = format!("s{i}-l{lane}-{n}");
                    n += 1;
                    let op = RoomOp::Add {
                        ann: Annotation {
                            id: id.clone(),
                            author: String::new(),
                            t_ms: n,
                            dur_ms: None,
                            style: Style::default(),
                            shape: Shape::Stroke {
                                points: (0..16).map(|k| Point(k as f32 / 16.0, 0.5)).collect(),
                            },
                        },
                    };
                    let t = due;
                    loop {
                        let m = ClientMsg::Op {
                            room: room.clone(),
                            op_id: id.clone(),
                            op: op.clone(),
                        };
                        match c.request(m).await {
                            Ok(Reply::Ack { .. }) => {
                                lat.push(t.elapsed().as_micros() as u64);
                                break;
                            }
                            Err(ClientError::Server {
                                code: ErrorCode::RateLimited,
                                ..
                            }) => {
                                limited += 1;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            _ => {
                                errors += 1;
                                break;
                            }
                        }
                    }
                }
                (lat, errors, limited)
            }));
        }
    }
    let mut all = Vec::new();
    let (mut errors, mut rate_limited) = (0, 0);
    let mut rss = None;
    for t in tasks {
        let (l, e, r) = t.await?;
        rss = rss.or_else(|| target.rss_bytes());
        all.extend(l);
        errors += e;
        rate_limited += r;
    }
    let secs = start.elapsed().as_secs_f64();
    let server_cpu_s = target.cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let loadgen_cpu_s = super::target::own_cpu_seconds() - own0;
    target.close().await;
    let acked = all.len() as u64;
    let s = Summary::from_micros(all);
    Ok(OpsReport {
        store: store_name(a.target.store.as_deref()),
        rate: a.rate,
        rooms: a.rooms,
        writers: a.writers,
        in_flight: a.in_flight,
        rate_limited,
        duration_s: secs,
        acked,
        ops_per_sec: acked as f64 / secs,
        ack_p50_ms: s.p50_ms,
        ack_p99_ms: s.p99_ms,
        ack_p999_ms: s.p999_ms,
        ack_max_ms: s.max_ms,
        server_rss_bytes: rss,
        server_cpu_s,
        loadgen_cpu_s,
        errors,
    })
}

/// A store setting as reports show it: without a password.
fn store_name(store: Option<&str>) -> String {
    let Some(url) = store else {
        return "embedded".into();
    };
    match url.split_once("://").and_then(|(scheme, rest)| {
        let (user, host) = rest.split_once('@')?;
        let (name, _) = user.split_once(':')?;
        Some(format!("{scheme}://{name}:***@{host}"))
    }) {
        Some(redacted) => redacted,
        None => url.to_string(),
    }
}
