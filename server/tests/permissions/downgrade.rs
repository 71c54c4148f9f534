//! A plan change applies at once: a WebSocket outlives its access token
//! (checked at `hello` only), so the guard decides with the account's
//! current plan, not the hello token's; REST routes too, not after the
//! token's remaining lifetime (a demoted admin loses admin tools at once).

use chalktalk_protocol::{ClientMsg, Reply, ThreadKind};
use chalktalk_services::accounts::Plan;
use serde_json::json;

use super::world::World;
use crate::{send_msg, ws};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downgrade_applies_to_an_open_websocket() {
    let mut w = World::start_empty().await;
    w.add("admin", Plan::Admin).await;
    let coach = w.add("coach", Plan::CoachPremium).await;
    let athlete = w.add("athlete", Plan::AthletePaid).await;
    w.add("seller", Plan::CoachPremium).await;
    w.relate("coach", "athlete").await;
    w.video("v-bought", "seller").await;
    w.app
        .perms
        .facts
        .grant(&athlete, "v-bought", &w.id("admin"))
        .await
        .expect("grant");

    // Paid: a direct thread with their coach, a purchased video.
    let a = w.ws("athlete").await;
    let direct = ClientMsg::CreateThread {
        kind: ThreadKind::Direct,
        members: vec![coach.clone()],
        title: None,
    };
    let Reply::ThreadCreated { thread } = a.request(direct.clone()).await.expect("thread") else {
        panic!("thread_created expected")
    };
    assert_eq!(ws(&a, send_msg(&thread.id, "m1")).await, "ok");
    let link = ClientMsg::MediaLink {
        asset: "v-bought".into(),
    };
    assert_eq!(ws(&a, link.clone()).await, "ok");

    // The admin downgrades the athlete to free; the connection stays open
    // and its hello token still says paid.
    let r = w
        .node
        .req(
            "PUT",
            &format!("/api/v1/admin/users/{athlete}/plan"),
            Some(&w.token("admin")),
            &[],
            Some(
                json!({"role": "athlete", "tier": "free"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    assert_eq!(
        ws(&a, send_msg(&thread.id, "m2")).await,
        "forbidden",
        "free athletes have no messaging"
    );
    assert_eq!(ws(&a, direct).await, "forbidden");
    assert_eq!(ws(&a, link.clone()).await, "not_found", "own videos only");
    // The HTTP fallback with the same (still valid, still "paid") token.
    let path = format!("/api/v1/threads/{}/messages", thread.id);
    let http = w
        .node
        .post(
            &path,
            Some(&w.token("athlete")),
            json!({"msg_id": "h2", "text": "x"}),
        )
        .await;
    assert_eq!(http.status, 403, "{}", String::from_utf8_lossy(&http.body));
    let seen = w
        .node
        .get("/api/v1/videos/v-bought", Some(&w.token("athlete")))
        .await;
    assert_eq!(seen.status, 404, "the purchased video is hidden at once");

    // Upgraded again: allowed again, on the same connection.
    let r = w
        .node
        .req(
            "PUT",
            &format!("/api/v1/admin/users/{athlete}/plan"),
            Some(&w.token("admin")),
            &[],
            Some(
                json!({"role": "athlete", "tier": "paid"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(ws(&a, send_msg(&thread.id, "m3")).await, "ok");
    assert_eq!(ws(&a, link).await, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admin_loses_admin_tools_at_once() {
    let mut w = World::start_empty().await;
    let boss = w.add("boss", Plan::Admin).await;
    w.add("admin2", Plan::Admin).await;
    let athlete = w.add("athlete", Plan::AthleteFree).await;
    w.video("v-1", "athlete").await;
    let open = w.ws("boss").await;
    let link = ClientMsg::MediaLink {
        asset: "v-1".into(),
    };
    assert_eq!(
        ws(&open, link.clone()).await,
        "ok",
        "admins see every video"
    );
    let plan = |u: &str| format!("/api/v1/admin/users/{u}/plan");
    let body = |tier: &str| {
        Some(
            json!({"role": "athlete", "tier": tier})
                .to_string()
                .into_bytes(),
        )
    };
    // While an admin, boss upgrades the athlete.
    let r = w
        .node
        .req(
            "PUT",
            &plan(&athlete),
            Some(&w.token("boss")),
            &[],
            body("paid"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // admin2 demotes boss; boss's token still says admin.
    let r = w
        .node
        .req(
            "PUT",
            &plan(&boss),
            Some(&w.token("admin2")),
            &[],
            body("free"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = w
        .node
        .req(
            "PUT",
            &plan(&boss),
            Some(&w.token("boss")),
            &[],
            Some(json!({"role": "admin"}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, 401, "re-promoting oneself with the old token");
    assert_eq!(r.json()["error"], "unauthorized");
    let r = w
        .node
        .post(
            "/api/v1/admin/grants",
            Some(&w.token("boss")),
            json!({"athlete": athlete, "video": "v-1"}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        ws(&open, link).await,
        "not_found",
        "the open WebSocket of the demoted admin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_ends_the_users_sessions() {
    let mut w = World::start_empty().await;
    w.add("admin", Plan::Admin).await;
    // A real sign-in (a session with a refresh token).
    let t = w.node.athlete("later.coach@perm.test", "phone").await;
    let access = t["access_token"].as_str().expect("access").to_string();
    let me = w.node.get("/api/v1/me", Some(&access)).await;
    assert_eq!(me.status, 200);
    let id = me.json()["id"].as_str().expect("id").to_string();
    // A plan change within the role keeps the session...
    let put = |body: serde_json::Value| {
        let (n, admin, id) = (&w.node, w.token("admin"), id.clone());
        async move {
            n.req(
                "PUT",
                &format!("/api/v1/admin/users/{id}/plan"),
                Some(&admin),
                &[],
                Some(body.to_string().into_bytes()),
            )
            .await
            .status
        }
    };
    assert_eq!(put(json!({"role": "athlete", "tier": "paid"})).await, 200);
    assert_eq!(
        w.node.get("/api/v1/videos", Some(&access)).await.status,
        200
    );
    // ...a new role ends it: the coach must sign in (and enroll TOTP).
    assert_eq!(
        put(json!({"role": "coach", "subscription": "active"})).await,
        200
    );
    assert_eq!(w.node.get("/api/v1/me", Some(&access)).await.status, 401);
    assert_eq!(
        w.node.get("/api/v1/videos", Some(&access)).await.status,
        401
    );
    let r = w
        .node
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": t["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
}
