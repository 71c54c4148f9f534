//! `bench sessions`: memory per connected session. Measures the server's
//! resident memory before and after N clients connect (hello done, inbox
//! registered, nothing else; or one request each with `--active`; or
//! joined to `--rooms` review rooms) and divides; then closes them all and
//! reports what the server still holds a few seconds later.

use std::time::Duration;

use chalktalk_protocol::Role;
use clap::Args;
use serde::Serialize;

use super::{BenchError, Target, TargetArgs, connect_many};

#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Make one request per session first (it looks a thread up: what a
    /// session keeps after its first request is counted).
    #[arg(long)]
    pub active: bool,
    /// Join the sessions to this many review rooms (count / rooms members
    /// each; the first of each room creates it and invites the others).
    #[arg(long, default_value_t = 0)]
    pub rooms: usize,
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
    /// RSS 7 s after every session closed (the node trims its heap after
    /// many connections close: `src/gateway/trim.rs`).
    pub server_rss_after_close_bytes: Option<u64>,
    /// RSS 70 s after, once their rooms have stopped (only with `--rooms`).
    pub server_rss_after_rooms_stop_bytes: Option<u64>,
    pub rooms: usize,
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
    let per_room = if a.rooms > 0 {
        a.count.div_ceil(a.rooms)
    } else {
        0
    };
    let users = (0..a.count)
        .map(|i| match per_room {
            0 => (format!("idle{i}"), Role::Athlete),
            n if i % n == 0 => (format!("idle{i}"), Role::Coach),
            _ => (format!("idle{i}"), Role::Athlete),
        })
        .collect();
    let clients = connect_many(&target, users).await?;
    let connect_seconds = t0.elapsed().as_secs_f64();
    if per_room > 0 {
        join_rooms(&clients, per_room).await?;
    }
    if a.active {
        for c in &clients {
            // Refused (no such thread), after a directory lookup.
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
    tokio::time::sleep(Duration::from_secs(7)).await;
    let after_close = target.rss_bytes();
    let after_rooms = if per_room > 0 {
        // Rooms stop after the presence grace and `idle_stop`; the node
        // trims again after them.
        tokio::time::sleep(Duration::from_secs(63)).await;
        target.rss_bytes()
    } else {
        None
    };
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
        server_rss_after_close_bytes: after_close,
        server_rss_after_rooms_stop_bytes: after_rooms,
        rooms: a.rooms,
        errors,
    })
}

/// Rooms of `per_room` consecutive clients: the first creates the room and
/// invites the others, then all join (32 rooms at a time).
async fn join_rooms(
    clients: &[chalktalk_protocol::client::Client],
    per_room: usize,
) -> Result<(), BenchError> {
    use chalktalk_protocol::{ClientMsg, Reply, RoomOp};
    use futures_util::StreamExt;
    let results: Vec<Result<(), BenchError>> = futures_util::stream::iter(clients.chunks(per_room))
        .enumerate()
        .map(|(r, members)| async move {
            let Reply::RoomCreated { room } = members[0]
                .request(ClientMsg::CreateRoom {
                    video_id: format!("v{r}"),
                    aspect: None,
                    fps: None,
                })
                .await?
            else {
                return Err("unexpected reply to create_room".into());
            };
            for m in &members[1..] {
                members[0]
                    .request(ClientMsg::Op {
                        room: room.clone(),
                        op_id: format!("inv-{}", m.welcome.user),
                        op: RoomOp::Invite {
                            user: m.welcome.user.clone(),
                        },
                    })
                    .await?;
            }
            for m in members {
                m.request(ClientMsg::JoinRoom {
                    room: room.clone(),
                    since: None,
                })
                .await?;
            }
            Ok(())
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}
