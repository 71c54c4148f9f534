//! Durability on PostgreSQL under `kill -9`: clients stream durable ops
//! into several rooms of a real `chalktalk serve` process whose store is a
//! PostgreSQL database (`CHALKTALK_STORE`, a server the test starts), the
//! process is SIGKILLed mid-load and a new one is started on the same
//! database with an EMPTY data dir: every op any client saw acked must be
//! served under the seq it was acked with. Self-contained (no
//! `tests/common`): its own child process and protocol helpers.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chalktalk_adapters::postgres::test_server::TestServer;
use chalktalk_protocol::client::{Client, ClientOptions};
use chalktalk_protocol::{
    Annotation, ClientMsg, JoinMode, Point, Reply, Role, RoomOp, Shape, Style,
};

const SECRET: &str = "test-secret-test-secret-test-secret!";

/// `chalktalk serve` as a child process on `store`, killed on drop.
struct Node {
    child: std::process::Child,
    url: String,
}

impl Node {
    async fn start(data_dir: &std::path::Path, store: &str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chalktalk"))
            .arg("serve")
            .env("CHALKTALK_LISTEN", format!("127.0.0.1:{port}"))
            .env("CHALKTALK_DATA_DIR", data_dir)
            .env("CHALKTALK_JWT_SECRET", SECRET)
            .env("CHALKTALK_STORE", store)
            .env("CHALKTALK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chalktalk serve");
        for _ in 0..800 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Node {
                    child,
                    url: format!("ws://127.0.0.1:{port}/ws"),
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("child server did not listen");
    }

    fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(url: &str, device: &str) -> Client {
    let auth = chalktalk_services::auth::Auth::new(SECRET.as_bytes());
    let token = auth.mint("coach", Role::Coach, 600).unwrap();
    Client::connect(url, ClientOptions::new(token, device))
        .await
        .expect("client connects")
}

fn add(room: &str, id: &str, t_ms: u64) -> ClientMsg {
    ClientMsg::Op {
        room: room.into(),
        op_id: id.into(),
        op: RoomOp::Add {
            ann: Annotation {
                id: id.into(),
                author: String::new(),
                t_ms,
                dur_ms: Some(2000),
                style: Style::default(),
                shape: Shape::Line {
                    a: Point(0.1, 0.2),
                    b: Point(0.3, 0.4),
                },
            },
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_on_postgres_loses_no_acked_op() {
    let pg = TestServer::start();
    let store = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &store).await;
    let coach = connect(&node.url, "d").await;
    let mut rooms = Vec::new();
    for r in 0..4 {
        match coach
            .request(ClientMsg::CreateRoom {
                video_id: format!("v{r}"),
                aspect: None,
                fps: None,
            })
            .await
            .unwrap()
        {
            Reply::RoomCreated { room } => rooms.push(room),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Acked ops: (room, op id) -> seq.
    let acked: Arc<Mutex<BTreeMap<(String, String), u64>>> = Arc::default();
    let mut writers = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        for w in 0..4 {
            let c = connect(&node.url, &format!("w{r}{w}")).await;
            let (room, acked) = (room.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let id = format!("w{w}-{n}");
                    match c.request(add(&room, &id, n)).await {
                        Ok(Reply::Ack { seq, .. }) => {
                            acked.lock().unwrap().insert((room.clone(), id), seq);
                        }
                        _ => break,
                    }
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    node.kill9();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "load was too light to mean anything: {}",
        acked.len()
    );

    eprintln!("{} ops acked before kill -9", acked.len());
    // A new node with nothing on disk: everything comes from PostgreSQL.
    let empty = tempfile::tempdir().unwrap();
    let node = Node::start(empty.path(), &store).await;
    let c = connect(&node.url, "after").await;
    let mut checker = connect(&node.url, "check").await;
    let mut checked = 0u64;
    for room in &rooms {
        let Reply::Joined {
            mode: JoinMode::Snapshot { snapshot },
            ..
        } = c
            .request(ClientMsg::JoinRoom {
                room: room.clone(),
                since: None,
            })
            .await
            .unwrap()
        else {
            panic!("snapshot expected");
        };
        let have: BTreeMap<&str, &Annotation> = snapshot
            .annotations
            .iter()
            .map(|a| (a.id.as_str(), a))
            .collect();
        let mut max_acked = 0;
        for ((r, id), seq) in acked.iter().filter(|((r, _), _)| r == room) {
            assert!(
                have.contains_key(id.as_str()),
                "acked op {id} (seq {seq}) lost in {r}"
            );
            max_acked = max_acked.max(*seq);
        }
        assert!(snapshot.seq >= max_acked);
        // Each acked op is still the event of the seq it was acked under:
        // resending it is a duplicate of that seq.
        for ((r, id), seq) in acked.iter().filter(|((r, _), _)| r == room) {
            checked += 1;
            if checked.is_multiple_of(300) {
                checker = connect(&node.url, "check").await;
            }
            let Reply::Ack { seq: again, dup } = checker.request(add(r, id, 0)).await.unwrap()
            else {
                panic!("ack expected for {id}")
            };
            assert_eq!((again, dup), (*seq, true), "{id}");
        }
        let Reply::Ack { seq, dup: false } = c.request(add(room, "fresh", 0)).await.unwrap() else {
            panic!("fresh op refused")
        };
        assert_eq!(seq, snapshot.seq + 1);
    }
}
