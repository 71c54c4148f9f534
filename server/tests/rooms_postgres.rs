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

/// `GET /api/v1/me/rooms` on PostgreSQL until it lists exactly `want`.
async fn listed(node: &TestServer, token: &str, want: &[&str]) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let body = node.api().get("/api/v1/me/rooms", Some(token)).await.json();
        let got: Vec<String> = body["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .filter_map(|r| r["room"].as_str().map(str::to_string))
            .collect();
        if got == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{got:?} != {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A removed member stays removed on PostgreSQL: the membership index
/// forgets the room, and a new node on the same database refuses the join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_is_durable_on_postgres() {
    let (_pg, store) = postgres::start().await;
    let mut node = TestServer::builder().postgres(&store).start().await;
    let coach = node.connect("coach", Role::Coach, "d").await;
    let room = common::create_room(&coach, "video-1").await;
    let invite = RoomOp::Invite {
        user: "athlete".into(),
    };
    common::ack(&coach, common::op(&room, "i1", invite)).await;
    let token = node.token("athlete", Role::Athlete);
    listed(&node, &token, &[room.as_str()]).await;
    let remove = RoomOp::Remove {
        user: "athlete".into(),
    };
    common::ack(&coach, common::op(&room, "r1", remove)).await;
    listed(&node, &token, &[]).await;
    drop(coach);
    node.stop().await;

    let node = TestServer::builder().postgres(&store).start().await;
    let athlete = node.connect("athlete", Role::Athlete, "phone").await;
    let r = athlete
        .request(chalktalk_protocol::ClientMsg::JoinRoom {
            room: room.clone(),
            since: None,
        })
        .await;
    assert_eq!(
        common::err_code(r),
        chalktalk_protocol::ErrorCode::NotMember
    );
    listed(&node, &token, &[]).await;
}
