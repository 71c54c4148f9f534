//! Accounts on a PostgreSQL store (the key-value port's conditional
//! batches through REST): register, sign in, refresh with rotation, reuse
//! of an old refresh token revoking the session, and the account still
//! there for a new node with an empty data dir on the same database.

mod pg_common;

use chalktalk::config::{Config, StoreConfig};
use chalktalk_adapters::postgres::test_server::TestServer;
use pg_common::http;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_refresh_on_postgres() {
    let pg = TestServer::start();
    let store = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.store = StoreConfig::Postgres { url: store };
    let node = chalktalk::server::start(&config).await.unwrap();
    let addr = node.addr;
    let creds = json!({"email": "Coach@Example.com", "password": "a long enough passphrase", "device": "laptop"});

    let (status, _) = http(
        addr,
        "POST",
        "/api/v1/auth/register",
        Some(&json!({"email": "coach@example.com", "password": "a long enough passphrase", "role": "coach"})),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let (status, tokens) = http(addr, "POST", "/api/v1/auth/signin", Some(&creds), None).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, me) = http(addr, "GET", "/api/v1/me", None, Some(&access)).await;
    assert_eq!(status, 200, "{me}");

    let refresh = |token: &str| json!({ "refresh_token": token });
    let (status, rotated) = http(
        addr,
        "POST",
        "/api/v1/auth/refresh",
        Some(&refresh(&first_refresh)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let second_refresh = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second_refresh, first_refresh);
    // The old token again: a copy; the whole session is revoked.
    let (status, _) = http(
        addr,
        "POST",
        "/api/v1/auth/refresh",
        Some(&refresh(&first_refresh)),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = http(
        addr,
        "POST",
        "/api/v1/auth/refresh",
        Some(&refresh(&second_refresh)),
        None,
    )
    .await;
    assert_eq!(status, 401, "the session is gone");
    node.shutdown().await;

    // A new node, nothing on its disk: the account is in PostgreSQL.
    let empty = tempfile::tempdir().unwrap();
    let mut config2 = Config::for_tests(empty.path());
    config2.store = config.store.clone();
    let node = chalktalk::server::start(&config2).await.unwrap();
    let (status, tokens) = http(node.addr, "POST", "/api/v1/auth/signin", Some(&creds), None).await;
    assert_eq!(status, 200, "{tokens}");
    let wrong = json!({"email": "coach@example.com", "password": "not the passphrase at all"});
    let (status, _) = http(node.addr, "POST", "/api/v1/auth/signin", Some(&wrong), None).await;
    assert_eq!(status, 401);
    node.shutdown().await;
}
