//! The conformance suite every [`BillingStore`] adapter must pass, written
//! only against the trait (random ids: it runs against a shared store).

use std::sync::Arc;

use super::store::unique;
use crate::billing::{
    AuditEntry, BillingStore, PaidPlan, PayoutAccount, PlanOverride, Subscription,
    SubscriptionStatus,
};

/// Runs every check, one after another.
pub async fn run_all<S: BillingStore + ?Sized>(store: Arc<S>) {
    subscriptions(&*store).await;
    overrides(&*store).await;
    audit(&*store).await;
    payouts(&*store).await;
    super::revenue::subscriptions(&*store).await;
}

async fn payouts<S: BillingStore + ?Sized>(store: &S) {
    let (coach, acct) = (unique("c"), unique("acct"));
    assert_eq!(store.payout_account(&coach).await.unwrap(), None);
    assert_eq!(store.payout_account_by_id(&acct).await.unwrap(), None);
    let mut a = PayoutAccount {
        coach: coach.clone(),
        account: acct.clone(),
        charges_enabled: false,
        payouts_enabled: false,
        details_submitted: false,
        event_created: 0,
        created_ms: 1,
        updated_ms: 1,
    };
    assert!(!a.payable());
    store.put_payout_account(&a).await.unwrap();
    assert_eq!(store.payout_account(&coach).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.payout_account_by_id(&acct).await.unwrap(),
        Some(a.clone())
    );
    a.charges_enabled = true;
    a.payouts_enabled = true;
    a.event_created = 9;
    store.put_payout_account(&a).await.unwrap();
    let got = store
        .payout_account_by_id(&acct)
        .await
        .unwrap()
        .expect("stored");
    assert!(got.payable());
    assert_eq!(got, a);
}

/// An active subscription `id` of `user` (version 1).
pub fn subscription(id: &str, user: &str) -> Subscription {
    Subscription {
        id: id.into(),
        user: user.into(),
        customer: Some("cus_1".into()),
        plan: PaidPlan::CoachPremium,
        program: None,
        status: SubscriptionStatus::Active,
        current_period_end: Some(1_700_086_400),
        cancel_at_period_end: false,
        cancel_at: None,
        past_due_since: None,
        event_created: 1_700_000_000,
        amount: 2900,
        currency: "eur".into(),
        created_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_000_000,
        version: 1,
    }
}

async fn subscriptions<S: BillingStore + ?Sized>(store: &S) {
    let user = unique("u");
    let (a, b) = (unique("sub_a"), unique("sub_b"));
    assert_eq!(store.subscription(&a).await.unwrap(), None);
    assert!(store.subscriptions_of(&user, 10).await.unwrap().is_empty());
    let s1 = subscription(&a, &user);
    assert!(store.put_subscription(&s1).await.unwrap());
    assert!(
        !store.put_subscription(&s1).await.unwrap(),
        "version 1 twice"
    );
    let mut s2 = s1.clone();
    s2.version = 2;
    s2.status = SubscriptionStatus::PastDue;
    s2.past_due_since = Some(1_700_000_500);
    let mut skip = s2.clone();
    skip.version = 3;
    assert!(!store.put_subscription(&skip).await.unwrap(), "a gap");
    assert!(store.put_subscription(&s2).await.unwrap());
    assert!(!store.put_subscription(&s2).await.unwrap(), "stale");
    assert_eq!(store.subscription(&a).await.unwrap(), Some(s2.clone()));
    // A program's subscription keeps its program.
    let mut other = subscription(&b, &user);
    other.plan = PaidPlan::Program;
    other.program = Some("pg-1".into());
    other.status = SubscriptionStatus::Canceled;
    assert!(store.put_subscription(&other).await.unwrap());
    let mut want = vec![s2, other];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.subscriptions_of(&user, 10).await.unwrap(), want);
    assert_eq!(store.subscriptions_of(&user, 1).await.unwrap().len(), 1);
}

async fn overrides<S: BillingStore + ?Sized>(store: &S) {
    let user = unique("u");
    assert_eq!(store.plan_override(&user).await.unwrap(), None);
    let o = PlanOverride {
        user: user.clone(),
        by: "admin-1".into(),
        at_ms: 5,
        plan: "coach_premium".into(),
    };
    store.set_plan_override(&user, Some(&o)).await.unwrap();
    assert_eq!(store.plan_override(&user).await.unwrap(), Some(o.clone()));
    let mut o2 = o.clone();
    o2.plan = "coach_basic".into();
    store.set_plan_override(&user, Some(&o2)).await.unwrap();
    assert_eq!(store.plan_override(&user).await.unwrap(), Some(o2));
    store.set_plan_override(&user, None).await.unwrap();
    assert_eq!(store.plan_override(&user).await.unwrap(), None);
    // Clearing what is not there is fine.
    store.set_plan_override(&user, None).await.unwrap();
}

async fn audit<S: BillingStore + ?Sized>(store: &S) {
    let subject = unique("u");
    let entry = |id: &str, at_ms: u64| AuditEntry {
        id: id.into(),
        subject: subject.clone(),
        actor: "admin-1".into(),
        at_ms,
        action: "plan_override_set".into(),
        detail: format!("entry {id}"),
    };
    let (late, early, tie) = (entry("e-b", 20), entry("e-z", 10), entry("e-a", 20));
    for e in [&late, &early, &tie] {
        store.add_audit(e).await.unwrap();
    }
    assert_eq!(
        store.audit_of(&subject, 10).await.unwrap(),
        vec![early.clone(), tie.clone(), late.clone()]
    );
    assert_eq!(store.audit_of(&subject, 1).await.unwrap(), vec![early]);
    assert!(store.audit_of(&unique("u"), 10).await.unwrap().is_empty());
}
