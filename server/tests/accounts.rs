//! Accounts end to end against a real node on 127.0.0.1: registration and
//! sign-in without account enumeration, password and email rules, request
//! body limits (this file); rotating refresh tokens, reuse detection,
//! sessions and revocation closing WebSockets (tests/accounts/sessions.rs);
//! TOTP and recovery codes, brute-force locks (tests/accounts/mfa.rs);
//! forged, expired, `none`, HS/RS-confused and wrong-audience tokens, and an
//! external identity provider verified through a JWKS served by the test
//! (tests/accounts/tokens.rs).

mod common;
/// The suite's other files, in tests/accounts/ (TOTP and key helpers in helpers.rs).
mod accounts {
    pub mod helpers;
    pub mod jwks_stall;
    pub mod mfa;
    pub mod sessions;
    pub mod tokens;
}

use common::TestServer;
use common::api::{PASSWORD, s};
use serde_json::{Value, json};

#[tokio::test]
async fn register_and_sign_in_do_not_reveal_which_emails_exist() {
    let n = TestServer::start().await;
    let first = n.register("ana@example.com", "athlete").await;
    assert_eq!(first.status, 202);
    // Registering a taken email answers exactly like a free one.
    let again = n.register("ana@example.com", "athlete").await;
    assert_eq!(again.status, 202);
    assert_eq!(first.body, again.body);

    // Wrong password of a real account and any password of an unknown one:
    // same status, same body.
    let wrong = n
        .sign_in("ana@example.com", "not the password at all", "phone")
        .await;
    let unknown = n
        .sign_in("nobody@example.com", "not the password at all", "phone")
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.json()["error"], "unauthorized");

    // The right password: tokens, and the account behind them.
    let ok = n.sign_in("ana@example.com", PASSWORD, "phone").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let t = ok.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["mfa"], "ok");
    assert!(t["expires_in"].as_u64().unwrap() <= 15 * 60);
    let me = n.get("/api/v1/me", Some(&s(&t, "access_token"))).await;
    assert_eq!(me.status, 200);
    let me = me.json();
    assert_eq!(me["email"], "ana@example.com");
    assert_eq!(me["role"], "athlete");
    assert_eq!(me["plan"], "athlete_free");
    assert_eq!(me["session"], t["session"]);
}

#[tokio::test]
async fn emails_are_normalised_and_passwords_checked() {
    let n = TestServer::start().await;
    assert_eq!(
        n.register("  Ben.Coach@Example.COM ", "athlete")
            .await
            .status,
        202
    );
    let r = n.sign_in("ben.coach@example.com", PASSWORD, "laptop").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let me = n
        .get("/api/v1/me", Some(&s(&r.json(), "access_token")))
        .await
        .json();
    assert_eq!(me["email"], "ben.coach@example.com");

    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({"email": "x@example.com", "password": "short"}),
            &["password"],
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            &["email"],
        ),
        (json!({"password": PASSWORD}), &["email"]),
        (json!({"email": "x@example.com"}), &["password"]),
        (
            json!({"email": "x@example.com", "password": PASSWORD, "role": "admin"}),
            &["role"],
        ),
        (json!({}), &["email", "password"]),
    ];
    for (body, fields) in cases {
        let r = n.post("/api/v1/auth/register", None, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"], "validation_failed", "{body}");
        for f in fields {
            assert!(v["fields"][f].is_string(), "{body}: no field {f} in {v}");
        }
    }
    // Nobody can register as an admin: nothing was created.
    let r = n.sign_in("x@example.com", PASSWORD, "laptop").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_cleanly() {
    let n = TestServer::start().await;
    let r = n
        .req(
            "POST",
            "/api/v1/auth/signin",
            None,
            &[],
            Some(b"{\"email\": ".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "bad_request");

    let r = n
        .req(
            "POST",
            "/api/v1/auth/signin",
            None,
            &[],
            Some(b"[1,2,3]".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    let big = json!({"email": "a@example.com", "password": "p".repeat(70 * 1024)});
    let r = n.post("/api/v1/auth/register", None, big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"], "too_large");

    // A 4 KiB password is refused by the rules, not hashed.
    let long = json!({"email": "a@example.com", "password": "p".repeat(4096)});
    let r = n.post("/api/v1/auth/register", None, long).await;
    assert_eq!(r.status, 422, "{}", r.text());

    // The node is still fine.
    let t = n.athlete("fine@example.com", "phone").await;
    assert_eq!(
        n.get("/api/v1/me", Some(&s(&t, "access_token")))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn routes_need_a_bearer_token() {
    let n = TestServer::start().await;
    for path in ["/api/v1/me", "/api/v1/sessions"] {
        let r = n.req("GET", path, None, &[], None).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json()["error"], "unauthorized");
        assert!(r.json()["message"].is_string());
        let r = n.get(path, Some("not-a-jwt")).await;
        assert_eq!(r.status, 401, "{path}");
    }
}
