//! Durability on PostgreSQL under `kill -9`: clients stream durable ops
//! into several rooms of a real `chalktalk serve` process whose store is a
//! PostgreSQL database (`CHALKTALK_STORE`, a server the test starts), the
//! process is SIGKILLed mid-load and a new one is started on the same
//! database with an EMPTY data dir: every op any client saw acked must be
//! served under the seq it was acked with.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chalktalk_protocol::{Annotation, ClientMsg, Reply, Role};
use common::{TestServer, add, line, postgres};

/// Adds a line annotation `id` at `t_ms` (op id `id`).
fn add_line(room: &str, id: &str, t_ms: u64) -> ClientMsg {
    add(room, id, line(id, t_ms))
}

/// `chalktalk serve` as a child process on the PostgreSQL database
/// `store`, with `dir` as its data dir.
async fn start_node(dir: &std::path::Path, store: &str) -> TestServer {
    TestServer::builder()
        .child()
        .in_dir(dir)
        .env("CHALKTALK_STORE", store)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_on_postgres_loses_no_acked_op() {
    let (_pg, store) = postgres::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node(dir.path(), &store).await;
    let coach = node.connect("coach", Role::Coach, "d").await;
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
            let c = node
                .connect("coach", Role::Coach, &format!("w{r}{w}"))
                .await;
            let (room, acked) = (room.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let id = format!("w{w}-{n}");
                    match c.request(add_line(&room, &id, n)).await {
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
    let node = start_node(empty.path(), &store).await;
    let c = node.connect("coach", Role::Coach, "after").await;
    let mut checker = node.connect("coach", Role::Coach, "check").await;
    let mut checked = 0u64;
    for room in &rooms {
        let snapshot = common::snapshot(&c, room).await;
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
                checker = node.connect("coach", Role::Coach, "check").await;
            }
            let Reply::Ack { seq: again, dup } = checker.request(add_line(r, id, 0)).await.unwrap()
            else {
                panic!("ack expected for {id}")
            };
            assert_eq!((again, dup), (*seq, true), "{id}");
        }
        let Reply::Ack { seq, dup: false } = c.request(add_line(room, "fresh", 0)).await.unwrap()
        else {
            panic!("fresh op refused")
        };
        assert_eq!(seq, snapshot.seq + 1);
    }
}
