//! The lists of my threads and rooms (`GET /api/v1/me/threads`,
//! `/me/rooms`) with unread counts, the last message and last activity.

use chalktalk_protocol::RoomOp;

use crate::chat::edits::edit;
use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_threads_and_rooms_are_listed_with_unread_counts_and_last_activity() {
    let s = TestServer::start().await;
    let (coach, athlete, t) = direct(&s).await;
    let g = create_thread(&coach, ThreadKind::Group, &["athlete", "a2"], Some("Squad")).await;
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        ack(&coach, send(&t, &format!("m{i}"), text)).await;
    }
    ack(&coach, edit(&t, "e1", 3, "three!")).await;
    ack(&coach, send(&g.id, "g1", "hi squad")).await;
    let api = s.api();
    let tok = s.token("athlete", Role::Athlete);

    let r = api.get("/api/v1/me/threads", Some(&tok)).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let threads = body["threads"].as_array().expect("threads");
    assert_eq!(threads.len(), 2);
    // Newest first: the group message came last.
    assert_eq!(threads[0]["thread"]["id"], g.id.as_str());
    assert_eq!(threads[0]["thread"]["title"], "Squad");
    assert_eq!(threads[0]["unread"], 1);
    assert_eq!(threads[0]["last"]["text"], "hi squad");
    assert_eq!(threads[1]["thread"]["id"], t.as_str());
    assert_eq!(threads[1]["thread"]["head"], 4);
    assert_eq!(threads[1]["unread"], 3, "the edit is not counted");
    assert_eq!(threads[1]["last"]["edit"]["k"], "edit");
    assert_eq!(threads[1]["read"], 0);

    // Reading moves the count.
    ack_done(&athlete, mark(&t, None, Some(2))).await;
    let body = api.get("/api/v1/me/threads", Some(&tok)).await.json();
    let direct = &body["threads"].as_array().expect("threads")[1];
    assert_eq!(
        (direct["read"].clone(), direct["unread"].clone()),
        (2.into(), 1.into())
    );
    // Someone else's threads are not mine; no token, no list.
    let other = api
        .get(
            "/api/v1/me/threads",
            Some(&s.token("nobody", Role::Athlete)),
        )
        .await
        .json();
    assert_eq!(other["threads"].as_array().map(Vec::len), Some(0));
    assert_eq!(api.get("/api/v1/me/threads", None).await.status, 401);

    // Rooms: the owner and an invited member see it, newest activity first.
    let r1 = common::create_room(&coach, "v-1").await;
    let r2 = common::create_room(&coach, "v-2").await;
    ack(
        &coach,
        common::op(
            &r2,
            "i1",
            RoomOp::Invite {
                user: "athlete".into(),
            },
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    ack(&coach, common::add(&r1, "l1", common::line("l-1", 10))).await;
    let body = api
        .get("/api/v1/me/rooms", Some(&s.token("coach", Role::Coach)))
        .await
        .json();
    let rooms = body["rooms"].as_array().expect("rooms");
    let ids: Vec<&str> = rooms.iter().filter_map(|r| r["room"].as_str()).collect();
    assert_eq!(ids, vec![r1.as_str(), r2.as_str()]);
    assert_eq!(rooms[0]["video_id"], "v-1");
    assert_eq!(rooms[0]["head"], 1);
    assert!(rooms[0]["last_activity_ms"].as_u64() >= rooms[1]["last_activity_ms"].as_u64());
    let body = api.get("/api/v1/me/rooms", Some(&tok)).await.json();
    let ids: Vec<&str> = body["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|r| r["room"].as_str())
        .collect();
    assert_eq!(ids, vec![r2.as_str()]);
}

async fn ack_done(c: &Client, m: ClientMsg) {
    match c.request(m).await.expect("request") {
        Reply::Done => {}
        other => panic!("expected done, got {other:?}"),
    }
}
