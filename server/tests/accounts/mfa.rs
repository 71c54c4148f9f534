//! TOTP: coaches (and admins) must enrol before they can do anything but
//! enrol; codes of the current step sign in, used codes and wrong codes do
//! not; ten recovery codes work once each. Brute force: a few wrong
//! passwords lock the email for a while (uniform 429, the right password
//! included), then the real user gets back in.

use std::time::Duration;

use serde_json::{Value, json};

use crate::accounts::helpers::code;
use crate::common::TestServer;
use crate::common::api::{PASSWORD, s, ws_refused};

async fn coach_enrolled(n: &TestServer, email: &str) -> (Value, String, Vec<String>) {
    assert_eq!(n.register(email, "coach").await.status, 202);
    let r = n.sign_in(email, PASSWORD, "laptop").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    assert_eq!(t["mfa"], "enrollment_required");
    let pending = s(&t, "access_token");

    // Until TOTP is confirmed: only enrollment (and /me, sign-out).
    let r = n.get("/api/v1/sessions", Some(&pending)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "mfa_required");
    ws_refused(&n.url, &pending).await;
    let me = n.get("/api/v1/me", Some(&pending)).await.json();
    assert_eq!(me["mfa"]["required"], true);
    assert_eq!(me["mfa"]["pending"], true);

    let e = n
        .post("/api/v1/mfa/totp/enroll", Some(&pending), json!({}))
        .await;
    assert_eq!(e.status, 200, "{}", e.text());
    let e = e.json();
    let secret = s(&e, "secret");
    assert!(s(&e, "otpauth_uri").starts_with("otpauth://totp/"));

    let wrong = n
        .post(
            "/api/v1/mfa/totp/confirm",
            Some(&pending),
            json!({"code": "000000"}),
        )
        .await;
    assert!(matches!(wrong.status, 401 | 422), "{}", wrong.text());
    let ok = n
        .post(
            "/api/v1/mfa/totp/confirm",
            Some(&pending),
            json!({"code": code(&secret, 0)}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let ok = ok.json();
    let recovery: Vec<String> = ok["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("str").to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    // The session is upgraded: its new access token works everywhere.
    let full = s(&ok, "access_token");
    assert_eq!(n.get("/api/v1/sessions", Some(&full)).await.status, 200);
    (t, secret, recovery)
}

async fn second_step(n: &TestServer, challenge: &str, body: Value) -> crate::common::client::Resp {
    let mut b = body;
    b["challenge"] = challenge.into();
    b["device"] = "laptop".into();
    n.post("/api/v1/auth/mfa", None, b).await
}

async fn challenge(n: &TestServer, email: &str) -> String {
    let r = n.sign_in(email, PASSWORD, "laptop").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = r.json();
    assert_eq!(c["mfa"], "required", "{c}");
    assert!(c.get("access_token").is_none(), "no token before the code");
    s(&c, "challenge")
}

#[tokio::test]
async fn coaches_enrol_totp_then_sign_in_with_codes_or_recovery_codes() {
    let n = TestServer::start().await;
    let (_, secret, recovery) = coach_enrolled(&n, "coach@example.com").await;

    let ch = challenge(&n, "coach@example.com").await;
    // A challenge is not an access token.
    assert_eq!(n.get("/api/v1/me", Some(&ch)).await.status, 401);
    ws_refused(&n.url, &ch).await;
    let bad = second_step(&n, &ch, json!({"code": "123456"})).await;
    assert_eq!(bad.status, 401, "{}", bad.text());

    // The code confirmed at enrollment was used; the next step's is fresh.
    let good = second_step(&n, &ch, json!({"code": code(&secret, 1)})).await;
    assert_eq!(good.status, 200, "{}", good.text());
    let t = good.json();
    assert_eq!(t["mfa"], "ok");
    let me = n
        .get("/api/v1/me", Some(&s(&t, "access_token")))
        .await
        .json();
    assert_eq!(me["mfa"]["enabled"], true);
    // New coaches start on a trial: the premium row of the matrix.
    assert_eq!(me["plan"], "coach_premium");
    assert_eq!(me["subscription"], "trial");
    // Replaying the same code is refused.
    let ch2 = challenge(&n, "coach@example.com").await;
    let replay = second_step(&n, &ch2, json!({"code": code(&secret, 1)})).await;
    assert_eq!(replay.status, 401, "{}", replay.text());

    // A recovery code works once.
    let r = second_step(&n, &ch2, json!({"recovery_code": recovery[3]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let me = n
        .get("/api/v1/me", Some(&s(&r.json(), "access_token")))
        .await
        .json();
    assert_eq!(me["mfa"]["recovery_codes_left"], 9);
    let ch3 = challenge(&n, "coach@example.com").await;
    let again = second_step(&n, &ch3, json!({"recovery_code": recovery[3]})).await;
    assert_eq!(again.status, 401);
    // Neither code nor recovery code.
    let none = second_step(&n, &ch3, json!({})).await;
    assert!(matches!(none.status, 401 | 422), "{}", none.text());
}

#[tokio::test]
async fn brute_force_locks_the_email_for_a_while_then_lets_the_owner_in() {
    let n = TestServer::start_with(|c| {
        c.accounts.lock_after = 3;
        c.accounts.lock_for = Duration::from_secs(2);
    })
    .await;
    assert_eq!(
        n.register("victim@example.com", "athlete").await.status,
        202
    );
    for i in 0..3 {
        let r = n
            .sign_in("victim@example.com", &format!("guess number {i}"), "x")
            .await;
        assert_eq!(r.status, 401);
    }
    // Locked: even the right password gets the same 429 as a wrong one.
    let right = n.sign_in("victim@example.com", PASSWORD, "phone").await;
    let wrong = n
        .sign_in("victim@example.com", "yet another guess", "x")
        .await;
    assert_eq!(right.status, 429, "{}", right.text());
    assert_eq!(wrong.status, 429);
    assert_eq!(right.json()["error"], "rate_limit_exceeded");
    assert!(
        right.json()["retry_after"]
            .as_u64()
            .is_some_and(|s| (1..=2).contains(&s))
    );
    assert_eq!(right.json()["error"], wrong.json()["error"]);
    // Other accounts are not locked by it.
    let other = n.athlete("bystander@example.com", "phone").await;
    assert!(other["access_token"].is_string());

    // The lock ends; the owner signs in.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let back = n.sign_in("victim@example.com", PASSWORD, "phone").await;
    assert_eq!(back.status, 200, "{}", back.text());
}
