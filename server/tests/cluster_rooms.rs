//! One review room across three `chalktalk serve` processes sharing a real
//! PostgreSQL (started by the test): the room lives on the node where it
//! was first used; members connected to the other nodes reach it through
//! their node's relay. They co-annotate (every member sees every event,
//! in seq order, once), see each other's live strokes and presence, and a
//! late joiner on a third node gets the state. When the owner is killed
//! (-9) under load, the members rejoin, another node takes the room over,
//! and every acknowledged op is there under the seq it was acked with. A
//! rolling restart (SIGTERM, one node after the other) under load loses no
//! acknowledged op either.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chalktalk_protocol::client::{Client, ClientError};
use chalktalk_protocol::{
    ClientMsg, JoinMode, LiveEvent, LiveStroke, Point, Reply, Role, RoomOp, ServerFrame, StrokeIn,
};
use common::cluster::{self, placement};

async fn cluster(store: &str) -> Vec<TestServer> {
    cluster::three(store).await
}

use common::{TestServer, add, line, op, postgres};

/// The head seq and every annotation id of `room`, from a join (inline or
/// paged snapshot).
async fn annotations(c: &Client, room: &str) -> (u64, std::collections::BTreeSet<String>) {
    let r = c.request(join(room)).await.expect("join");
    let Reply::Joined { mode, .. } = r else {
        panic!("joined expected, got {r:?}");
    };
    match mode {
        JoinMode::Snapshot { snapshot } => (
            snapshot.seq,
            snapshot.annotations.into_iter().map(|a| a.id).collect(),
        ),
        JoinMode::Paged {
            snapshot, pages, ..
        } => {
            let mut ids = std::collections::BTreeSet::new();
            for page in 0..pages {
                let r = c
                    .request(ClientMsg::SnapshotPage {
                        room: room.into(),
                        seq: snapshot.seq,
                        page,
                    })
                    .await
                    .expect("page");
                let Reply::SnapshotPage { annotations, .. } = r else {
                    panic!("page expected, got {r:?}");
                };
                ids.extend(annotations.into_iter().map(|a| a.id));
            }
            (snapshot.seq, ids)
        }
        other => panic!("a snapshot expected, got {other:?}"),
    }
}

fn join(room: &str) -> ClientMsg {
    ClientMsg::JoinRoom {
        room: room.into(),
        since: None,
    }
}

/// Room event seqs pushed to `c` for `room` until `want` arrived (or 10 s).
async fn events_until(c: &mut Client, room: &str, want: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seqs.last().copied().unwrap_or(0) < want && Instant::now() < deadline {
        match c.next_push(Duration::from_millis(200)).await {
            Some(ServerFrame::Room { room: r, ev }) if r == room => seqs.push(ev.seq),
            _ => {}
        }
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_three_nodes_share_one_room() {
    let (_pg, store) = postgres::start().await;
    let nodes = cluster(&store).await;
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);

    // The coach's room lives on n1; the athlete is on n2.
    let mut coach = n1.connect("coach", Role::Coach, "laptop").await;
    let room = common::create_room(&coach, "video-1").await;
    common::ack(
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
    common::join(&coach, &room, None).await;
    let mut athlete = n2.connect("athlete", Role::Athlete, "phone").await;
    match athlete.request(join(&room)).await {
        Ok(Reply::Joined { presence, .. }) => {
            let users: Vec<_> = presence.iter().map(|p| p.user.as_str()).collect();
            assert!(
                users.contains(&"coach"),
                "presence through the relay: {users:?}"
            );
        }
        other => panic!("athlete's join on n2: {other:?}"),
    }

    // Ops from both sides; every member sees every event once, in order.
    let mut acked = BTreeMap::new();
    for n in 0..10u64 {
        let (c, who) = if n % 2 == 0 {
            (&coach, "c")
        } else {
            (&athlete, "a")
        };
        let id = format!("{who}-{n}");
        match c.request(add(&room, &id, line(&id, n))).await {
            Ok(Reply::Ack { seq, dup: false }) => {
                acked.insert(seq, id);
            }
            other => panic!("op {id}: {other:?}"),
        }
    }
    let last = *acked.keys().last().expect("acks");
    let first = *acked.keys().next().expect("acks");
    let want: Vec<u64> = (first..=last).collect();
    let coach_seqs = events_until(&mut coach, &room, last).await;
    let athlete_seqs = events_until(&mut athlete, &room, last).await;
    assert_eq!(
        coach_seqs
            .iter()
            .filter(|s| **s >= first)
            .copied()
            .collect::<Vec<_>>(),
        want,
        "the owner's member"
    );
    assert_eq!(
        athlete_seqs
            .iter()
            .filter(|s| **s >= first)
            .copied()
            .collect::<Vec<_>>(),
        want,
        "the relayed member: no gap, no duplicate"
    );

    // A live stroke from n2 reaches n1's member.
    athlete
        .send(ClientMsg::Points(StrokeIn {
            room: room.clone(),
            live: LiveStroke {
                stroke: "s-1".into(),
                batch: 0,
                t_ms: 100,
                points: vec![Point(0.25, 0.5), Point(0.3, 0.55)],
                ..Default::default()
            },
        }))
        .expect("send points");
    let seen = coach
        .wait_for(Duration::from_secs(5), |f| match f {
            ServerFrame::Live {
                ev: LiveEvent::Points(s),
                ..
            } => Some(s.user.clone()),
            _ => None,
        })
        .await;
    assert_eq!(seen.as_deref(), Some("athlete"), "the stroke drawn on n2");

    // A late joiner on n3 gets the state.
    let late = n3.connect("coach", Role::Coach, "tablet").await;
    let snapshot = common::snapshot(&late, &room).await;
    let have: Vec<_> = snapshot.annotations.iter().map(|a| a.id.clone()).collect();
    for id in acked.values() {
        assert!(have.contains(id), "late joiner on n3 misses {id}");
    }
    assert_eq!(snapshot.seq, last);

    // Placement: one owner, n1, whatever node is asked.
    for n in &nodes {
        let p = placement(n, &room).await;
        assert_eq!(p["owner"], "n1", "{p}");
    }

    // The athlete leaves on n2: the coach's presence drops them.
    athlete
        .request(ClientMsg::LeaveRoom { room: room.clone() })
        .await
        .expect("leave through the relay");
    let gone = coach
        .wait_for(Duration::from_secs(5), |f| match f {
            ServerFrame::Live {
                ev: LiveEvent::Presence { members },
                ..
            } if members.iter().all(|m| m.user != "athlete") => Some(()),
            _ => None,
        })
        .await;
    assert!(gone.is_some(), "presence after the relayed leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_of_the_owner_loses_no_acked_op() {
    let (_pg, store) = postgres::start().await;
    let mut nodes = cluster(&store).await;

    let owner = nodes[0].connect("coach", Role::Coach, "owner").await;
    let room = common::create_room(&owner, "video-1").await;
    common::join(&owner, &room, None).await;

    // Writers on n2 and n3, relayed to n1, acks recorded as they come.
    let urls: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(nodes.iter().map(|n| n.url.clone()).collect()));
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let token = nodes[1].token("coach", Role::Coach);
    let writers: Vec<_> = [(0usize, 1usize), (1, 2), (2, 1), (3, 2)]
        .into_iter()
        .map(|(w, n)| spawn_writer(w, n, &room, &urls, &token, &acked, &stop))
        .collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = acked.lock().unwrap().len();
    assert!(before > 20, "too little load through the relays: {before}");
    nodes[0].kill9();
    // Writing resumes on another owner.
    let took = cluster::resumed(|| acked.lock().unwrap().len(), before).await;
    eprintln!("writes resumed {took:?} after kill -9 of the owner");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }

    let n = every_ack_kept(&nodes[1], &room, &acked).await;
    let p = placement(&nodes[1], &room).await;
    assert_ne!(p["owner"], "n1", "{p}");
    assert_eq!(p["epoch"], p["fence"], "{p}");
    eprintln!("{n} ops acked, new owner {}", p["owner"]);
}

/// Every op in `acked` is in `room` (read on `node`), and no two were
/// acked under one seq; returns how many were acked.
async fn every_ack_kept(node: &TestServer, room: &str, acked: &Acked) -> usize {
    let acked = acked.lock().unwrap().clone();
    let checker = node.connect("coach", Role::Coach, "check").await;
    let (head, have) = annotations(&checker, room).await;
    for (id, seq) in &acked {
        assert!(have.contains(id.as_str()), "acked op {id} (seq {seq}) lost");
    }
    let mut seqs: Vec<u64> = acked.values().copied().collect();
    seqs.sort_unstable();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "two ops acked under one seq");
    assert!(head >= *seqs.last().unwrap_or(&0));
    n
}

/// Which node holds the room's lease, at which epoch, as `s` reads it.
async fn placement_owner(s: &TestServer, room: &str) -> (String, u64) {
    let p = placement(s, room).await;
    (
        p["owner"].as_str().unwrap_or("none").to_string(),
        p["epoch"].as_u64().unwrap_or(0),
    )
}

/// Connects to whichever URL `urls[i]` holds now, retrying while that node
/// restarts.
async fn connect_retrying(
    urls: &Mutex<Vec<String>>,
    i: usize,
    token: &str,
    device: &str,
) -> Client {
    let start = Instant::now();
    loop {
        let url = urls.lock().unwrap()[i].clone();
        let opts = chalktalk_protocol::client::ClientOptions::new(token.to_string(), device);
        match Client::connect(&url, opts).await {
            Ok(c) => return c,
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "node {i} unreachable: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Ops acked to the writers: op id → seq.
type Acked = Arc<Mutex<BTreeMap<String, u64>>>;

/// A writer on node `node` (`urls[node]`, wherever that node listens now):
/// joins `room`, adds annotations one after another and records each ack
/// in `acked`; on any failure it reconnects or rejoins and sends the same
/// op id again (idempotent), until `stop`.
fn spawn_writer(
    w: usize,
    node: usize,
    room: &str,
    urls: &Arc<Mutex<Vec<String>>>,
    token: &str,
    acked: &Acked,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let (room, urls, token, acked, stop) = (
        room.to_string(),
        urls.clone(),
        token.to_string(),
        acked.clone(),
        stop.clone(),
    );
    tokio::spawn(async move {
        let device = format!("w{w}");
        let mut c = connect_retrying(&urls, node, &token, &device).await;
        let mut joined = false;
        let mut n = 0u64;
        let mut pending: Option<String> = None;
        while !stop.load(Ordering::Relaxed) {
            if c.close_info().is_some() {
                c = connect_retrying(&urls, node, &token, &device).await;
                joined = false;
            }
            if !joined {
                match c.request(join(&room)).await {
                    Ok(Reply::Joined { .. }) => joined = true,
                    Err(ClientError::Closed { .. }) | Err(ClientError::Ws(_)) => {
                        c = connect_retrying(&urls, node, &token, &device).await;
                    }
                    // unavailable while the room moves; a timeout when
                    // its owner died with the request.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    Ok(other) => panic!("writer {w} join: {other:?}"),
                }
                continue;
            }
            // The same op id again until it is acked.
            let id = pending.take().unwrap_or_else(|| {
                n += 1;
                format!("w{w}-{n}")
            });
            match c.request(add(&room, &id, line(&id, n))).await {
                Ok(Reply::Ack { seq, .. }) => {
                    let prev = acked.lock().unwrap().insert(id.clone(), seq);
                    assert!(
                        prev.is_none_or(|p| p == seq),
                        "{id} acked at {prev:?} then {seq}"
                    );
                }
                Err(_) => {
                    pending = Some(id);
                    joined = false;
                }
                Ok(other) => panic!("writer {w}: {other:?}"),
            }
            // A resync (the room moved, or the relay lost its owner): join
            // again.
            while let Some(f) = c.try_push() {
                if matches!(f, ServerFrame::Resync { .. }) {
                    joined = false;
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_loses_no_acked_op() {
    let (_pg, store) = postgres::start().await;
    let mut nodes = cluster(&store).await;
    let urls: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(nodes.iter().map(|n| n.url.clone()).collect()));
    let owner = nodes[0].connect("coach", Role::Coach, "owner").await;
    let room = common::create_room(&owner, "video-1").await;
    common::join(&owner, &room, None).await;
    drop(owner);

    // Two writers per node; each reconnects (to its node, wherever it
    // listens now) and rejoins whenever it has to, resending its op.
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let token = nodes[0].token("coach", Role::Coach);
    let writers: Vec<_> = (0..6usize)
        .map(|w| spawn_writer(w, w % 3, &room, &urls, &token, &acked, &stop))
        .collect();
    let progress = |what: &str, before: usize| {
        let acked = acked.clone();
        let what = what.to_string();
        async move {
            let start = Instant::now();
            while acked.lock().unwrap().len() < before + 20 {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "no progress {what}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            start.elapsed()
        }
    };
    progress("at the start", 0).await;
    for i in 0..3 {
        let owner_before = placement_owner(&nodes[(i + 1) % 3], &room).await;
        nodes[i].restart_gracefully().await;
        urls.lock().unwrap()[i] = nodes[i].url.clone();
        let before = acked.lock().unwrap().len();
        let took = progress(&format!("after restarting n{}", i + 1), before).await;
        let owner_after = placement_owner(&nodes[(i + 1) % 3], &room).await;
        eprintln!(
            "n{} restarted (owner {owner_before:?} -> {owner_after:?}); 20 more acks {took:?} later",
            i + 1
        );
        if owner_before.0 == format!("n{}", i + 1) {
            // The stopped owner let the room go: a new lease (another
            // node, or the restarted one), at a higher epoch.
            assert!(owner_after.1 > owner_before.1, "the room was handed over");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }

    let n = every_ack_kept(&nodes[1], &room, &acked).await;
    eprintln!("{n} ops acked across a rolling restart of the three nodes");
}
