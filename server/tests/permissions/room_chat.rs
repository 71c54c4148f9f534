//! The chat thread of a review room (kind `room`) end to end: a premium
//! coach with a free and a paid athlete in one room all write and read it
//! live (the free athlete, who may message nobody elsewhere, included); a
//! non-member is refused with `not_member`; a member removed from the room
//! can no longer write or read it; a member invited later reads its
//! history and writes.

use std::time::{Duration, Instant};

use chalktalk_protocol::client::{Client, ClientError};
use chalktalk_protocol::{
    ClientMsg, ErrorCode, Reply, RoomOp, ServerFrame, ThreadKind, room_thread_id,
};
use serde_json::json;

use super::world::World;
use crate::common::{WAIT, ack, chat_send, err_code, msg_texts, op, room_thread};

async fn open(c: &Client, thread: &str, since: Option<u64>) {
    let r = c
        .request(ClientMsg::OpenThread {
            thread: thread.into(),
            since,
        })
        .await
        .expect("open_thread");
    assert!(matches!(r, Reply::ThreadOpened { .. }), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_thread_follows_the_room_members() {
    let w = World::start().await;
    w.facts().await;
    // cp: premium coach of ap (paid), af (free) and ar (paid); sx a stranger.
    let coach = w.ws("cp").await;
    let mut free = w.ws("af").await;
    let mut paid = w.ws("ap").await;
    let Reply::RoomCreated { room } = coach
        .request(ClientMsg::CreateRoom {
            video_id: "review-room-chat".into(),
            aspect: None,
            fps: None,
        })
        .await
        .expect("create_room")
    else {
        panic!("room_created")
    };
    ack(&coach, op(&room, "i1", RoomOp::Invite { user: w.id("af") })).await;
    ack(&coach, op(&room, "i2", RoomOp::Invite { user: w.id("ap") })).await;

    let t = room_thread(&coach, &room).await;
    assert_eq!(t.id, room_thread_id(&room));
    assert_eq!(t.kind, ThreadKind::Room);
    assert_eq!(t.room.as_deref(), Some(room.as_str()));
    assert_eq!(room_thread(&free, &room).await.id, t.id);
    assert_eq!(room_thread(&paid, &room).await.id, t.id);
    let mut coach = coach;
    for c in [&coach, &free, &paid] {
        open(c, &t.id, None).await;
    }

    // Everyone writes; everyone sees the three live, in the same order.
    for (c, id, text) in [
        (&coach, "m-c", "from the coach"),
        (&free, "m-f", "from the free athlete"),
        (&paid, "m-p", "from the paid athlete"),
    ] {
        let r = c.request(chat_send(&t.id, id, text)).await.expect(text);
        assert!(matches!(r, Reply::Ack { .. }), "{text}: {r:?}");
    }
    let want = [
        "from the coach",
        "from the free athlete",
        "from the paid athlete",
    ];
    for c in [&mut coach, &mut free, &mut paid] {
        assert_eq!(msg_texts(c, &t.id, 3).await, want);
    }
    // Over HTTP too, and listed with the room's id.
    let path = format!("/api/v1/threads/{}/messages", t.id);
    let r = w
        .node
        .post(
            &path,
            Some(&w.token("af")),
            json!({"msg_id": "h-f", "text": "via http"}),
        )
        .await;
    assert_eq!(r.status, 201, "free athlete's HTTP send: {:?}", r.json());
    let listed = w.node.get("/api/v1/me/threads", Some(&w.token("af"))).await;
    let rows = listed.json()["threads"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let row = rows
        .iter()
        .find(|r| r["thread"]["id"] == t.id.as_str())
        .expect("the room's thread is listed");
    assert_eq!(row["thread"]["room"], room.as_str());
    assert_eq!(row["thread"]["kind"], "room");
    // Elsewhere the free athlete still messages nobody.
    let direct = ClientMsg::CreateThread {
        kind: ThreadKind::Direct,
        members: vec![w.id("cp")],
        title: None,
    };
    assert_eq!(err_code(free.request(direct).await), ErrorCode::Forbidden);
    // Nobody creates a room thread by hand.
    let by_hand = ClientMsg::CreateThread {
        kind: ThreadKind::Room,
        members: vec![w.id("af")],
        title: None,
    };
    assert_eq!(err_code(coach.request(by_hand).await), ErrorCode::Invalid);

    // A non-member.
    let stranger = w.ws("sx").await;
    let ask = ClientMsg::RoomThread { room: room.clone() };
    assert_eq!(err_code(stranger.request(ask).await), ErrorCode::NotMember);
    assert_eq!(
        err_code(stranger.request(chat_send(&t.id, "x", "hi")).await),
        ErrorCode::NotMember
    );
    let peek = ClientMsg::OpenThread {
        thread: t.id.clone(),
        since: None,
    };
    assert_eq!(err_code(stranger.request(peek).await), ErrorCode::NotMember);
    let missing = ClientMsg::RoomThread {
        room: "r-nothing-here".into(),
    };
    assert_eq!(
        err_code(stranger.request(missing).await),
        ErrorCode::NotFound
    );

    // Removed from the room: no longer writes (nor reads) its thread.
    ack(&coach, op(&room, "rm", RoomOp::Remove { user: w.id("ap") })).await;
    let deadline = Instant::now() + WAIT;
    loop {
        match paid
            .request(chat_send(&t.id, "after-rm", "still here?"))
            .await
        {
            Err(ClientError::Server {
                code: ErrorCode::NotMember,
                ..
            }) => break,
            Ok(_) if Instant::now() < deadline => {
                // Accepted before the removal reached the thread (the
                // membership is written a moment after the ack): retry.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("send after removal: {other:?}"),
        }
    }
    let ask = ClientMsg::RoomThread { room: room.clone() };
    assert_eq!(err_code(paid.request(ask).await), ErrorCode::NotMember);
    let hist = ClientMsg::History {
        thread: t.id.clone(),
        before: None,
        limit: 10,
    };
    assert_eq!(err_code(paid.request(hist).await), ErrorCode::NotMember);

    // Invited later: reads the history and writes.
    ack(&coach, op(&room, "i3", RoomOp::Invite { user: w.id("ar") })).await;
    let mut late = w.ws("ar").await;
    let lt = room_thread(&late, &room).await;
    assert_eq!(lt.id, t.id);
    assert!(lt.members.contains(&w.id("ar")), "{lt:?}");
    assert!(!lt.members.contains(&w.id("ap")), "{lt:?}");
    open(&late, &t.id, Some(0)).await;
    let seen = msg_texts(&mut late, &t.id, 4).await;
    assert_eq!(&seen[..3], &want);
    assert_eq!(seen[3], "via http");
    let r = late
        .request(chat_send(&t.id, "m-late", "joined late"))
        .await
        .expect("late send");
    assert!(matches!(r, Reply::Ack { .. }), "{r:?}");
    let got = coach
        .wait_for(WAIT, |f| match f {
            ServerFrame::Msg { msg, .. } if msg.text == "joined late" => Some(()),
            _ => None,
        })
        .await;
    assert!(got.is_some(), "the coach sees the late member's message");
}
