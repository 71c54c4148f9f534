//! The subscription lifecycle changing the matrix row live, on REST and
//! on an open WebSocket: against localstripe (a real subscription created,
//! paid and deleted there, its own signed webhooks delivered to the node)
//! and with signed fixtures for what localstripe cannot produce (trialing,
//! past_due with its grace period, cancel at period end, events out of
//! order, replays, a bad signature); admin overrides, audited.

use serde_json::json;

use super::stripe::{FakeStripe, LocalStripe, WEBHOOK_SECRET, invoice_event, subscription_event};
use super::subscriptions::{PRICE_ATHLETE, PRICE_BASIC, PRICE_PREMIUM, Subs, now};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_in_localstripe_drives_the_matrix_live() {
    let ls = LocalStripe::start().await;
    let fake = FakeStripe::start(Some(ls.addr)).await;
    let s = Subs::start(&fake, 3600).await;
    let ws = s.ws().await;
    s.athlete_is(&ws, false).await;

    // Subscribing opens a Checkout Session in subscription mode to the
    // configured price (the fake answers it: localstripe has none).
    let r = s.checkout(&s.athlete.1, "athlete_paid").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
    let seen = fake.seen();
    let req = seen
        .iter()
        .find(|x| x.path == "/v1/checkout/sessions")
        .expect("a checkout session");
    let field = |k: &str| {
        req.form
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("mode"), Some("subscription"));
    assert_eq!(field("line_items[0][price]"), Some(PRICE_ATHLETE));
    assert_eq!(
        field("subscription_data[metadata][chalktalk_user]"),
        Some(s.athlete.0.as_str())
    );
    assert!(
        req.idempotency_key
            .as_deref()
            .is_some_and(|k| k.starts_with("subscribe-"))
    );

    // What completing that Checkout does in Stripe, done in localstripe:
    // its signed webhooks reach the node.
    let hook = crate::common::client::send(
        ls.addr,
        "POST",
        "/_config/webhooks/chalktalk",
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        format!(
            "url={}/api/v1/webhooks/stripe&secret={WEBHOOK_SECRET}",
            s.http()
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(hook.status, 200, "{}", hook.text());
    ls.post(
        "/v1/plans",
        &format!("id={PRICE_ATHLETE}&amount=900&currency=eur&interval=month&product[name]=Athlete"),
    )
    .await;
    let cus = ls
        .post(
            "/v1/customers",
            "payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
        )
        .await;
    let cus = cus["id"].as_str().expect("customer").to_string();
    let sub = ls
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={cus}&items[0][plan]={PRICE_ATHLETE}&metadata[chalktalk_user]={}",
                s.athlete.0
            ),
        )
        .await;
    assert_eq!(sub["status"], "active", "{sub}");
    let sub_id = sub["id"].as_str().expect("sub").to_string();
    s.athlete_is(&ws, true).await;
    let mine = s.mine(&s.athlete.1).await;
    assert_eq!(mine["subscriptions"][0]["id"], sub_id.as_str());
    assert_eq!(mine["subscriptions"][0]["amount"], 900);
    assert_eq!(mine["subscriptions"][0]["currency"], "eur");
    // Subscribing again to a plan in force is refused.
    let again = s.checkout(&s.athlete.1, "athlete_paid").await;
    assert_eq!(
        (again.status, again.json()["error"].clone()),
        (409, json!("already_subscribed"))
    );

    // Canceled in Stripe: back to the free row, on the same connection.
    let del = crate::common::client::send(
        ls.addr,
        "DELETE",
        &format!("/v1/subscriptions/{sub_id}"),
        &[("Authorization", "Bearer sk_test_chalktalk".to_string())],
        Vec::new(),
    )
    .await;
    assert_eq!(del.status, 200, "{}", del.text());
    s.athlete_is(&ws, false).await;
    let mine = s.mine(&s.athlete.1).await;
    assert_eq!(mine["subscriptions"][0]["status"], "canceled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_past_due_grace_and_cancel_at_period_end_with_fixtures() {
    let fake = FakeStripe::start(None).await;
    fixture_lifecycle(&Subs::start(&fake, 2).await).await;
}

/// Trialing, active, an older state late, a replay, a bad signature, a
/// failed renewal within and past the 2 s grace period, paid again, and
/// a cancel at the period's end, on the node of `s` (grace 2 s).
pub async fn fixture_lifecycle(s: &Subs) {
    let (me, sub) = (s.athlete.0.clone(), "sub_fixture_athlete");
    let ws = s.ws().await;
    s.athlete_is(&ws, false).await;
    let t = now();
    let ev = |id: &str, kind: &str, at: i64, status: &str, extra| {
        subscription_event(id, kind, at, (sub, &me, PRICE_ATHLETE), status, extra)
    };

    // Trialing gives the plan.
    let trial = ev("evt_s1", "created", t - 100, "trialing", json!({}));
    assert_eq!(s.webhook(&trial).await.status, 200);
    s.athlete_is(&ws, true).await;
    // Active, then an OLDER state delivered late (unpaid): ignored.
    let active = ev("evt_s2", "updated", t - 50, "active", json!({}));
    let stale = ev("evt_s0", "updated", t - 80, "unpaid", json!({}));
    s.deliver(&active).await;
    s.deliver(&stale).await;
    // A replay is acknowledged as a duplicate and applied once.
    let replay = s.webhook(&trial).await;
    assert_eq!(replay.json()["duplicate"], true);
    s.athlete_is(&ws, true).await;
    let mine = s.mine(&s.athlete.1).await;
    assert_eq!(mine["subscriptions"][0]["status"], "active", "{mine}");
    // A bad signature: 400, nothing stored.
    let forged = ev("evt_forged", "deleted", t, "canceled", json!({}));
    let r = s
        .api()
        .req(
            "POST",
            "/api/v1/webhooks/stripe",
            None,
            &[("Stripe-Signature", "t=1,v1=00".into())],
            Some(forged.into_bytes()),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("bad_signature"))
    );

    // A renewal fails: past due keeps the plan for the grace period (2 s),
    // then the free row; paid again, the plan is back.
    let failed = invoice_event("evt_i1", "payment_failed", t, sub, &me);
    s.deliver(&failed).await;
    let mine = s.mine(&s.athlete.1).await;
    assert_eq!(
        mine["plan"], "athlete_paid",
        "within the grace period: {mine}"
    );
    assert_eq!(mine["subscriptions"][0]["status"], "past_due", "{mine}");
    s.athlete_is(&ws, false).await;
    let paid = invoice_event("evt_i2", "paid", t + 1, sub, &me);
    assert_eq!(s.webhook(&paid).await.status, 200);
    s.athlete_is(&ws, true).await;

    // Canceled at the period's end (3 s from now): kept until then.
    let end = now() + 3;
    let cancel = ev(
        "evt_s3",
        "updated",
        t + 2,
        "active",
        json!({"cancel_at_period_end": true, "items": {"object": "list", "data": [{"id": "si_1", "current_period_end": end, "price": {"id": PRICE_ATHLETE, "unit_amount": 900, "currency": "eur"}}]}}),
    );
    assert_eq!(s.webhook(&cancel).await.status, 200);
    s.athlete_is(&ws, true).await;
    assert!(now() < end, "the test was too slow to see the plan kept");
    s.athlete_is(&ws, false).await;
    assert!(now() >= end);
}

/// The coach's trial is Stripe's: a new coach is on the basic row, their
/// first plan checkout asks Stripe for `coach_trial_days` of trial, the
/// `trialing` subscription gives premium and its end takes it back; a
/// later checkout, and an athlete's, have no trial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coachs_trial_is_a_stripe_trial() {
    let fake = FakeStripe::start(None).await;
    let s = Subs::start(&fake, 3600).await;
    let coach = s.coach.0.clone();
    s.wait_plan(&s.coach.1, "coach_basic").await;
    let trial_days = |fake: &FakeStripe| {
        let seen = fake.seen();
        let session = seen
            .iter()
            .rfind(|r| r.path == "/v1/checkout/sessions")
            .expect("a checkout session")
            .clone();
        session
            .form
            .iter()
            .find(|(k, _)| k == "subscription_data[trial_period_days]")
            .map(|(_, v)| v.clone())
    };
    let r = s.checkout(&s.coach.1, "coach_premium").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(trial_days(&fake).as_deref(), Some("14"));
    let ev = |id: &str, kind: &str, at: i64, status: &str| {
        subscription_event(
            id,
            kind,
            at,
            ("sub_trial_coach", &coach, PRICE_PREMIUM),
            status,
            json!({}),
        )
    };
    s.deliver(&ev("evt_t1", "created", now() - 10, "trialing"))
        .await;
    s.wait_plan(&s.coach.1, "coach_premium").await;
    s.deliver(&ev("evt_t2", "deleted", now() - 5, "canceled"))
        .await;
    s.wait_plan(&s.coach.1, "coach_basic").await;
    // Once is enough: the next checkout has no trial.
    let r = s.checkout(&s.coach.1, "coach_premium").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(trial_days(&fake), None);
    let r = s.checkout(&s.athlete.1, "athlete_paid").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(trial_days(&fake), None, "athletes have no trial");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_override_wins_until_removed_and_is_audited() {
    let fake = FakeStripe::start(None).await;
    override_audited(&Subs::start(&fake, 3600).await).await;
}

/// A coach's basic subscription, an admin's override to premium, its
/// removal, and the audit log, on the node of `s`.
pub async fn override_audited(s: &Subs) {
    let (coach, sub) = (s.coach.0.clone(), "sub_fixture_coach");
    // A new coach on a node with Stripe is on the basic row (no trial by
    // account age: `a_coachs_trial_is_a_stripe_trial`).
    s.wait_plan(&s.coach.1, "coach_basic").await;
    let basic = subscription_event(
        "evt_c1",
        "created",
        now(),
        (sub, &coach, PRICE_BASIC),
        "active",
        json!({}),
    );
    assert_eq!(s.webhook(&basic).await.status, 200);
    s.wait_plan(&s.coach.1, "coach_basic").await;

    let admin = Some(s.admin.1.as_str());
    let r = s
        .api()
        .req(
            "PUT",
            &format!("/api/v1/admin/users/{coach}/plan"),
            admin,
            &[],
            Some(
                json!({"role": "coach", "subscription": "active"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.wait_plan(&s.coach.1, "coach_premium").await;
    assert_eq!(s.mine(&s.coach.1).await["overridden"], true);
    // Not an admin: no billing of others.
    let path = format!("/api/v1/admin/users/{coach}/billing");
    assert_eq!(s.api().get(&path, Some(&s.coach.1)).await.status, 403);
    let r = s
        .api()
        .req(
            "DELETE",
            &format!("/api/v1/admin/users/{coach}/plan/override"),
            admin,
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    s.wait_plan(&s.coach.1, "coach_basic").await;
    let again = s
        .api()
        .req(
            "DELETE",
            &format!("/api/v1/admin/users/{coach}/plan/override"),
            admin,
            &[],
            None,
        )
        .await;
    assert_eq!(
        (again.status, again.json()["error"].clone()),
        (404, json!("no_override"))
    );
    let b = s.api().get(&path, admin).await.json();
    let audit = b["audit"].as_array().expect("audit");
    let actions: Vec<&str> = audit.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["plan_override_set", "plan_override_cleared"],
        "{b}"
    );
    assert_eq!(audit[0]["actor"], s.admin.0.as_str());
    assert_eq!(audit[0]["detail"], "coach_basic -> coach_premium");
    assert_eq!(b["plan"], "coach_basic");
    // A plan for another role, or without a price: refused.
    let r = s.checkout(&s.coach.1, "athlete_paid").await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (422, json!("validation_failed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_applies_events_the_webhook_never_delivered() {
    // localstripe with no webhook endpoint: its events are only listed.
    let ls = LocalStripe::start().await;
    let fake = FakeStripe::start(Some(ls.addr)).await;
    let s = Subs::start(&fake, 3600).await;
    ls.post(
        "/v1/plans",
        &format!("id={PRICE_ATHLETE}&amount=900&currency=eur&interval=month&product[name]=Athlete"),
    )
    .await;
    let cus = ls
        .post(
            "/v1/customers",
            "payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
        )
        .await;
    let cus = cus["id"].as_str().expect("customer").to_string();
    let sub = ls
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={cus}&items[0][plan]={PRICE_ATHLETE}&metadata[chalktalk_user]={}",
                s.athlete.0
            ),
        )
        .await;
    assert_eq!(sub["status"], "active", "{sub}");
    let svc = s.app.programs.clone().expect("programs");
    // localstripe records an event once its webhook task ran (about 1 s).
    let mut dry = Default::default();
    for _ in 0..100 {
        dry = svc.backfill(false, 1000).await.expect("dry run");
        let kinds: Vec<&str> = dry.missing.iter().map(|m| m.kind.as_str()).collect();
        if kinds.contains(&"customer.subscription.created") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        dry.missing
            .iter()
            .any(|m| m.kind == "customer.subscription.created"),
        "{dry:?}"
    );
    assert_eq!(dry.stored, 0);
    s.wait_plan(&s.athlete.1, "athlete_free").await;
    let done = svc.backfill(true, 1000).await.expect("apply");
    assert_eq!(done.stored, done.missing.len());
    assert!(done.stored >= dry.missing.len(), "{done:?}");
    s.wait_plan(&s.athlete.1, "athlete_paid").await;
    let again = svc.backfill(true, 1000).await.expect("again");
    assert!(again.missing.is_empty(), "{again:?}");
    assert_eq!(again.stored, 0);
}
