//! Revocations across nodes through one real redis-server. Node A and node
//! B share the accounts database (B uses A's key-value store) and Redis: a
//! session signed in on A and revoked on A is refused by B's REST and its
//! WebSocket on B is closed with 4001 at once; its refresh token is dead.
//! With Redis down the revoking node refuses at once, the others fail open
//! until Redis is back, then converge (docs/OPERATIONS.md, "Redis").

use std::time::{Duration, Instant};

use chalktalk_protocol::CloseCode;
use chalktalk_protocol::client::{Client, ClientError};
use serde_json::json;

use crate::common::TestServer;
use crate::common::api::{Tokens, ws};
use crate::common::redis::RedisServer;
use crate::ratelimit::support::{node, node_sharing_accounts_of, text};

const NO_LIMITS: &str = "";

/// The hello of `token` is refused as unauthorized.
async fn ws_refused(url: &str, token: &str) {
    match ws(url, token, "phone").await {
        Err(ClientError::Server { code, .. }) => {
            assert_eq!(code, chalktalk_protocol::ErrorCode::Unauthorized)
        }
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, Some(CloseCode::UNAUTHORIZED)),
        Err(e) => panic!("unexpected {e:?}"),
        Ok(_) => panic!("hello of a revoked session accepted"),
    }
}

async fn refresh_status(n: &TestServer, t: &Tokens) -> u16 {
    n.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": t.refresh}),
    )
    .await
    .status
}

/// Waits for the 4001 close of `c`; how long it took.
async fn closed_4001(c: &mut Client, max: Duration) -> Duration {
    let t0 = Instant::now();
    let (code, reason) = c.closed(max).await.expect("socket closed");
    assert_eq!(code, Some(CloseCode::UNAUTHORIZED), "{reason}");
    t0.elapsed()
}

#[tokio::test]
async fn revoked_on_a_is_refused_and_closed_on_b() {
    let redis = RedisServer::start().await;
    let a = node(NO_LIMITS, "", Some(&redis.url())).await;
    let b = node_sharing_accounts_of(&a, NO_LIMITS, Some(&redis.url())).await;
    let laptop = a.athlete_tokens("cross@example.com", "laptop").await;
    let phone = a.sign_in_tokens("cross@example.com", "phone").await;
    let mut sock = ws(&b.url, &laptop.access, "phone")
        .await
        .expect("hello on b");
    let mut other = ws(&b.url, &phone.access, "phone")
        .await
        .expect("hello on b");
    assert_eq!(b.get("/api/v1/me", Some(&laptop.access)).await.status, 200);

    // "Sign out this device", on A.
    let r = a
        .req(
            "DELETE",
            &format!("/api/v1/sessions/{}", laptop.sid),
            Some(&phone.access),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", text(&r));
    let took = closed_4001(&mut sock, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(1), "closed after {took:?}");
    for n in [&a, &b] {
        let r = n.get("/api/v1/me", Some(&laptop.access)).await;
        assert_eq!(r.status, 401, "{}", text(&r));
        assert_eq!(refresh_status(n, &laptop).await, 401);
    }
    ws_refused(&b.url, &laptop.access).await;
    // The other session is untouched.
    assert_eq!(b.get("/api/v1/me", Some(&phone.access)).await.status, 200);
    assert!(other.close_info().is_none());

    // Sign-out (logout) on A closes that device's socket on B too.
    let r = a
        .req(
            "POST",
            "/api/v1/auth/logout",
            Some(&phone.access),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", text(&r));
    closed_4001(&mut other, Duration::from_secs(5)).await;
    assert_eq!(b.get("/api/v1/me", Some(&phone.access)).await.status, 401);
    assert_eq!(refresh_status(&b, &phone).await, 401);
}

#[tokio::test]
async fn revocations_while_redis_is_down_fail_open_elsewhere_then_converge() {
    let mut redis = RedisServer::start().await;
    let a = node(NO_LIMITS, "", Some(&redis.url())).await;
    let b = node_sharing_accounts_of(&a, NO_LIMITS, Some(&redis.url())).await;
    let t = a.athlete_tokens("outage@example.com", "laptop").await;
    let mut sock = ws(&b.url, &t.access, "phone").await.expect("hello on b");
    redis.stop();

    // Revoked on A while Redis is down: answered at once, refused on A at
    // once (its own list), and the refresh token is dead everywhere (the
    // session record is gone from the accounts database).
    let t0 = Instant::now();
    let r = a
        .req(
            "DELETE",
            &format!("/api/v1/sessions/{}", t.sid),
            Some(&t.access),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", text(&r));
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(a.get("/api/v1/me", Some(&t.access)).await.status, 401);
    ws_refused(&a.url, &t.access).await;
    assert_eq!(refresh_status(&b, &t).await, 401);
    // B cannot know: its checks fail open, the socket stays (documented).
    assert_eq!(b.get("/api/v1/me", Some(&t.access)).await.status, 200);
    assert!(sock.closed(Duration::from_millis(500)).await.is_none());

    // Redis back (empty): A writes its revocation back, B hears it.
    redis.restart().await;
    let took = closed_4001(&mut sock, Duration::from_secs(10)).await;
    let r = b.get("/api/v1/me", Some(&t.access)).await;
    assert_eq!(r.status, 401, "{} ({took:?} after the restart)", text(&r));
    ws_refused(&b.url, &t.access).await;
    let stored: i64 = crate::ratelimit::support::redis_cmd(
        &redis.url(),
        redis::cmd("EXISTS").arg(format!("chalktalk:revoked:{}", t.sid)),
    )
    .await;
    assert_eq!(stored, 1, "the revocation is in Redis again");
}
