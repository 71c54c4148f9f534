//! A review room's own chat thread across three `chalktalk serve`
//! processes sharing a real PostgreSQL (started by the test): the room
//! lives on the coach's node, its thread on the node where it was first
//! opened, and the members on all three find the one thread, write and
//! read it live; a member removed on the room's node can no longer write
//! through another node.

mod common;

use std::time::{Duration, Instant};

use chalktalk_protocol::client::{Client, ClientError};
use chalktalk_protocol::{ClientMsg, ErrorCode, Reply, Role, RoomOp, ServerFrame, room_thread_id};
use common::{WAIT, cluster, postgres};

/// `room_thread`, retried while the invitation is being recorded.
async fn room_thread(c: &Client, room: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        match c.request(ClientMsg::RoomThread { room: room.into() }).await {
            Ok(Reply::ThreadCreated { thread }) => return thread.id,
            Err(ClientError::Server {
                code: ErrorCode::NotMember,
                ..
            }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("room_thread: {other:?}"),
        }
    }
}

fn send(thread: &str, id: &str) -> ClientMsg {
    ClientMsg::Send {
        thread: thread.into(),
        msg_id: id.into(),
        text: format!("text of {id}"),
        attachments: vec![],
        reply_to: None,
    }
}

async fn op(c: &Client, room: &str, op_id: &str, op: RoomOp) {
    let r = c
        .request(ClientMsg::Op {
            room: room.into(),
            op_id: op_id.into(),
            op,
        })
        .await
        .expect("op");
    assert!(matches!(r, Reply::Ack { .. }), "{r:?}");
}

/// The texts of the next `n` `msg` frames of `thread`.
async fn texts(c: &mut Client, thread: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < n && Instant::now() < deadline {
        if let Some(ServerFrame::Msg { thread: t, msg }) =
            c.next_push(Duration::from_millis(200)).await
            && t == thread
        {
            out.push(msg.text);
        }
    }
    out
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
    op(&coach, &room, "i1", RoomOp::Invite { user: "a1".into() }).await;
    op(&coach, &room, "i2", RoomOp::Invite { user: "a2".into() }).await;

    // One thread, whichever node asks; it starts on n2 (opened there first).
    let t = room_thread(&a1, &room).await;
    assert_eq!(t, room_thread_id(&room));
    assert_eq!(room_thread(&a2, &room).await, t);
    assert_eq!(room_thread(&coach, &room).await, t);
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
        assert_eq!(texts(c, &t, 3).await, want, "{who}");
    }

    // Removed on n1 (the room's node): a2 on n3 can no longer write.
    op(&coach, &room, "rm", RoomOp::Remove { user: "a2".into() }).await;
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
