//! Training programs and Stripe payments end to end (issue 12) against a
//! real node on loopback: programs over REST (build, publish, list, free
//! enrollment, progress on both sides, validation codes); buying a program
//! (checkout against the fake Stripe of `payments/stripe.rs` serving the
//! checked-in Checkout Session fixture through async-stripe → a signed
//! webhook → entitlement → the athlete opens the program's video, and
//! could not before); webhooks replayed, duplicated, out of order and
//! badly signed; refunds (by webhook, and through the API against
//! localstripe) revoking access; stored receipts applied after a restart.
//! Subscriptions to the plans changing the matrix row live (REST and an
//! open WebSocket), against localstripe and fixtures, and admin overrides:
//! `payments/lifecycle.rs` (setup in `payments/subscriptions.rs`); coach
//! payouts through Stripe Connect: `payments/payouts.rs`; revenue
//! analytics for coaches and admins: `payments/revenue.rs`; review rooms as
//! program items: `payments/reviews.rs`; documents attached to programs:
//! `payments/attachments.rs`.
//! The same flows on PostgreSQL are in `payments/postgres.rs`; Stripe's
//! test mode in `payments/test_mode.rs`.

mod common;
mod payments {
    pub mod attachments;
    pub mod buying;
    pub mod flows;
    pub mod lifecycle;
    pub mod payouts;
    pub mod postgres;
    pub mod program_subs;
    pub mod revenue;
    pub mod reviews;
    pub mod stripe;
    pub mod subscriptions;
    pub mod test_mode;
}

use chalktalk_adapters::programs::ProgramStore;
use chalktalk_protocol::Role;
use common::TestServer;
use serde_json::json;

use payments::flows::{Node, program_body};
use payments::stripe::{FakeStripe, LocalStripe, completed, disputed, refunded, sign};

#[tokio::test]
async fn programs_over_rest_enroll_free_progress_and_access() {
    let n = Node::start(None).await;
    n.programs_over_rest().await;
}

#[tokio::test]
async fn buy_a_program_end_to_end_with_replays_and_a_bad_signature() {
    let fake = FakeStripe::start(None).await;
    let n = Node::start(Some(&fake)).await;
    n.buy_end_to_end(&fake).await;
}

#[tokio::test]
async fn revenue_for_two_coaches_and_the_platform() {
    let fake = FakeStripe::start(None).await;
    let n = Node::start(Some(&fake)).await;
    n.revenue(&fake).await;
}

#[tokio::test]
async fn events_in_any_order_end_in_the_same_state() {
    let fake = FakeStripe::start(None).await;
    let n = Node::start(Some(&fake)).await;
    n.refund_before_payment(&fake).await;
}

#[tokio::test]
async fn refund_through_the_api_against_localstripe_revokes_access() {
    let ls = LocalStripe::start().await;
    let fake = FakeStripe::start(Some(ls.addr)).await;
    let n = Node::start(Some(&fake)).await;
    // A real PaymentIntent in localstripe, paid with its test card.
    let pi = ls
        .post(
            "/v1/payment_intents",
            "amount=4999&currency=eur&payment_method=pm_card_visa",
        )
        .await;
    let pi_id = pi["id"].as_str().expect("pi id").to_string();
    let confirmed = ls
        .post(&format!("/v1/payment_intents/{pi_id}/confirm"), "")
        .await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");

    let (program, video) = n.paid_program().await;
    let order = n.checkout(&program).await;
    let body = completed("evt_ls_paid", fake.session(&order), &pi_id);
    assert_eq!(n.webhook(&body, &sign(&body)).await.status, 200);
    n.wait_video(&video, 200).await;

    // The coach refunds: the node asks localstripe (async-stripe's
    // CreateRefund with an idempotency key) and revokes at once.
    let r = n
        .api()
        .post(
            &format!("/api/v1/orders/{order}/refund"),
            Some(&n.coach),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "refunded");
    n.wait_video(&video, 404).await;
    let refunds = ls.get(&format!("/v1/refunds?payment_intent={pi_id}")).await;
    let list = refunds["data"].as_array().expect("refund list");
    assert_eq!(list.len(), 1, "{refunds}");
    assert_eq!(list[0]["amount"], 4999);
    let seen = fake.seen();
    let refund_req = seen
        .iter()
        .find(|s| s.path == "/v1/refunds")
        .expect("the refund went to Stripe");
    assert_eq!(
        refund_req.idempotency_key.as_deref(),
        Some(format!("refund-{order}").as_str())
    );
    // Refunding again: not paid any more.
    let again = n
        .api()
        .post(
            &format!("/api/v1/orders/{order}/refund"),
            Some(&n.coach),
            json!({}),
        )
        .await;
    assert_eq!(
        (again.status, again.json()["error"].clone()),
        (409, json!("not_refundable"))
    );
    // Stripe's own charge.refunded, arriving later, changes nothing.
    let late = refunded("evt_ls_refund", &pi_id);
    assert_eq!(n.webhook(&late, &sign(&late)).await.status, 200);
    n.wait_applied("evt_ls_refund").await;
    n.wait_video(&video, 404).await;
}

#[tokio::test]
async fn a_chargeback_revokes_what_the_payment_bought() {
    let fake = FakeStripe::start(None).await;
    let n = Node::start(Some(&fake)).await;
    let (program, video) = n.paid_program().await;
    let order = n.checkout(&program).await;
    // The dispute's event first (out of order): it waits for the payment.
    let dispute = disputed("evt_dispute", "pi_disputed");
    assert_eq!(n.webhook(&dispute, &sign(&dispute)).await.status, 200);
    let paid = completed("evt_dispute_paid", fake.session(&order), "pi_disputed");
    assert_eq!(n.webhook(&paid, &sign(&paid)).await.status, 200);
    n.wait_applied("evt_dispute_paid").await;
    n.wait_applied("evt_dispute").await;
    n.wait_video(&video, 404).await;
    let store = n.store();
    let o = store.order(&order).await.expect("read").expect("order");
    assert_eq!(
        o.status,
        chalktalk_adapters::programs::OrderStatus::Disputed
    );
    // A disputed order cannot be refunded through the API.
    let r = n
        .api()
        .post(
            &format!("/api/v1/orders/{order}/refund"),
            Some(&n.coach),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (409, json!("not_refundable"))
    );
}

#[tokio::test]
async fn stored_receipts_are_applied_after_a_restart() {
    let fake = FakeStripe::start(None).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut n = Node::start_in(Some(&fake), dir.path()).await;
    let (program, video) = n.paid_program().await;
    let order = n.checkout(&program).await;
    let body = completed("evt_restart", fake.session(&order), "pi_restart");
    n.node.stop().await;
    // What a node that crashed after storing the event (before applying
    // it) leaves behind: a verified receipt, not applied.
    {
        // The stopped node's actors release the file shortly after.
        let mut opened = None;
        for _ in 0..200 {
            match chalktalk_adapters::EmbeddedStore::open(dir.path()) {
                Ok(s) => {
                    opened = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
            }
        }
        let store = opened.expect("the store is released within 5 s");
        let r = chalktalk_adapters::programs::Receipt {
            id: "evt_restart".into(),
            kind: "checkout.session.completed".into(),
            created: 1_700_000_100,
            body: body.into_bytes(),
            received_ms: 1,
            applied_ms: None,
            note: None,
        };
        assert!(store.add_receipt(&r).await.expect("add"));
        assert_eq!(
            store
                .entitlement("athlete-1", &program)
                .await
                .expect("read"),
            None
        );
    }
    let n = Node::start_in(Some(&fake), dir.path()).await;
    n.wait_applied("evt_restart").await;
    n.wait_video(&video, 200).await;
}

#[tokio::test]
async fn without_stripe_settings_money_routes_answer_payments_disabled() {
    let s = TestServer::start().await;
    let coach = s.token("coach-1", Role::Coach);
    let athlete = s.token("athlete-1", Role::Athlete);
    let api = s.api();
    let r = api
        .post(
            "/api/v1/programs",
            Some(&coach),
            program_body("one_time", None),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let r = api
        .post(
            &format!("/api/v1/programs/{id}/publish"),
            Some(&coach),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .post(
            &format!("/api/v1/programs/{id}/checkout"),
            Some(&athlete),
            json!({"success_url": "https://example.com/ok", "cancel_url": "https://example.com/no"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (503, json!("payments_disabled"))
    );
    let r = api
        .req(
            "POST",
            "/api/v1/webhooks/stripe",
            None,
            &[("Stripe-Signature", "t=1,v1=00".into())],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (503, json!("payments_disabled"))
    );
}

#[tokio::test]
async fn an_oversized_webhook_is_refused_as_json_and_nothing_is_stored() {
    let fake = FakeStripe::start(None).await;
    let n = Node::start(Some(&fake)).await;
    let big = format!(
        "{{\"id\": \"evt_big\", \"type\": \"charge.refunded\", \"created\": 1, \"pad\": \"{}\"}}",
        "x".repeat(600 * 1024)
    );
    let r = n.webhook(&big, &sign(&big)).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (413, json!("too_large"))
    );
    let store = n.store();
    assert_eq!(store.receipt("evt_big").await.expect("read"), None);
}
