//! `bench ops`: durable op throughput and ack latency over the WebSocket.
//! Each room has one client that keeps `in_flight` ops outstanding (each an
//! `add` of a small stroke); an op counts when its ack (durable) arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chalktalk_protocol::{Annotation, ClientMsg, Point, Reply, Role, RoomOp, Shape, Style};
use clap::Args;
use serde::Serialize;

use super::{BenchError, Summary, Target, TargetArgs, connect_many};

#[derive(Args, Debug)]
pub struct OpsArgs {
    #[arg(long, default_value_t = 50)]
    pub rooms: usize,
    /// Ops each room's client keeps outstanding.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Debug)]
pub struct OpsReport {
    pub rooms: usize,
    pub in_flight: usize,
    pub duration_s: f64,
    pub acked: u64,
    pub ops_per_sec: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_p999_ms: f64,
    pub ack_max_ms: f64,
    pub server_rss_bytes: Option<u64>,
    pub errors: u64,
}

pub async fn run(a: OpsArgs) -> Result<OpsReport, BenchError> {
    let target = Target::open(&a.target).await?;
    let users = (0..a.rooms)
        .map(|i| (format!("c{i}"), Role::Coach))
        .collect();
    let clients = connect_many(&target, users).await?;
    let mut rooms = Vec::new();
    for (i, c) in clients.iter().enumerate() {
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
        c.request(ClientMsg::JoinRoom {
            room: room.clone(),
            since: None,
        })
        .await?;
        rooms.push(room);
    }
    let run_for = Duration::from_secs(a.duration);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let c = Arc::new(c);
        let room = rooms[i].clone();
        for w in 0..a.in_flight {
            let (c, room) = (c.clone(), room.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut n = 0u64;
                while start.elapsed() < run_for {
                    let id = format!("w{w}-{n}");
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
                    let t = Instant::now();
                    match c
                        .request(ClientMsg::Op {
                            room: room.clone(),
                            op_id: id,
                            op,
                        })
                        .await
                    {
                        Ok(Reply::Ack { .. }) => lat.push(t.elapsed().as_micros() as u64),
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut rss = None;
    for t in tasks {
        let (l, e) = t.await?;
        rss = rss.or_else(|| target.rss_bytes());
        all.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    target.close().await;
    let acked = all.len() as u64;
    let s = Summary::from_micros(all);
    Ok(OpsReport {
        rooms: a.rooms,
        in_flight: a.in_flight,
        duration_s: secs,
        acked,
        ops_per_sec: acked as f64 / secs,
        ack_p50_ms: s.p50_ms,
        ack_p99_ms: s.p99_ms,
        ack_p999_ms: s.p999_ms,
        ack_max_ms: s.max_ms,
        server_rss_bytes: rss,
        errors,
    })
}
