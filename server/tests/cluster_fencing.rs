//! Room leases and fencing between `chalktalk serve` processes sharing a
//! real PostgreSQL (started by the test): a room is served by the node that
//! holds its lease and no other (the other relays to it); when its owner
//! freezes (SIGSTOP) the
//! lease expires, another node takes the room over with a new epoch and
//! serves every op the frozen owner acknowledged; when the frozen owner
//! wakes up (SIGCONT), it never writes the op it received while frozen
//! (its epoch is fenced: the op is refused, or relayed to the new owner
//! and written there), it lets the room go and relays its clients to the
//! new owner.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chalktalk_protocol::client::ClientError;
use chalktalk_protocol::{ClientMsg, ErrorCode, Reply, Role};
use common::cluster::{self, free_port, placement, signal};
use common::{TestServer, add, line, postgres};

const LEASE_MS: u64 = 1_500;

async fn node(name: &str, port: u16, seeds: &[u16], store: &str) -> TestServer {
    cluster::node(name, port, seeds, Some(store), Some(LEASE_MS)).await
}

/// Waits until `s` sees `peer` up.
async fn up(s: &TestServer, peer: &str) {
    cluster::until(s, peer, "up", Duration::from_secs(20)).await;
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
    up(&b, "n1").await;
    up(&a, "n2").await;

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

    // n2 does not serve the room n1 holds: it relays to n1.
    let mut coach_b = b.connect("coach", Role::Coach, "tablet").await;
    let have = ids(&common::join(&coach_b, &room, None).await);
    for id in acked.keys() {
        assert!(have.contains(id), "acked op {id} missing through the relay");
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

    // n2 finds n1 down and tells its member to rejoin; once the lease
    // expires, n2 takes the room over with every acked op.
    let frozen_at = Instant::now();
    let resync = coach_b
        .wait_for(Duration::from_secs(10), |f| match f {
            chalktalk_protocol::ServerFrame::Resync { room: r, .. } if *r == room => Some(()),
            _ => None,
        })
        .await;
    assert!(
        resync.is_some(),
        "no resync from the relay after the owner froze"
    );
    eprintln!(
        "resync through the relay {:?} after the freeze",
        frozen_at.elapsed()
    );
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

    // n1 wakes up. The op it got while frozen is never written by n1 (its
    // epoch is fenced): it is refused, or, when n1 found its lease gone
    // before reading it, relayed to n2 and written there at n2's epoch.
    signal(&a, libc::SIGCONT);
    let (coach_a, stale) = tokio::time::timeout(Duration::from_secs(15), stale)
        .await
        .expect("the frozen owner answers after waking up")
        .expect("task");
    let stale_seq = match stale {
        Ok(Reply::Ack { seq, dup: false }) => {
            eprintln!("the woken node relayed the op to the new owner: seq {seq}");
            assert!(
                seq > last_on_a + 5,
                "acked at {seq}, a seq the new owner had used"
            );
            Some(seq)
        }
        Ok(other) => panic!("unexpected reply {other:?}"),
        Err(e) => {
            eprintln!("the woken owner refused the op: {e}");
            None
        }
    };
    drop(coach_a);

    // Every acked op is there, the refused one is not, from either node
    // (n1 now relays its clients to n2).
    let check = b.connect("coach", Role::Coach, "check").await;
    let have = ids(&common::join(&check, &room, None).await);
    let stale_there = have.contains(&"stale".to_string());
    assert_eq!(
        stale_there,
        stale_seq.is_some(),
        "stored if and only if acked"
    );
    for id in acked.keys() {
        assert!(have.contains(id), "acked op {id} missing after the wake-up");
    }
    let again = a.connect("coach", Role::Coach, "laptop-2").await;
    let start = Instant::now();
    let have = loop {
        match again.request(join(&room)).await {
            Ok(r @ Reply::Joined { .. }) => break ids(&r),
            other if start.elapsed() > Duration::from_secs(10) => {
                panic!("the woken node does not reach the room: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(
        have.contains(&"stale".to_string()),
        stale_there,
        "the same room through n1"
    );
    for id in acked.keys() {
        assert!(have.contains(id), "acked op {id} missing through n1");
    }
    let p = placement(&a, &room).await;
    assert_eq!(p["owner"], "n2", "never two owners: {p}");
}
