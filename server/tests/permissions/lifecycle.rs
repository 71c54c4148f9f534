//! Relationship lifecycle over REST (invite → accept → end removes access
//! at once, re-invite, decline), the HTTP send seen live over WebSocket,
//! and dev tokens held to the same rules.

use chalktalk_protocol::{ClientMsg, Reply, Role, ServerFrame, ThreadKind};
use chalktalk_services::accounts::Plan;
use serde_json::json;

use super::world::World;
use crate::common::WAIT;
use crate::{send_msg, ws};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_accept_end_gives_and_removes_access_immediately() {
    let mut w = World::start_empty().await;
    let coach = w.add("coach", Plan::CoachPremium).await;
    let athlete = w.add("athlete", Plan::AthletePaid).await;
    w.add("other", Plan::CoachPremium).await;
    w.video("v-a", "athlete").await;
    let (n, ct, at) = (&w.node, w.token("coach"), w.token("athlete"));
    let c = w.ws("coach").await;
    let a = w.ws("athlete").await;
    let video = "/api/v1/videos/v-a";
    let direct = ClientMsg::CreateThread {
        kind: ThreadKind::Direct,
        members: vec![coach.clone()],
        title: None,
    };

    // No relationship: no access, no messaging.
    assert_eq!(n.get(video, Some(&ct)).await.status, 404);
    assert_eq!(ws(&a, direct.clone()).await, "forbidden");
    // Invited is not active.
    let r = n
        .post(
            "/api/v1/relationships",
            Some(&ct),
            json!({"athlete": athlete}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["state"], "invited");
    let again = n
        .post(
            "/api/v1/relationships",
            Some(&ct),
            json!({"athlete": athlete}),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(n.get(video, Some(&ct)).await.status, 404);
    let mine = n.get("/api/v1/relationships", Some(&at)).await.json();
    assert_eq!(mine["relationships"][0]["coach"], coach.as_str());
    // The coach cannot accept for the athlete; a third party sees nothing.
    let accept = format!("/api/v1/relationships/{coach}/{athlete}/accept");
    assert_eq!(n.post(&accept, Some(&ct), json!({})).await.status, 403);
    assert_eq!(
        n.post(&accept, Some(&w.token("other")), json!({}))
            .await
            .status,
        404
    );
    let r = n.post(&accept, Some(&at), json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["state"], "active");

    // Active: the coach sees the video and reviews it; they message.
    assert_eq!(n.get(video, Some(&ct)).await.status, 200);
    let Reply::RoomCreated { room } = c
        .request(ClientMsg::CreateRoom {
            video_id: "v-a".into(),
            aspect: None,
            fps: None,
        })
        .await
        .expect("room")
    else {
        panic!()
    };
    let Reply::ThreadCreated { thread } = a.request(direct.clone()).await.expect("thread") else {
        panic!()
    };
    assert_eq!(ws(&a, send_msg(&thread.id, "m1")).await, "ok");

    // HTTP send reaches a WebSocket viewer live, through the thread actor.
    let mut viewer = w.ws("athlete").await;
    let open = ClientMsg::OpenThread {
        thread: thread.id.clone(),
        since: None,
    };
    assert_eq!(ws(&viewer, open).await, "ok");
    let path = format!("/api/v1/threads/{}/messages", thread.id);
    let r = n
        .post(
            &path,
            Some(&ct),
            json!({"msg_id": "h1", "text": "over http"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        (r.json()["seq"].as_u64(), r.json()["dup"].as_bool()),
        (Some(2), Some(false))
    );
    let live = viewer
        .wait_for(WAIT, |f| match f {
            ServerFrame::Msg { msg, .. } if msg.id == "h1" => Some(msg.text.clone()),
            _ => None,
        })
        .await;
    assert_eq!(live.as_deref(), Some("over http"));
    let dup = n
        .post(
            &path,
            Some(&ct),
            json!({"msg_id": "h1", "text": "over http"}),
        )
        .await;
    assert_eq!((dup.status, dup.json()["seq"].as_u64()), (200, Some(2)));
    let h = n.get(&format!("{path}?limit=1"), Some(&at)).await.json();
    assert_eq!(
        (h["messages"][0]["id"].as_str(), h["more"].as_bool()),
        (Some("h1"), Some(true))
    );

    // The athlete ends it: access goes at once, on every path.
    let end = format!("/api/v1/relationships/{coach}/{athlete}/end");
    assert_eq!(
        n.post(&end, Some(&at), json!({})).await.json()["state"],
        "ended"
    );
    assert_eq!(n.get(video, Some(&ct)).await.status, 404);
    assert_eq!(ws(&a, send_msg(&thread.id, "m3")).await, "forbidden");
    let r = n
        .post(&path, Some(&at), json!({"msg_id": "m4", "text": "x"}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        ws(&c, ClientMsg::JoinRoom { room, since: None }).await,
        "forbidden"
    );
    let link = ws(
        &c,
        ClientMsg::MediaLink {
            asset: "v-a".into(),
        },
    )
    .await;
    assert_eq!(link, "not_found");
    assert_eq!(n.post(&end, Some(&ct), json!({})).await.status, 409);

    // Re-invite, decline: still no access; a declined one cannot be accepted.
    let r = n
        .post(
            "/api/v1/relationships",
            Some(&ct),
            json!({"athlete": athlete}),
        )
        .await;
    assert_eq!(r.status, 201);
    let decline = format!("/api/v1/relationships/{coach}/{athlete}/decline");
    assert_eq!(
        n.post(&decline, Some(&at), json!({})).await.json()["state"],
        "declined"
    );
    assert_eq!(n.post(&accept, Some(&at), json!({})).await.status, 409);
    assert_eq!(n.get(video, Some(&ct)).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tokens_follow_the_matrix_too() {
    let w = World::start_empty().await;
    // Dev tokens carry no plan: their role's most capable row (an athlete
    // is AthletePaid), still bound by relationships.
    let a1 = crate::common::connect(&w.node.url, w.node.token("a1", Role::Athlete), "d").await;
    let m = ClientMsg::CreateThread {
        kind: ThreadKind::Direct,
        members: vec!["a2".into()],
        title: None,
    };
    assert_eq!(ws(&a1, m).await, "forbidden", "athlete to athlete");
    let m = ClientMsg::CreateThread {
        kind: ThreadKind::Direct,
        members: vec!["c1".into()],
        title: None,
    };
    assert_eq!(ws(&a1, m.clone()).await, "forbidden", "no relationship yet");
    let f = &w.app.perms.facts;
    f.invite("c1", "a1").await.expect("invite");
    f.respond("c1", "a1", true).await.expect("accept");
    assert_eq!(ws(&a1, m).await, "ok", "their coach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_docs_page_are_served() {
    let w = World::start_empty().await;
    let r = w
        .node
        .req("GET", "/api/openapi.json", None, &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for p in ["/api/v1/me", "/api/v1/videos", "/api/v1/analytics/me"] {
        assert!(doc["paths"][p].is_object(), "{p} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let page = w.node.req("GET", "/api/docs", None, &[], None).await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains("/api/openapi.json") && !html.contains("https://"),
        "self-contained"
    );
}
