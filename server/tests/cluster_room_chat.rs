//! A review room's own chat thread across three `chalktalk serve`
//! processes sharing a real PostgreSQL (started by the test): the room
//! lives on the coach's node, its thread on the node where it was first
//! opened, and the members on all three find the one thread, write and
//! read it live; a member removed on the room's node can no longer write
//! through another node.

mod common;

use std::time::{Duration, Instant};

use chalktalk_protocol::client::ClientError;
use chalktalk_protocol::{ClientMsg, ErrorCode, Reply, Role, RoomOp, room_thread_id};
use common::{WAIT, cluster, postgres};

fn send(thread: &str, id: &str) -> ClientMsg {
    common::chat_send(thread, id, &format!("text of {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_thread_follows_its_room_across_nodes() {
    let (_pg, store) = postgres::start().await;
    let nodes = cluster::three(&store).await;
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    let mut coach = n1.connect("coach", Role::Coach, "laptop").await;
    let mut a1 = n2.connect("a1", Role::Athlete, "phone").await;
    let mut a2 = n3.connect("a2", Role::Athlete, "phone").await;
    let Reply::RoomCreated { room } = coach
        .request(ClientMsg::CreateRoom {
            video_id: "review-across-nodes".into(),
            aspect: None,
            fps: None,
        })
        .await
        .expect("create_room")
    else {
        panic!("room_created")
    };
    common::ack(
        &coach,
        common::op(&room, "i1", RoomOp::Invite { user: "a1".into() }),
    )
    .await;
    common::ack(
        &coach,
        common::op(&room, "i2", RoomOp::Invite { user: "a2".into() }),
    )
    .await;

    // One thread, whichever node asks; it starts on n2 (opened there first).
    let t = common::room_thread(&a1, &room).await.id;
    assert_eq!(t, room_thread_id(&room));
    assert_eq!(common::room_thread(&a2, &room).await.id, t);
    assert_eq!(common::room_thread(&coach, &room).await.id, t);
    for c in [&a1, &a2, &coach] {
        let r = c
            .request(ClientMsg::OpenThread {
                thread: t.clone(),
                since: None,
            })
            .await
            .expect("open_thread");
        assert!(matches!(r, Reply::ThreadOpened { .. }), "{r:?}");
    }
    for (c, id) in [(&a1, "a1-1"), (&a2, "a2-1"), (&coach, "c-1")] {
        let r = c.request(send(&t, id)).await.expect(id);
        assert!(matches!(r, Reply::Ack { .. }), "{id}: {r:?}");
    }
    let want = ["text of a1-1", "text of a2-1", "text of c-1"];
    for (who, c) in [("a1", &mut a1), ("a2", &mut a2), ("coach", &mut coach)] {
        assert_eq!(common::msg_texts(c, &t, 3).await, want, "{who}");
    }

    // Removed on n1 (the room's node): a2 on n3 can no longer write.
    common::ack(
        &coach,
        common::op(&room, "rm", RoomOp::Remove { user: "a2".into() }),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    loop {
        n += 1;
        match a2.request(send(&t, &format!("a2-after-{n}"))).await {
            Err(ClientError::Server {
                code: ErrorCode::NotMember,
                ..
            }) => break,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("send after removal: {other:?}"),
        }
    }
    let r = a1.request(send(&t, "a1-2")).await.expect("a1 still writes");
    assert!(matches!(r, Reply::Ack { .. }), "{r:?}");
}
