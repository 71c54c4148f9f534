//! Coach payouts through Stripe Connect Express on one node: a coach
//! who is not payable cannot publish a paid program nor make a published
//! free one paid; onboarding creates
//! one Express account (the fake answers Stripe's documented account and
//! account-link shapes) and `account.updated`, signed by the endpoint of
//! events on connected accounts, makes the coach payable (older events
//! ignored); the dashboard link; the sale is a destination charge with
//! the platform's fee.

use serde_json::json;

use super::flows::{Node, program_body};
use super::stripe::{FakeStripe, account_updated, sign_connect};

#[tokio::test]
async fn a_coach_who_is_not_payable_cannot_sell_and_sales_are_destination_charges() {
    let fake = FakeStripe::start(None).await;
    let n = Node::start(Some(&fake)).await;
    let api = n.api();
    let coach = Some(n.coach.as_str());
    let r = api
        .post("/api/v1/programs", coach, program_body("one_time", None))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/programs/{id}/publish");
    let publish = || api.post(&path, coach, json!({}));
    let r = publish().await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (409, json!("not_payable"))
    );
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("onboarding"))
    );
    // Nor make a published free program paid.
    let r = api
        .post("/api/v1/programs", coach, program_body("free", None))
        .await;
    let free = r.json()["id"].as_str().expect("id").to_string();
    let r = api
        .post(
            &format!("/api/v1/programs/{free}/publish"),
            coach,
            json!({}),
        )
        .await;
    assert_eq!(
        r.status,
        200,
        "a free program needs no payouts: {}",
        r.text()
    );
    let free_path = format!("/api/v1/programs/{free}");
    let to_paid = || {
        api.req(
            "PUT",
            &free_path,
            coach,
            &[],
            Some(program_body("one_time", None).to_string().into_bytes()),
        )
    };
    let r = to_paid().await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (409, json!("not_payable"))
    );
    let r = api.get(&format!("/api/v1/programs/{free}"), coach).await;
    assert_eq!(r.json()["price"]["kind"], "free", "nothing changed");
    let state = api.get("/api/v1/me/payouts", coach).await.json();
    assert_eq!(
        (state["account"].clone(), state["payable"].clone()),
        (json!(null), json!(false))
    );
    let r = api
        .post("/api/v1/me/payouts/dashboard", coach, json!({}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (409, json!("no_payout_account"))
    );
    let onboard = json!({"refresh_url": "https://example.com/again", "return_url": "https://example.com/done"});
    let r = api
        .post(
            "/api/v1/me/payouts/onboarding",
            Some(&n.athlete),
            onboard.clone(),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("forbidden"))
    );

    // Onboarding: an Express account (once) and its link.
    let r = api
        .post("/api/v1/me/payouts/onboarding", coach, onboard.clone())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let acct = r.json()["account"].as_str().expect("account").to_string();
    assert!(
        r.json()["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://connect.stripe.com/"))
    );
    let again = api
        .post("/api/v1/me/payouts/onboarding", coach, onboard)
        .await;
    assert_eq!(
        again.json()["account"],
        acct.as_str(),
        "one account per coach"
    );
    let seen = fake.seen();
    let created: Vec<_> = seen.iter().filter(|s| s.path == "/v1/accounts").collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].idempotency_key.as_deref(),
        Some("account-coach-1")
    );
    assert!(created[0].form.contains(&("type".into(), "express".into())));
    assert!(
        created[0]
            .form
            .contains(&("metadata[chalktalk_user]".into(), "coach-1".into()))
    );
    // Not payable until Stripe says so; an older event changes nothing.
    let r = publish().await;
    assert_eq!(r.json()["error"], "not_payable");
    for (ev, payable, at) in [
        ("evt_a1", false, 100),
        ("evt_a2", true, 200),
        ("evt_a0", false, 50),
    ] {
        // Signed by the endpoint of events on connected accounts.
        let body = account_updated(ev, &acct, payable, at);
        assert_eq!(n.webhook(&body, &sign_connect(&body)).await.status, 200);
        n.wait_applied(ev).await;
    }
    assert_eq!(
        api.get("/api/v1/me/payouts", coach).await.json()["payable"],
        true
    );
    let r = publish().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = to_paid().await;
    assert_eq!(r.status, 200, "payable now: {}", r.text());
    let r = api
        .post("/api/v1/me/payouts/dashboard", coach, json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The sale is a destination charge with the platform's 10 %.
    n.checkout(&id).await;
    let seen = fake.seen();
    let session = seen
        .iter()
        .find(|s| s.path == "/v1/checkout/sessions")
        .expect("a checkout");
    let field = |k: &str| {
        session
            .form
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        field("payment_intent_data[transfer_data][destination]"),
        Some(acct)
    );
    assert_eq!(
        field("payment_intent_data[application_fee_amount]"),
        Some("499".into())
    );
}
