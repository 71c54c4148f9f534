//! Shared test harness, the one place of the helpers every test binary
//! uses: the one server type ([`TestServer`], tests/common/server.rs: in
//! this process or as a child that tests can `kill -9`, behind a proxy that
//! cuts or stalls links), the REST and account helpers (api.rs), the raw
//! HTTP client (client.rs), a real redis-server (redis.rs), a real
//! PostgreSQL with a fresh database (postgres.rs), media helpers
//! (media.rs), real WebSocket clients from the protocol crate's `client`
//! feature, and small helpers to wait for specific pushes.
#![allow(dead_code)]

pub mod api;
pub mod client;
pub mod cluster;
pub mod media;
pub mod netns;
pub mod postgres;
pub mod proxy;
pub mod redis;
pub mod server;

pub use server::TestServer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chalktalk_protocol::client::{Client, ClientOptions};
use chalktalk_protocol::{
    Annotation, ClientMsg, Point, Reply, Role, RoomEvent, RoomOp, ServerFrame, Shape, Style,
};

pub const SECRET: &str = "test-secret-test-secret-test-secret!";
pub const WAIT: Duration = Duration::from_secs(5);

/// The code of a server error reply (panics on anything else).
pub fn err_code(
    r: Result<Reply, chalktalk_protocol::client::ClientError>,
) -> chalktalk_protocol::ErrorCode {
    match r {
        Err(chalktalk_protocol::client::ClientError::Server { code, .. }) => code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// The real media worker binary (`chalktalk-media`), built beside the
/// server's by `cargo test --workspace` (the media crate's tests need it).
pub fn worker_exe() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_chalktalk")).with_file_name("chalktalk-media");
    assert!(
        exe.exists(),
        "{} is missing: run `cargo build -p chalktalk-media` (or test the whole workspace)",
        exe.display()
    );
    exe
}

pub async fn connect(url: &str, token: String, device: &str) -> Client {
    Client::connect(url, ClientOptions::new(token, device))
        .await
        .expect("client connects")
}

/// An ACTIVE coach–athlete relationship (invite + accept through the
/// node's relationship service): what the permission matrix needs before
/// an athlete may message their coach or a coach see an athlete's videos.
pub async fn relate(s: &TestServer, coach: &str, athlete: &str) {
    let f = &s.app().perms.facts;
    f.invite(coach, athlete).await.expect("invite");
    f.respond(coach, athlete, true).await.expect("accept");
}

/// Grants (as if purchased) video asset `video` to `athlete`.
pub async fn grant(s: &TestServer, athlete: &str, video: &str) {
    s.app()
        .perms
        .facts
        .grant(athlete, video, "admin")
        .await
        .expect("grant");
}

pub fn line(id: &str, t_ms: u64) -> Annotation {
    Annotation {
        id: id.into(),
        author: String::new(),
        t_ms,
        dur_ms: Some(2000),
        style: Style::default(),
        shape: Shape::Line {
            a: Point(0.1, 0.2),
            b: Point(0.3, 0.4),
        },
    }
}

pub fn add(room: &str, op_id: &str, ann: Annotation) -> ClientMsg {
    ClientMsg::Op {
        room: room.into(),
        op_id: op_id.into(),
        op: RoomOp::Add { ann },
    }
}

pub fn op(room: &str, op_id: &str, op: RoomOp) -> ClientMsg {
    ClientMsg::Op {
        room: room.into(),
        op_id: op_id.into(),
        op,
    }
}

pub async fn create_room(c: &Client, video: &str) -> String {
    match c
        .request(ClientMsg::CreateRoom {
            video_id: video.into(),
            aspect: None,
            fps: None,
        })
        .await
        .expect("create_room")
    {
        Reply::RoomCreated { room } => room,
        other => panic!("unexpected {other:?}"),
    }
}

/// `user` invited to `room` by `c` (its owner); the invite's seq.
pub async fn invite(c: &Client, room: &str, user: &str) -> u64 {
    let invite = RoomOp::Invite { user: user.into() };
    ack(c, op(room, &format!("invite-{user}"), invite)).await.0
}

pub async fn ack(c: &Client, m: ClientMsg) -> (u64, bool) {
    match c.request(m).await.expect("op acked") {
        Reply::Ack { seq, dup } => (seq, dup),
        other => panic!("expected ack, got {other:?}"),
    }
}

/// A chat message `msg_id` with `text` to `thread`.
pub fn chat_send(thread: &str, msg_id: &str, text: &str) -> ClientMsg {
    ClientMsg::Send {
        thread: thread.into(),
        msg_id: msg_id.into(),
        text: text.into(),
        attachments: vec![],
        reply_to: None,
    }
}

/// `room_thread`, retried (for [`WAIT`]) while the membership, written a
/// moment after the invite's ack, is not there yet.
pub async fn room_thread(c: &Client, room: &str) -> chalktalk_protocol::ThreadInfo {
    use chalktalk_protocol::client::ClientError;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match c.request(ClientMsg::RoomThread { room: room.into() }).await {
            Ok(Reply::ThreadCreated { thread }) => return thread,
            Err(ClientError::Server {
                code: chalktalk_protocol::ErrorCode::NotMember,
                ..
            }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("room_thread: {other:?}"),
        }
    }
}

/// The texts of the next `n` `msg` frames of `thread` (each within [`WAIT`]).
pub async fn msg_texts(c: &mut Client, thread: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let t = c
            .wait_for(WAIT, |f| match f {
                ServerFrame::Msg { thread: t, msg } if t == thread => Some(msg.text.clone()),
                _ => None,
            })
            .await;
        out.push(t.unwrap_or_else(|| panic!("msg {} of {n} did not come: {out:?}", out.len())));
    }
    out
}

/// Adds `n` lines (op ids `{prefix}{i}`) and returns their acked seqs.
pub async fn add_lines(c: &Client, room: &str, prefix: &str, n: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    for i in 0..n {
        let ann = line(&format!("{prefix}-ann{i}"), i);
        seqs.push(ack(c, add(room, &format!("{prefix}{i}"), ann)).await.0);
    }
    seqs
}

pub async fn join(c: &Client, room: &str, since: Option<u64>) -> Reply {
    c.request(ClientMsg::JoinRoom {
        room: room.into(),
        since,
    })
    .await
    .expect("join")
}

/// Joins `room` from scratch and returns the snapshot it answers with.
pub async fn snapshot(c: &Client, room: &str) -> chalktalk_protocol::RoomSnapshot {
    match join(c, room, None).await {
        Reply::Joined {
            mode: chalktalk_protocol::JoinMode::Snapshot { snapshot },
            ..
        } => snapshot,
        other => panic!("snapshot expected, got {other:?}"),
    }
}

/// A coach with a room and an athlete invited; both joined.
pub async fn coach_and_athlete(s: &TestServer) -> (Client, Client, String) {
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let athlete = s.connect("athlete", Role::Athlete, "phone").await;
    let room = create_room(&coach, "video-1").await;
    ack(
        &coach,
        op(
            &room,
            "invite-1",
            RoomOp::Invite {
                user: "athlete".into(),
            },
        ),
    )
    .await;
    join(&coach, &room, None).await;
    join(&athlete, &room, None).await;
    (coach, athlete, room)
}

/// Waits (up to 5 s) for the event `seq` of `room`, skipping other
/// pushes; true if it came.
pub async fn saw_event(c: &mut Client, room: &str, seq: u64) -> bool {
    c.wait_for(Duration::from_secs(5), |f| match f {
        ServerFrame::Room { room: r, ev } if r == room && ev.seq == seq => Some(()),
        _ => None,
    })
    .await
    .is_some()
}

/// Next durable room event, skipping other pushes.
pub async fn next_event(c: &mut Client) -> RoomEvent {
    c.wait_for(WAIT, |f| match f {
        ServerFrame::Room { ev, .. } => Some(ev.clone()),
        _ => None,
    })
    .await
    .expect("a room event")
}

/// Every durable room event that arrives within `wait`.
pub async fn drain_events(c: &mut Client, wait: Duration) -> Vec<RoomEvent> {
    let mut out = Vec::new();
    while let Some(f) = c.next_push(wait).await {
        if let ServerFrame::Room { ev, .. } = f {
            out.push(ev);
        }
    }
    out
}

/// Starts a node and runs `chalktalk migrate` on `store`, which nothing
/// answers: both must fail within 20 s naming `CHALKTALK_STORE` and never
/// showing the password `hunter2`. Returns the start error.
pub async fn refused_unreachable_store(store: chalktalk::config::StoreConfig) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chalktalk::config::Config::for_tests(dir.path());
    config.store = store;
    let started = std::time::Instant::now();
    let err = match chalktalk::server::start(&config).await {
        Ok(_) => panic!("started without its store"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("CHALKTALK_STORE"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let migrate = chalktalk::migrate::run(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        migrate.contains("CHALKTALK_STORE") && !migrate.contains("hunter2"),
        "{migrate}"
    );
    err
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}
