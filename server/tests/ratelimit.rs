//! Rate limits end to end, real servers on 127.0.0.1 and plain HTTP: the
//! in-process limiter (burst, 429, recovery; keys by user, by IP, trusted
//! proxies; route classes; headers on every limited answer), two nodes
//! sharing one real redis-server, Redis killed, frozen and restarted under
//! them (tests/ratelimit/shared.rs), and revocations across nodes through
//! Redis, up and down (tests/ratelimit/revocation.rs); both adapters of the
//! limiter and revocation ports pass the same checks
//! (tests/ratelimit/conformance.rs). WebSocket frame
//! floods are covered by tests/bad_input.rs
//! (`a_flood_is_rate_limited_then_closed_without_hurting_others`).

mod common;
/// The suite's other files, in tests/ratelimit/ (its helpers in support.rs).
mod ratelimit {
    pub mod conformance;
    pub mod revocation;
    pub mod shared;
    pub mod support;
}

use std::time::Duration;

use chalktalk_protocol::Role;
use chalktalk_services::auth::Auth;
use common::TestServer;
use ratelimit::support::{assert_429, limits, node, text};
use serde_json::json;

/// `X-RateLimit-Limit` and `-Remaining`.
fn lr(r: &common::client::Resp) -> (u64, u64) {
    let (limit, remaining, _) = limits(r);
    (limit, remaining)
}

fn token(user: &str) -> String {
    Auth::new(common::SECRET.as_bytes())
        .mint(user, Role::Athlete, 3600)
        .expect("mint")
}

#[tokio::test]
async fn burst_then_429_then_one_more_per_emission_interval() {
    // 30/min: one request every 2 s sustained, three at once.
    let n = node("public=30/min:3", "", None).await;
    for left in [2, 1, 0] {
        let r = n.get("/api/v1/me", None).await;
        assert_eq!(r.status, 401, "{}", text(&r));
        let (limit, remaining, reset) = limits(&r);
        assert_eq!((limit, remaining), (3, left));
        assert!((2..=6).contains(&reset), "{reset}");
    }
    let r = n.get("/api/v1/me", None).await;
    assert!((1..=2).contains(&assert_429(&r)));
    assert_eq!(limits(&r).0, 3);
    // A refused request never reaches its handler: this registration is
    // not made (signing in with its password fails below).
    let r = n
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "late@example.com", "password": common::api::PASSWORD}),
        )
        .await;
    assert_429(&r);
    // One emission interval later: exactly one more.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = n
        .post(
            "/api/v1/auth/signin",
            None,
            json!({"email": "late@example.com", "password": common::api::PASSWORD, "device": "d"}),
        )
        .await;
    assert_eq!(r.status, 401, "the refused registration ran: {}", text(&r));
    assert_eq!(limits(&r).1, 0);
    assert_429(&n.get("/api/v1/me", None).await);
}

#[tokio::test]
async fn users_have_their_own_buckets_and_forged_tokens_count_as_their_ip() {
    let n = node("public=1/hour:2,authenticated=1/hour:3", "", None).await;
    let anon = n.get("/api/v1/me", None).await;
    assert_eq!(lr(&anon), (2, 1));
    // A token signed with another key, and junk: the caller's IP bucket.
    let forged = Auth::new(b"not-the-server-secret-not-the-server")
        .mint("mallory", Role::Admin, 3600)
        .expect("mint");
    let r = n.get("/api/v1/me", Some(&forged)).await;
    assert_eq!(r.status, 401);
    assert_eq!(lr(&r), (2, 0));
    assert_429(&n.get("/api/v1/me", Some("junk")).await);
    assert_429(&n.get("/api/v1/me", None).await);
    // Valid tokens: a bucket per user, the authenticated quota, whatever
    // the IP's bucket says.
    let (alice, bob) = (token("alice"), token("bob"));
    for left in [2, 1, 0] {
        let r = n.get("/api/v1/me", Some(&alice)).await;
        assert_ne!(r.status, 429, "{}", text(&r));
        assert_eq!(lr(&r), (3, left));
    }
    assert_eq!(limits(&assert_429_resp(&n, &alice).await).0, 3);
    let r = n.get("/api/v1/me", Some(&bob)).await;
    assert_ne!(r.status, 429, "bob pays for alice: {}", text(&r));
    assert_eq!(lr(&r), (3, 2));
}

async fn assert_429_resp(n: &TestServer, token: &str) -> common::client::Resp {
    let r = n.get("/api/v1/me", Some(token)).await;
    assert_429(&r);
    r
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let xff = |ip: &str| vec![("X-Forwarded-For", ip.to_string())];
    // Untrusted peer: a made-up X-Forwarded-For does not buy a new bucket.
    let n = node("public=1/hour:2", "", None).await;
    for (i, ip) in ["1.1.1.1", "2.2.2.2"].into_iter().enumerate() {
        let r = n.req("GET", "/api/v1/me", None, &xff(ip), None).await;
        assert_eq!(limits(&r).1, 1 - i as u64);
    }
    assert_429(
        &n.req("GET", "/api/v1/me", None, &xff("3.3.3.3"), None)
            .await,
    );
    // Behind a trusted proxy (here: loopback): one bucket per client.
    let n = node("public=1/hour:2", "127.0.0.1", None).await;
    for ip in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        let r = n.req("GET", "/api/v1/me", None, &xff(ip), None).await;
        assert_eq!(lr(&r), (2, 1), "{ip}");
    }
    // The left-most entry is the client's own claim: the right-most
    // untrusted hop decides.
    let r = n
        .req("GET", "/api/v1/me", None, &xff("9.9.9.9, 1.1.1.1"), None)
        .await;
    assert_eq!(limits(&r).1, 0);
    assert_429(
        &n.req("GET", "/api/v1/me", None, &xff("8.8.8.8, 1.1.1.1"), None)
            .await,
    );
}

#[tokio::test]
async fn routes_pick_their_class_and_every_limited_answer_has_headers() {
    let n = node(
        "public=1/hour:7,upload=1/hour:2,analytics=1/hour:4,webhooks=1/hour:5",
        "",
        None,
    )
    .await;
    let alice = token("alice");
    // Creating an upload, either way, shares the upload bucket.
    let r = n.post("/api/v1/uploads", Some(&alice), json!({})).await;
    assert_ne!(r.status, 429, "{}", text(&r));
    assert_eq!(lr(&r), (2, 1));
    let r = n
        .req("POST", "/api/v1/uploads/simple", Some(&alice), &[], None)
        .await;
    assert_ne!(r.status, 429, "{}", text(&r));
    assert_eq!(lr(&r), (2, 0));
    let r = n.post("/api/v1/uploads", Some(&alice), json!({})).await;
    let retry = assert_429(&r);
    assert!(
        (3500..=3600).contains(&retry),
        "an hour's emission: {retry}"
    );
    // Reading an upload is not creating one.
    let r = n.get("/api/v1/uploads/nope", Some(&alice)).await;
    assert_ne!(r.status, 429);
    assert_eq!(limits(&r).0, 1500);
    // Analytics and webhooks have their own quotas (even on paths
    // without a handler yet), and anonymous 404s are limited as public.
    assert_eq!(
        limits(&n.get("/api/v1/analytics/x", Some(&alice)).await).0,
        4
    );
    assert_eq!(limits(&n.get("/api/v1/webhooks/y", None).await).0, 5);
    let r = n.get("/no/such/route", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(limits(&r).0, 7);
    // 200s carry them too; health, readiness and the WebSocket do not.
    let t = n.athlete_tokens("headers@example.com", "laptop").await;
    let r = n.get("/api/v1/sessions", Some(&t.access)).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(limits(&r).0, 1500);
    for path in ["/health", "/ready"] {
        let r = n.get(path, None).await;
        assert_eq!(r.status, 200);
        assert!(r.header("x-ratelimit-limit").is_none(), "{path}");
    }
}
