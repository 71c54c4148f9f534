//! Sessions: refresh tokens rotate on every use, a reused one revokes its
//! whole family; devices are listed and revoked; a revoked session's access
//! token and open WebSockets die at once; sign-out.

use std::time::Duration;

use serde_json::json;

use crate::common::TestServer;
use crate::common::api::{s, ws, ws_refused};

async fn refresh(n: &TestServer, token: &str) -> crate::common::client::Resp {
    n.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": token }),
    )
    .await
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let n = TestServer::start().await;
    let t0 = n.athlete("rot@example.com", "phone").await;
    let r1 = refresh(&n, &s(&t0, "refresh_token")).await;
    assert_eq!(r1.status, 200, "{}", r1.text());
    let t1 = r1.json();
    assert_ne!(t1["refresh_token"], t0["refresh_token"], "rotated");
    assert_eq!(t1["session"], t0["session"], "same session");
    let r2 = refresh(&n, &s(&t1, "refresh_token")).await;
    assert_eq!(r2.status, 200);
    let t2 = r2.json();
    let access = s(&t2, "access_token");
    assert_eq!(n.get("/api/v1/me", Some(&access)).await.status, 200);
    let mut sock = ws(&n.url, &access, "phone").await.expect("hello");

    // A thief replays the first refresh token: refused, and the session of
    // the whole family is revoked (the legitimate holder too).
    let stolen = refresh(&n, &s(&t0, "refresh_token")).await;
    assert_eq!(stolen.status, 401);
    assert_eq!(stolen.json()["error"], "refresh_reused");
    let latest = refresh(&n, &s(&t2, "refresh_token")).await;
    assert_eq!(
        latest.status, 401,
        "the newest token of the family is dead too"
    );
    assert_eq!(n.get("/api/v1/me", Some(&access)).await.status, 401);
    let closed = sock.closed(Duration::from_secs(5)).await;
    assert_eq!(
        closed.map(|c| c.0),
        Some(Some(4001)),
        "socket closed as revoked"
    );
    ws_refused(&n.url, &access).await;

    // Garbage and empty refresh tokens.
    assert_eq!(refresh(&n, "nope").await.status, 401);
    let r = n.post("/api/v1/auth/refresh", None, json!({})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["fields"]["refresh_token"], "required");
}

#[tokio::test]
async fn devices_are_listed_and_revoking_one_closes_its_sockets() {
    let n = TestServer::start().await;
    let phone = n.athlete("dev@example.com", "phone").await;
    let laptop = n
        .sign_in("dev@example.com", crate::common::api::PASSWORD, "laptop")
        .await
        .json();
    let (pa, la) = (s(&phone, "access_token"), s(&laptop, "access_token"));

    let list = n.get("/api/v1/sessions", Some(&pa)).await;
    assert_eq!(list.status, 200);
    let list = list.json()["sessions"].as_array().cloned().expect("array");
    assert_eq!(list.len(), 2, "{list:?}");
    let mine = list.iter().find(|x| x["current"] == true).expect("current");
    assert_eq!(mine["sid"], phone["session"]);
    assert_eq!(mine["device"], "phone");
    assert!(
        list.iter()
            .any(|x| x["device"] == "laptop" && x["current"] == false)
    );

    let mut lap_sock = ws(&n.url, &la, "laptop").await.expect("hello");
    let mut phone_sock = ws(&n.url, &pa, "phone").await.expect("hello");

    // The phone signs the laptop out.
    let r = n
        .delete(
            &format!("/api/v1/sessions/{}", s(&laptop, "session")),
            Some(&pa),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let closed = lap_sock.closed(Duration::from_secs(5)).await;
    assert_eq!(closed.map(|c| c.0), Some(Some(4001)));
    assert_eq!(n.get("/api/v1/me", Some(&la)).await.status, 401);
    assert_eq!(refresh(&n, &s(&laptop, "refresh_token")).await.status, 401);
    // Every REST route checks the revocation list, uploads included.
    let upload = json!({"kind": "video", "filename": "a.mp4", "size": 1000});
    let r = n.post("/api/v1/uploads", Some(&la), upload.clone()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = n.post("/api/v1/uploads", Some(&pa), upload).await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The phone is untouched.
    assert_eq!(n.get("/api/v1/me", Some(&pa)).await.status, 200);
    assert!(
        phone_sock
            .closed(Duration::from_millis(300))
            .await
            .is_none()
    );

    // Someone else's session id, or a made-up one: 404 either way.
    let other = n.athlete("other@example.com", "tablet").await;
    let r = n
        .delete(
            &format!("/api/v1/sessions/{}", s(&phone, "session")),
            Some(&s(&other, "access_token")),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = n.delete("/api/v1/sessions/made-up", Some(&pa)).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        n.get("/api/v1/me", Some(&pa)).await.status,
        200,
        "not revoked by others"
    );

    // Sign-out of the phone itself.
    let r = n
        .req("POST", "/api/v1/auth/logout", Some(&pa), &[], None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(n.get("/api/v1/me", Some(&pa)).await.status, 401);
    let closed = phone_sock.closed(Duration::from_secs(5)).await;
    assert_eq!(closed.map(|c| c.0), Some(Some(4001)));
}

#[tokio::test]
async fn revocations_survive_a_restart_of_the_node() {
    let mut n = TestServer::start().await;
    let t = n.athlete("persist@example.com", "phone").await;
    let access = s(&t, "access_token");
    let r = n
        .req("POST", "/api/v1/auth/logout", Some(&access), &[], None)
        .await;
    assert_eq!(r.status, 204);
    n.restart().await;
    assert_eq!(n.get("/api/v1/me", Some(&access)).await.status, 401);
    ws_refused(&n.url, &access).await;
    assert_eq!(refresh(&n, &s(&t, "refresh_token")).await.status, 401);
    // The account itself survived.
    let again = n
        .sign_in("persist@example.com", crate::common::api::PASSWORD, "phone")
        .await;
    assert_eq!(again.status, 200);
}
