//! Room leases and fencing between `chalktalk serve` processes sharing a
//! real PostgreSQL (started by the test): a room is served by the node that
//! holds its lease and no other; when its owner freezes (SIGSTOP) the
//! lease expires, another node takes the room over with a new epoch and
//! serves every op the frozen owner acknowledged; when the frozen owner
//! wakes up (SIGCONT), the op it received while frozen is refused by the
//! fence (never acknowledged, never stored) and it lets the room go.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chalktalk_protocol::client::ClientError;
use chalktalk_protocol::{ClientMsg, ErrorCode, Reply, Role};
use common::{TestServer, add, line, postgres};
use serde_json::Value;

const COOKIE: &str = "a-test-cluster-cookie";
const LEASE_MS: u64 = 1_500;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

async fn node(name: &str, port: u16, seeds: &[u16], store: &str) -> TestServer {
    let seeds: Vec<String> = seeds.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    TestServer::builder()
        .child()
        .env("CHALKTALK_STORE", store)
        .env("CHALKTALK_NODE_NAME", name)
        .env("CHALKTALK_CLUSTER_LISTEN", &format!("127.0.0.1:{port}"))
        .env("CHALKTALK_CLUSTER_SEEDS", &seeds.join(","))
        .env("CHALKTALK_CLUSTER_COOKIE", COOKIE)
        .env("CHALKTALK_CLUSTER_HEARTBEAT_MS", "200")
        .env("CHALKTALK_CLUSTER_SUSPECT_MS", "700")
        .env("CHALKTALK_CLUSTER_DOWN_MS", "1500")
        .env("CHALKTALK_CLUSTER_LEASE_MS", &LEASE_MS.to_string())
        .start()
        .await
}

fn signal(s: &TestServer, sig: i32) {
    // SAFETY: kill(2) with a pid of our own child.
    let r = unsafe { libc::kill(s.pid() as i32, sig) };
    assert_eq!(r, 0, "kill({sig})");
}

async fn placement(s: &TestServer, room: &str) -> Value {
    let token = s.token("ops-admin", Role::Admin);
    let r = s
        .get(&format!("/api/v1/ops/rooms/{room}/placement"), Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn join(room: &str) -> ClientMsg {
    ClientMsg::JoinRoom {
        room: room.into(),
        since: None,
    }
}

/// Annotation ids in a join's snapshot.
fn ids(reply: &Reply) -> Vec<String> {
    match reply {
        Reply::Joined {
            mode: chalktalk_protocol::JoinMode::Snapshot { snapshot },
            ..
        } => snapshot.annotations.iter().map(|a| a.id.clone()).collect(),
        other => panic!("a snapshot expected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_is_fenced_and_its_room_moves() {
    let (_pg, store) = postgres::start().await;
    let (pa, pb) = (free_port(), free_port());
    let a = node("n1", pa, &[pb], &store).await;
    let b = node("n2", pb, &[pa], &store).await;

    // The coach's room lives on n1, where it was first used.
    let coach_a = a.connect("coach", Role::Coach, "laptop").await;
    let room = common::create_room(&coach_a, "video-1").await;
    common::join(&coach_a, &room, None).await;
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..20u64 {
        let id = format!("a-{n}");
        match coach_a.request(add(&room, &id, line(&id, n))).await {
            Ok(Reply::Ack { seq, dup: false }) => {
                acked.insert(id, seq);
            }
            other => panic!("op {id} on the owner: {other:?}"),
        }
    }
    let p = placement(&b, &room).await;
    assert_eq!(p["owner"], "n1", "{p}");
    assert_eq!(p["epoch"], p["fence"], "{p}");
    let first_epoch = p["epoch"].as_u64().expect("epoch");

    // n2 does not serve a room n1 holds: a clear, retryable refusal.
    let coach_b = b.connect("coach", Role::Coach, "tablet").await;
    match coach_b.request(join(&room)).await {
        Err(ClientError::Server {
            code: ErrorCode::Unavailable,
            msg,
        }) => assert!(msg.contains("served by node n1"), "{msg}"),
        other => panic!("join on the node without the lease: {other:?}"),
    }

    // n1 freezes; an op reaches its socket while it is frozen.
    signal(&a, libc::SIGSTOP);
    let stale = {
        let (c, room) = (coach_a, room.clone());
        tokio::spawn(async move {
            let r = c.request(add(&room, "stale", line("stale", 99))).await;
            (c, r)
        })
    };

    // Once the lease expires, n2 takes the room over with every acked op.
    let frozen_at = Instant::now();
    let joined = loop {
        match coach_b.request(join(&room)).await {
            Ok(r @ Reply::Joined { .. }) => break r,
            Err(ClientError::Server {
                code: ErrorCode::Unavailable,
                ..
            }) if frozen_at.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("take-over join: {other:?}"),
        }
    };
    let took = frozen_at.elapsed();
    eprintln!("room taken over {took:?} after the owner froze (lease {LEASE_MS} ms)");
    assert!(took < Duration::from_secs(5), "take-over took {took:?}");
    let have = ids(&joined);
    for id in acked.keys() {
        assert!(have.contains(id), "acked op {id} missing on the new owner");
    }
    assert!(!have.contains(&"stale".to_string()));
    let last_on_a = acked.values().copied().max().unwrap_or(0);
    for n in 0..5u64 {
        let id = format!("b-{n}");
        match coach_b.request(add(&room, &id, line(&id, n))).await {
            Ok(Reply::Ack { seq, dup: false }) => {
                assert_eq!(seq, last_on_a + 1 + n, "seqs go on from the old owner's");
                acked.insert(id, seq);
            }
            other => panic!("op {id} on the new owner: {other:?}"),
        }
    }
    let p = placement(&b, &room).await;
    assert_eq!(p["owner"], "n2", "{p}");
    assert!(p["epoch"].as_u64().expect("epoch") > first_epoch, "{p}");
    assert_eq!(p["epoch"], p["fence"], "{p}");

    // n1 wakes up: the op it got while frozen is refused, never acked.
    signal(&a, libc::SIGCONT);
    let (coach_a, stale) = tokio::time::timeout(Duration::from_secs(15), stale)
        .await
        .expect("the frozen owner answers after waking up")
        .expect("task");
    match stale {
        Ok(Reply::Ack { seq, .. }) => panic!("a fenced owner acked an op at seq {seq}"),
        Ok(other) => panic!("unexpected reply {other:?}"),
        Err(e) => eprintln!("the woken owner refused the stale op: {e}"),
    }
    drop(coach_a);

    // The stale op is nowhere, every acked op is there, on both nodes'
    // view of the room (n1 now sends its clients to n2).
    let check = b.connect("coach", Role::Coach, "check").await;
    let have = ids(&common::join(&check, &room, None).await);
    assert!(
        !have.contains(&"stale".to_string()),
        "the stale op was stored"
    );
    for id in acked.keys() {
        assert!(have.contains(id), "acked op {id} missing after the wake-up");
    }
    let again = a.connect("coach", Role::Coach, "laptop-2").await;
    let start = Instant::now();
    loop {
        match again.request(join(&room)).await {
            Err(ClientError::Server {
                code: ErrorCode::Unavailable,
                msg,
            }) if msg.contains("served by node n2") => break,
            other if start.elapsed() > Duration::from_secs(10) => {
                panic!("the woken node still serves the room: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let p = placement(&a, &room).await;
    assert_eq!(p["owner"], "n2", "never two owners: {p}");
}
