//! Co-annotation and resume on a PostgreSQL store: two devices in one room
//! see each other's ops live; after the node is replaced by a new one with
//! an empty data dir on the same database, a device resumes with `since`
//! and gets exactly the events it missed, then live events again.

mod common;

use std::time::Duration;

use chalktalk_protocol::client::Client;
use chalktalk_protocol::{JoinMode, Reply, Role, RoomOp, ServerFrame};
use common::{TestServer, add, line, postgres};

const WAIT: Duration = Duration::from_secs(10);

/// The next durable room event's (seq, annotation id).
async fn next_event(c: &mut Client) -> (u64, String) {
    c.wait_for(WAIT, |f| match f {
        ServerFrame::Room { ev, .. } => match &ev.op {
            RoomOp::Add { ann } => Some((ev.seq, ann.id.clone())),
            _ => Some((ev.seq, String::new())),
        },
        _ => None,
    })
    .await
    .expect("a room event")
}

async fn ack(c: &Client, room: &str, id: &str) -> u64 {
    match c.request(add(room, id, line(id, 0))).await.unwrap() {
        Reply::Ack { seq, dup: false } => seq,
        other => panic!("{id}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_annotation_and_resume_on_postgres() {
    let (_pg, store) = postgres::start().await;
    let mut node = TestServer::builder().postgres(&store).start().await;
    let a = node.connect("coach", Role::Coach, "laptop").await;
    let mut b = node.connect("coach", Role::Coach, "tablet").await;
    let room = common::create_room(&a, "v").await;
    for c in [&a, &b] {
        let r = c.join_room(&room, None, |_, _| {}).await.unwrap();
        assert!(matches!(r, Reply::Joined { .. }), "{r:?}");
    }
    for n in 1..=10 {
        let id = format!("a{n}");
        assert_eq!(ack(&a, &room, &id).await, n);
        assert_eq!(next_event(&mut b).await, (n, id), "b sees a's op live");
    }
    drop(b);
    for n in 11..=20 {
        assert_eq!(ack(&a, &room, &format!("a{n}")).await, n);
    }
    drop(a);
    node.stop().await;

    // A new node with an empty data dir on the same database.
    let mut node = TestServer::builder().postgres(&store).start().await;
    let mut b = node.connect("coach", Role::Coach, "tablet").await;
    match b.join_room(&room, Some(10), |_, _| {}).await.unwrap() {
        Reply::Joined {
            mode: JoinMode::Replay { since, head },
            ..
        } => {
            assert_eq!((since, head), (10, 20));
            for n in 11..=20 {
                assert_eq!(next_event(&mut b).await, (n, format!("a{n}")));
            }
        }
        Reply::Joined {
            mode: JoinMode::Snapshot { snapshot },
            ..
        } => {
            assert_eq!(snapshot.seq, 20);
            let mut ids: Vec<String> = snapshot.annotations.iter().map(|a| a.id.clone()).collect();
            ids.sort();
            let mut want: Vec<String> = (1..=20).map(|n| format!("a{n}")).collect();
            want.sort();
            assert_eq!(ids, want);
        }
        other => panic!("unexpected {other:?}"),
    }
    let a = node.connect("coach", Role::Coach, "laptop").await;
    a.join_room(&room, None, |_, _| {}).await.unwrap();
    assert_eq!(ack(&a, &room, "after").await, 21);
    assert_eq!(next_event(&mut b).await, (21, "after".to_string()));
    node.stop().await;
}
