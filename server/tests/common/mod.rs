//! Shared test harness: a real chalktalk node on a loopback port (in this
//! process, or as a child process that tests can `kill -9`), real WebSocket
//! clients from the protocol crate's `client` feature, and small helpers to
//! wait for specific pushes.
#![allow(dead_code)]

pub mod api;
#[path = "../uploads/client.rs"]
pub mod client;
pub mod media;
pub mod proxy;
pub mod redis;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chalktalk::config::Config;
use chalktalk::gateway::Running;
use chalktalk_protocol::client::{Client, ClientOptions};
use chalktalk_protocol::{
    Annotation, ClientMsg, Point, Reply, Role, RoomEvent, RoomOp, ServerFrame, Shape, Style,
};
use chalktalk_services::auth::Auth;

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

/// A node running inside the test process.
pub struct TestServer {
    pub running: Option<Running>,
    pub url: String,
    pub auth: Auth,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(dir.path());
        // Media jobs run in real worker processes.
        config.media.worker_exe = worker_exe();
        tweak(&mut config);
        let running = chalktalk::server::start(&config)
            .await
            .expect("server starts");
        TestServer {
            url: format!("ws://{}/ws", running.addr),
            running: Some(running),
            auth: Auth::new(SECRET.as_bytes()),
            dir,
        }
    }

    pub fn token(&self, user: &str, role: Role) -> String {
        self.auth.mint(user, role, 3600).expect("mint")
    }

    pub async fn connect(&self, user: &str, role: Role, device: &str) -> Client {
        connect(&self.url, self.token(user, role), device).await
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// Stops the node and starts a new one on the same data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config = Config::for_tests(self.dir.path());
        config.media.worker_exe = worker_exe();
        for _ in 0..200 {
            // The old store may take a moment to release the database file.
            if let Ok(running) = chalktalk::server::start(&config).await {
                self.url = format!("ws://{}/ws", running.addr);
                self.running = Some(running);
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("node did not restart on its data dir");
    }
}

pub async fn connect(url: &str, token: String, device: &str) -> Client {
    Client::connect(url, ClientOptions::new(token, device))
        .await
        .expect("client connects")
}

/// A node running as a child process of the test (`chalktalk serve`).
pub struct ChildServer {
    pub child: std::process::Child,
    pub port: u16,
    pub url: String,
}

impl ChildServer {
    pub async fn start(data_dir: &Path) -> ChildServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chalktalk"))
            .arg("serve")
            .env("CHALKTALK_LISTEN", format!("127.0.0.1:{port}"))
            .env("CHALKTALK_DATA_DIR", data_dir)
            .env("CHALKTALK_JWT_SECRET", SECRET)
            .env("CHALKTALK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chalktalk serve");
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return ChildServer {
                    child,
                    port,
                    url: format!("ws://127.0.0.1:{port}/ws"),
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("child server did not listen");
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ACTIVE coach–athlete relationship (invite + accept through the
/// node's relationship service): what the permission matrix needs before
/// an athlete may message their coach or a coach see an athlete's videos.
pub async fn relate(s: &TestServer, coach: &str, athlete: &str) {
    let app = &s.running.as_ref().expect("running").app;
    let f = &app.perms.facts;
    f.invite(coach, athlete).await.expect("invite");
    f.respond(coach, athlete, true).await.expect("accept");
}

/// Grants (as if purchased) video asset `video` to `athlete`.
pub async fn grant(s: &TestServer, athlete: &str, video: &str) {
    let app = &s.running.as_ref().expect("running").app;
    app.perms
        .facts
        .grant(athlete, video, "admin")
        .await
        .expect("grant");
}

pub fn data_dir(s: &TestServer) -> PathBuf {
    s.dir.path().to_path_buf()
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

pub async fn ack(c: &Client, m: ClientMsg) -> (u64, bool) {
    match c.request(m).await.expect("op acked") {
        Reply::Ack { seq, dup } => (seq, dup),
        other => panic!("expected ack, got {other:?}"),
    }
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
