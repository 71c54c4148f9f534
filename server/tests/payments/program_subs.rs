//! A training program sold by its own monthly price: the checkout is a
//! Checkout Session in subscription mode (a recurring price, the coach's
//! account as the subscription's destination with the platform's percent,
//! the program in the subscription's metadata); the subscription's events
//! open the program's videos to the athlete and close them again, in any
//! order; a plan's matrix row is not touched. Its paid invoices are the
//! coach's revenue, each once.

use serde_json::json;

use super::flows::{ATHLETE, Node};
use super::stripe::{FakeStripe, invoice_event, refunded, sign, subscription_event};

/// Delivers `customer.subscription.<kind>` of the athlete's subscription
/// `sub_prog_1` to `program` and waits until it is applied.
async fn send(
    n: &Node,
    program: &str,
    id: &str,
    kind: &str,
    created: i64,
    status: &str,
    mut extra: serde_json::Value,
) {
    extra["metadata"] = json!({"chalktalk_user": ATHLETE, "chalktalk_program": program});
    let of = ("sub_prog_1", ATHLETE, "price_inline_1");
    let body = subscription_event(id, kind, created, of, status, extra);
    let r = n.webhook(&body, &sign(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    n.wait_applied(id).await;
}

#[tokio::test]
async fn a_programs_subscription_opens_it_while_it_is_paid() {
    let fake = FakeStripe::start(None).await;
    let n = Node::start(Some(&fake)).await;
    let account = n.make_payable().await.expect("a payout account");
    let (program, video) = n.program("monthly").await;
    n.wait_video(&video, 404).await;

    // The checkout: subscription mode, a monthly price, the destination.
    let r = n.open_checkout(&program).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["amount"].clone(), r.json()["currency"].clone()),
        (json!(999), json!("eur"))
    );
    let seen = fake.seen();
    let session = seen
        .iter()
        .rfind(|s| s.path == "/v1/checkout/sessions")
        .expect("a checkout session");
    let field = |k: &str| {
        session
            .form
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("mode"), Some("subscription"));
    assert_eq!(
        field("line_items[0][price_data][recurring][interval]"),
        Some("month")
    );
    assert_eq!(field("line_items[0][price_data][unit_amount]"), Some("999"));
    assert_eq!(
        field("subscription_data[metadata][chalktalk_program]"),
        Some(program.as_str())
    );
    assert_eq!(
        field("subscription_data[metadata][chalktalk_user]"),
        Some(ATHLETE)
    );
    assert_eq!(
        field("subscription_data[transfer_data][destination]"),
        Some(account.as_str())
    );
    // async-stripe writes the decimal as `10.0` (Stripe takes up to two places).
    assert_eq!(
        field("subscription_data[application_fee_percent]"),
        Some("10.0")
    );
    assert_eq!(field("payment_intent_data[application_fee_amount]"), None);
    assert!(session.idempotency_key.is_some());
    // Paying is not the redirect: nothing opens before the events.
    n.wait_video(&video, 404).await;

    // Out of order: the update (active) before the creation (incomplete).
    send(
        &n,
        &program,
        "evt_ps_2",
        "updated",
        1_700_000_200,
        "active",
        json!({}),
    )
    .await;
    send(
        &n,
        &program,
        "evt_ps_1",
        "created",
        1_700_000_100,
        "incomplete",
        json!({}),
    )
    .await;
    n.wait_video(&video, 200).await;
    let store = n.store();
    let s = store
        .subscription("sub_prog_1")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        (s.plan, s.program.as_deref()),
        (
            chalktalk_adapters::billing::PaidPlan::Program,
            Some(program.as_str())
        )
    );
    let e = n.entitlement(&program).await;
    assert_eq!(e.source, chalktalk_adapters::programs::Source::Subscription);
    assert_eq!(e.reference.as_deref(), Some("sub_prog_1"));
    // The locker lists it.
    let r = n.api().get("/api/v1/me/programs", Some(&n.athlete)).await;
    assert!(r.text().contains(&program), "{}", r.text());
    invoices_are_revenue(&n, &program).await;

    // Canceled at the end of a period that ends in 3 s: open until then,
    // then closed at the next access without any event (the stored
    // entitlement is still active), and it can be bought again.
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3;
    send(
        &n,
        &program,
        "evt_ps_3",
        "updated",
        1_700_000_300,
        "active",
        json!({"cancel_at_period_end": true, "current_period_end": end}),
    )
    .await;
    let r = n
        .api()
        .get(&format!("/api/v1/videos/{video}"), Some(&n.athlete))
        .await;
    assert_eq!(r.status, 200, "open until the period ends");
    n.wait_video(&video, 404).await;
    let e = n.entitlement(&program).await;
    assert_eq!(
        e.status,
        chalktalk_adapters::programs::EntitlementStatus::Active,
        "closed by the check at access, not by an event"
    );
    let r = n.open_checkout(&program).await;
    assert_eq!(
        r.status,
        200,
        "a lapsed subscription is no entitlement: {}",
        r.text()
    );
    // Deleted, then an older `active` replayed: it stays closed.
    send(
        &n,
        &program,
        "evt_ps_4",
        "deleted",
        1_700_000_500,
        "canceled",
        json!({}),
    )
    .await;
    send(
        &n,
        &program,
        "evt_ps_5",
        "updated",
        1_700_000_250,
        "active",
        json!({}),
    )
    .await;
    n.wait_video(&video, 404).await;
    let e = n.entitlement(&program).await;
    assert_eq!(
        e.status,
        chalktalk_adapters::programs::EntitlementStatus::Revoked
    );
}

/// Each paid invoice of the subscription is money in the coach's revenue,
/// once: Stripe sends both `invoice.paid` and `invoice.payment_succeeded`
/// for it; a trial's zero invoice is no sale; the fee is the invoice's
/// application fee, else the platform's percent. A refunded invoice counts
/// as a refund and leaves the program to its subscription.
async fn invoices_are_revenue(n: &Node, program: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let cases = [
        ("evt_in_1", "paid", "in_prog_1", 999, json!(150)),
        (
            "evt_in_2",
            "payment_succeeded",
            "in_prog_1",
            999,
            json!(150),
        ),
        ("evt_in_3", "paid", "in_prog_2", 999, json!(null)),
        ("evt_in_4", "paid", "in_prog_trial", 0, json!(null)),
    ];
    for (evt, kind, invoice, amount, fee) in cases {
        let mut v: serde_json::Value = serde_json::from_str(&invoice_event(
            evt,
            kind,
            1_700_000_210,
            "sub_prog_1",
            ATHLETE,
        ))
        .expect("event");
        let o = &mut v["data"]["object"];
        o["id"] = json!(invoice);
        o["amount_paid"] = json!(amount);
        o["currency"] = json!("eur");
        o["application_fee_amount"] = fee;
        o["status_transitions"]["paid_at"] = json!(now);
        o["created"] = json!(now);
        o["parent"]["subscription_details"]["metadata"]["chalktalk_program"] = json!(program);
        if invoice == "in_prog_2" {
            // An API version that still names the invoice's payment.
            o["payment_intent"] = json!("pi_in_2");
        }
        let body = v.to_string();
        let r = n.webhook(&body, &sign(&body)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        n.wait_applied(evt).await;
    }
    let r = n.api().get("/api/v1/me/revenue", Some(&n.coach)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let want = json!([{"currency": "eur", "gross": 1998, "fees": 249, "refunded": 0, "disputed": 0,
        "net": 1749, "sales": 2, "refunds": 0, "disputes": 0}]);
    assert_eq!(v["totals"], want, "{v}");
    let per = v["programs"].as_array().expect("programs");
    assert_eq!(per.len(), 1, "{v}");
    assert_eq!(
        (&per[0]["program"], &per[0]["totals"]),
        (&json!(program), &want)
    );
    let store = n.store();
    let o = store
        .order("in_prog_1")
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(
        (o.kind, o.user.as_str(), o.coach.as_str(), o.fee),
        (
            chalktalk_adapters::programs::OrderKind::Invoice,
            ATHLETE,
            super::flows::COACH,
            150
        )
    );
    assert_eq!(store.order("in_prog_trial").await.expect("read"), None);

    // A refunded invoice is a refund in the figures; the program stays
    // open: the subscription, not the invoice, decides.
    let body = refunded("evt_in_r", "pi_in_2");
    let r = n.webhook(&body, &sign(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    n.wait_applied("evt_in_r").await;
    let o = store
        .order("in_prog_2")
        .await
        .expect("read")
        .expect("order");
    assert_eq!(
        o.status,
        chalktalk_adapters::programs::OrderStatus::Refunded
    );
    let v = n
        .api()
        .get("/api/v1/me/revenue", Some(&n.coach))
        .await
        .json();
    assert_eq!(
        v["totals"],
        json!([{"currency": "eur", "gross": 1998, "fees": 150, "refunded": 999, "disputed": 0,
            "net": 849, "sales": 2, "refunds": 1, "disputes": 0}]),
        "{v}"
    );
    let e = n.entitlement(program).await;
    assert_eq!(
        e.status,
        chalktalk_adapters::programs::EntitlementStatus::Active
    );
}
