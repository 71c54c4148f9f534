//! `bench rooms`: R rooms of M members; one member per room draws point
//! batches at HZ, all others receive them. Latency is send-to-receive on the
//! same clock (the load generator runs both ends).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chalktalk_protocol::{ClientMsg, LiveStroke, Point, Reply, Role, RoomOp, StrokeIn, Style};
use clap::Args;
use serde::Serialize;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{BenchError, Summary, Target, TargetArgs, connect_many, wire};

#[derive(Args, Debug)]
pub struct RoomsArgs {
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Point batches per second from each room's drawer.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Points per batch.
    #[arg(long, default_value_t = 8)]
    pub points: usize,
    /// Start every drawer on the same tick (a synchronized burst each
    /// period) instead of spreading them over the period.
    #[arg(long)]
    pub aligned: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Accepted for symmetry; output is always JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Debug)]
pub struct RoomsReport {
    pub rooms: usize,
    /// Nodes serving (members spread round-robin over them).
    pub nodes: usize,
    pub aligned: bool,
    pub members: usize,
    pub rate_hz: u32,
    pub duration_s: f64,
    pub sessions: usize,
    pub batches_sent: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub deliveries_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub server_rss_bytes: Option<u64>,
    /// CPU seconds the server used during the run (user + system).
    pub server_cpu_s: Option<f64>,
    /// CPU seconds the load generator used during the run.
    pub loadgen_cpu_s: f64,
    pub errors: u64,
}

/// Send times of the last batches of one room, in µs since the bench start.
const SLOTS: usize = 4096;

pub async fn run(a: RoomsArgs) -> Result<RoomsReport, BenchError> {
    if a.members < 2 || a.rooms == 0 || a.rate == 0 {
        return Err("need --members >= 2, --rooms >= 1, --rate >= 1".into());
    }
    let target = Target::open(&a.target).await?;
    // Drawers (one coach per room) use the full client; the receivers a
    // lean one (`wire`), so the load generator is not the bottleneck.
    let coaches: Vec<(String, Role)> = (0..a.rooms)
        .map(|r| (format!("u{r}-0"), Role::Coach))
        .collect();
    let mut clients = connect_many(&target, coaches).await?;
    let errors = Arc::new(AtomicU64::new(0));
    // Create and fill the rooms, then join everyone.
    let mut room_ids = Vec::with_capacity(a.rooms);
    for (r, coach) in clients.iter().enumerate() {
        let Reply::RoomCreated { room } = coach
            .request(ClientMsg::CreateRoom {
                video_id: format!("v{r}"),
                aspect: None,
                fps: None,
            })
            .await?
        else {
            return Err("unexpected reply to create_room".into());
        };
        for m in 1..a.members {
            coach
                .request(ClientMsg::Op {
                    room: room.clone(),
                    op_id: format!("inv{m}"),
                    op: RoomOp::Invite {
                        user: format!("u{r}-{m}"),
                    },
                })
                .await?;
        }
        room_ids.push(room);
    }
    for (r, c) in clients.iter().enumerate() {
        c.request(ClientMsg::JoinRoom {
            room: room_ids[r].clone(),
            since: None,
        })
        .await?;
    }
    let listeners: Vec<Result<wire::Raw, BenchError>> =
        futures_util::stream::iter((0..a.rooms).flat_map(|r| (1..a.members).map(move |m| (r, m))))
            .map(|(r, m)| {
                // Members round-robin over the nodes (the drawer, member 0,
                // on the first, where its room lives).
                let (target, room) = (target.node(m), room_ids[r].clone());
                async move {
                    let mut ws =
                        wire::connect(target, &format!("u{r}-{m}"), Role::Athlete, "dev").await?;
                    wire::request(&mut ws, 2, ClientMsg::JoinRoom { room, since: None }).await?;
                    Ok(ws)
                }
            })
            .buffered(64)
            .collect()
            .await;
    let listeners = listeners.into_iter().collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let (cpu0, own0) = (target.cpu_seconds(), super::target::own_cpu_seconds());
    let sent_at: Arc<Vec<Vec<AtomicU64>>> = Arc::new(
        (0..a.rooms)
            .map(|_| (0..SLOTS).map(|_| AtomicU64::new(0)).collect())
            .collect(),
    );
    let index: Arc<std::collections::HashMap<String, usize>> = Arc::new(
        room_ids
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, r)| (r, i))
            .collect(),
    );
    let run_for = Duration::from_secs(a.duration);
    let drain = Duration::from_millis(500);

    let mut receivers = Vec::new();
    let mut drawers = Vec::new();
    for (r, mut c) in clients.drain(..).enumerate() {
        let (sent_at, errors) = (sent_at.clone(), errors.clone());
        let room = room_ids[r].clone();
        let (rate, points) = (a.rate, a.points);
        let rooms = if a.aligned { usize::MAX } else { a.rooms };
        drawers.push(tokio::spawn(async move {
            // Spread the drawers over the period, as real clients are:
            // aligned ticks would measure a synthetic burst instead.
            let period = Duration::from_secs_f64(1.0 / f64::from(rate));
            let phase = period.mul_f64(r as f64 / rooms as f64); // ~0 if aligned
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut batch = 0u32;
            let pts: Vec<Point> = (0..points)
                .map(|k| Point(0.1 + k as f32 * 0.01, 0.5))
                .collect();
            while start.elapsed() < run_for {
                tick.tick().await;
                // The tick may come after the end (a period can be longer
                // than the drain): what is sent then is not counted.
                if start.elapsed() >= run_for {
                    break;
                }
                sent_at[r][batch as usize % SLOTS]
                    .store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                let m = ClientMsg::Points(StrokeIn {
                    room: room.clone(),
                    live: LiveStroke {
                        stroke: "s1".into(),
                        batch,
                        t_ms: 0,
                        style: Style::default(),
                        points: pts.clone(),
                    },
                });
                if c.send(m).is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                batch += 1;
            }
            // Keep the connection until the receivers drain.
            tokio::time::sleep(drain).await;
            while c.try_push().is_some() {}
            u64::from(batch)
        }));
    }
    for mut ws in listeners {
        let (sent_at, index, errors) = (sent_at.clone(), index.clone(), errors.clone());
        receivers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let deadline = run_for + drain;
            loop {
                let left = deadline.saturating_sub(start.elapsed());
                let Ok(msg) = tokio::time::timeout(left, ws.next()).await else {
                    break;
                };
                let b = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                let Ok(h) = rmp_serde::from_slice::<wire::Head>(&b) else {
                    continue;
                };
                match (h.t, h.room, h.ev) {
                    ("live", Some(room), Some(ev)) if ev.k == Some("points") => {
                        let now = start.elapsed().as_micros() as u64;
                        if let (Some(&r), Some(batch)) = (index.get(room), ev.batch) {
                            let t = sent_at[r][batch as usize % SLOTS].load(Ordering::Relaxed);
                            lat.push(now.saturating_sub(t));
                        }
                    }
                    ("err" | "resync", _, _) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            lat
        }));
    }
    let mut batches_sent = 0;
    for d in drawers {
        batches_sent += d.await?;
    }
    let rss = target.rss_bytes();
    let mut all = Vec::new();
    for r in receivers {
        all.extend(r.await?);
    }
    let server_cpu_s = target.cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let loadgen_cpu_s = super::target::own_cpu_seconds() - own0;
    let nodes = target.nodes();
    target.close().await;
    let delivered = all.len() as u64;
    let s = Summary::from_micros(all);
    let secs = run_for.as_secs_f64();
    Ok(RoomsReport {
        rooms: a.rooms,
        nodes,
        aligned: a.aligned,
        members: a.members,
        rate_hz: a.rate,
        duration_s: secs,
        sessions: a.rooms * a.members,
        batches_sent,
        expected_deliveries: batches_sent * (a.members as u64 - 1),
        delivered,
        deliveries_per_sec: delivered as f64 / secs,
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
        p999_ms: s.p999_ms,
        max_ms: s.max_ms,
        server_rss_bytes: rss,
        server_cpu_s,
        loadgen_cpu_s,
        errors: errors.load(Ordering::Relaxed),
    })
}
