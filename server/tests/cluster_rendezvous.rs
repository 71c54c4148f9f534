//! Rooms placed by rendezvous hashing (`cluster_placement = rendezvous`):
//! three `chalktalk serve` processes on one real PostgreSQL (started by
//! the test). Whichever node a member comes through, a room that no node
//! serves starts on the live node with the highest rendezvous score of
//! (node, room id), so rooms spread over the nodes and every node agrees
//! where each one lives. A coach on n1 and an athlete on n2 co-annotate a
//! room that n3 serves (both through their relays). When n3 is killed
//! (-9), the room moves, once its lease expires, to the rendezvous pick
//! among the two nodes left, and every acked op is there.

mod common;

use std::time::{Duration, Instant};

use chalktalk_actors::relay::rendezvous;
use chalktalk_protocol::client::{Client, ClientError};
use chalktalk_protocol::{ClientMsg, ErrorCode, Reply, Role};
use common::cluster::{self, placement};
use common::{TestServer, ack, add, line, postgres};

/// The node of `nodes` a rendezvous over them picks for `id` (the
/// server's tie-break: the higher name).
fn pick(nodes: &[&str], id: &str) -> String {
    nodes
        .iter()
        .map(|n| (rendezvous(n, id), n.to_string()))
        .max()
        .map(|(_, n)| n)
        .unwrap_or_default()
}

async fn three(store: &str) -> Vec<TestServer> {
    cluster::three_with(store, &[("CHALKTALK_CLUSTER_PLACEMENT", "rendezvous")]).await
}

/// Joins `room`, retried while it is between owners (`unavailable`), for
/// up to `within`.
async fn join_retrying(c: &Client, room: &str, within: Duration) -> Reply {
    let deadline = Instant::now() + within;
    loop {
        match c
            .request(ClientMsg::JoinRoom {
                room: room.into(),
                since: None,
            })
            .await
        {
            Ok(r) => return r,
            Err(ClientError::Server {
                code: ErrorCode::Unavailable,
                ..
            }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("join {room}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_start_on_their_rendezvous_node_and_move_to_the_next_one() {
    let (_pg, store) = postgres::start().await;
    let mut nodes = three(&store).await;
    let all = ["n1", "n2", "n3"];

    // The coach (on n1) opens rooms until each node serves at least one.
    let coach = nodes[0].connect("coach", Role::Coach, "laptop").await;
    let mut rooms: Vec<(String, String)> = Vec::new();
    while all
        .iter()
        .any(|n| !rooms.iter().any(|(_, owner)| owner == n))
    {
        assert!(
            rooms.len() < 40,
            "40 rooms and a node serves none: {rooms:?}"
        );
        let room = common::create_room(&coach, "video-1").await;
        common::invite(&coach, &room, "athlete").await;
        rooms.push((room.clone(), pick(&all, &room)));
    }
    // Each lives on its pick, as every node reads it.
    for (room, want) in &rooms {
        for (n, name) in nodes.iter().zip(all) {
            let p = placement(n, room).await;
            assert_eq!(p["owner"], want.as_str(), "{room} asked {name}: {p}");
        }
    }

    // A room n3 serves: the coach on n1 and the athlete on n2 both reach
    // it through their relays.
    let room = rooms
        .iter()
        .find(|(_, owner)| owner == "n3")
        .map(|(r, _)| r.clone())
        .expect("a room on n3");
    let mut athlete = nodes[1].connect("athlete", Role::Athlete, "phone").await;
    common::join(&coach, &room, None).await;
    common::join(&athlete, &room, None).await;
    let mut acked = Vec::new();
    for i in 0..6u64 {
        let c = if i % 2 == 0 { &coach } else { &athlete };
        let id = format!("op-{i}");
        let (seq, dup) = ack(c, add(&room, &id, line(&id, i))).await;
        assert!(!dup);
        acked.push((seq, id));
    }
    let last = acked.last().map(|(s, _)| *s).unwrap_or(0);
    assert!(
        common::saw_event(&mut athlete, &room, last).await,
        "the athlete on n2 sees the last op"
    );

    // n3 dies: the room moves to the rendezvous pick of n1 and n2 once
    // its lease expires, and every acked op is there.
    nodes[2].kill9();
    let next = pick(&["n1", "n2"], &room);
    let started = Instant::now();
    let snapshot = match join_retrying(&coach, &room, Duration::from_secs(10)).await {
        Reply::Joined {
            mode: chalktalk_protocol::JoinMode::Snapshot { snapshot },
            ..
        } => snapshot,
        other => panic!("a snapshot expected, got {other:?}"),
    };
    println!(
        "room {room} served again after {:?}, by {next}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "new owner within 5 s"
    );
    let have: Vec<_> = snapshot.annotations.iter().map(|a| a.id.clone()).collect();
    for (_, id) in &acked {
        assert!(have.contains(id), "{id} lost in the move: {have:?}");
    }
    assert_eq!(snapshot.seq, last);
    for n in &nodes[..2] {
        let p = placement(n, &room).await;
        assert_eq!(p["owner"], next.as_str(), "{p}");
    }
}
