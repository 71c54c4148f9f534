//! Accounts on a PostgreSQL store (the key-value port's conditional
//! batches through REST): register, sign in, refresh with rotation, reuse
//! of an old refresh token revoking the session, and the account still
//! there for a new node with an empty data dir on the same database.

mod common;

use common::{TestServer, postgres};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_refresh_on_postgres() {
    let (_pg, store) = postgres::start().await;
    let mut node = TestServer::builder().postgres(&store).start().await;
    let creds = json!({"email": "Coach@Example.com", "password": "a long enough passphrase", "device": "laptop"});

    let r = node
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "coach@example.com", "password": "a long enough passphrase", "role": "coach"}),
        )
        .await;
    assert_eq!(r.status, 202);
    let r = node.post("/api/v1/auth/signin", None, creds.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tokens = r.json();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let r = node.get("/api/v1/me", Some(&access)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let refresh = |token: &str| json!({ "refresh_token": token });
    let r = node
        .post("/api/v1/auth/refresh", None, refresh(&first_refresh))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second_refresh = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second_refresh, first_refresh);
    // The old token again: a copy; the whole session is revoked.
    let r = node
        .post("/api/v1/auth/refresh", None, refresh(&first_refresh))
        .await;
    assert_eq!(r.status, 401);
    let r = node
        .post("/api/v1/auth/refresh", None, refresh(&second_refresh))
        .await;
    assert_eq!(r.status, 401, "the session is gone");
    node.stop().await;

    // A new node, nothing on its disk: the account is in PostgreSQL.
    let mut node = TestServer::builder().postgres(&store).start().await;
    let r = node.post("/api/v1/auth/signin", None, creds).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let wrong = json!({"email": "coach@example.com", "password": "not the passphrase at all"});
    let r = node.post("/api/v1/auth/signin", None, wrong).await;
    assert_eq!(r.status, 401);
    node.stop().await;
}
