//! The program and billing part of the `store copy` suite
//! ([`super::copy`]): a source gets one of every record kind of the
//! [`ProgramStore`] and [`crate::billing::BillingStore`] ports per index
//! (a program with items, an entitlement, progress, an order at version 3
//! with a payment, an applied and a pending webhook receipt, a
//! subscription at version 2, a plan override, audit entries, a payout
//! account), and [`same_records`] checks each arrived whole, with the
//! target's lookups by second keys.

use super::billing::subscription;
use super::programs::{program, receipt};
use super::revenue::order;
use crate::billing::{AuditEntry, PayoutAccount, PlanOverride, SubscriptionStatus};
use crate::copy::{Backend, Listing, Summary};
use crate::programs::{Entitlement, EntitlementStatus, ItemProgress, OrderStatus, Source};

/// The user the records of index `i` are about (also an athlete of
/// [`super::copy::fill`]).
pub fn user(tag: &str, i: u64) -> String {
    format!("athlete-{tag}-{i}")
}

/// The coach of the records of index `i`.
pub fn coach(tag: &str, i: u64) -> String {
    format!("coach-{tag}-{i}")
}

/// Fills `store` with the program and billing records of index `i`.
pub async fn fill_records(store: &dyn Backend, tag: &str, i: u64) {
    let (user, coach) = (user(tag, i), coach(tag, i));
    let prog = format!("prog-{tag}-{i}");
    store.put_program(&program(&prog, &coach)).await.unwrap();
    let order_id = format!("order-{tag}-{i}");
    let mut o = order(&order_id, &coach, 1_700_000_000_000 + i);
    o.user = user.clone();
    o.program = prog.clone();
    o.status = OrderStatus::Open;
    o.paid_ms = None;
    assert!(store.put_order(&o).await.unwrap());
    o.version = 2;
    o.status = OrderStatus::Paid;
    o.payment = Some(format!("pi-{tag}-{i}"));
    o.paid_ms = Some(o.created_ms + 5);
    assert!(store.put_order(&o).await.unwrap());
    o.version = 3;
    o.updated_ms += 10;
    assert!(store.put_order(&o).await.unwrap());
    let e = Entitlement {
        user: user.clone(),
        program: prog.clone(),
        source: Source::Purchase,
        status: EntitlementStatus::Active,
        granted_ms: o.created_ms + 6,
        revoked_ms: None,
        reference: Some(order_id),
    };
    store.put_entitlement(&e).await.unwrap();
    for (item, ms) in [("i1", 10), ("i2", 20)] {
        let p = ItemProgress {
            user: user.clone(),
            program: prog.clone(),
            item: item.into(),
            done_ms: o.created_ms + ms,
        };
        store.put_progress(&p).await.unwrap();
    }
    let mut applied = receipt(&format!("evt-{tag}-{i}-applied"), 1_000 + i);
    assert!(store.add_receipt(&applied).await.unwrap());
    applied.applied_ms = Some(2_000 + i);
    store.update_receipt(&applied).await.unwrap();
    let mut pending = receipt(&format!("evt-{tag}-{i}-pending"), 3_000 + i);
    pending.note = Some("waiting for an earlier event".into());
    assert!(store.add_receipt(&pending).await.unwrap());
    let mut s = subscription(&format!("sub-{tag}-{i}"), &user);
    assert!(store.put_subscription(&s).await.unwrap());
    s.version = 2;
    s.status = SubscriptionStatus::PastDue;
    s.past_due_since = Some(1_700_000_100);
    assert!(store.put_subscription(&s).await.unwrap());
    let over = PlanOverride {
        user: user.clone(),
        by: "admin".into(),
        at_ms: 5_000 + i,
        plan: "coach_premium".into(),
    };
    store.set_plan_override(&user, Some(&over)).await.unwrap();
    for (n, action) in [(0, "plan_override_set"), (1, "plan_override_cleared")] {
        let e = AuditEntry {
            id: format!("audit-{tag}-{i}-{n}"),
            subject: user.clone(),
            actor: "admin".into(),
            at_ms: 5_000 + i + n,
            action: action.into(),
            detail: format!("step {n}"),
        };
        store.add_audit(&e).await.unwrap();
    }
    let a = PayoutAccount {
        coach: coach.clone(),
        account: format!("acct-{tag}-{i}"),
        charges_enabled: true,
        payouts_enabled: i.is_multiple_of(2),
        details_submitted: true,
        event_created: 1_700_000_000,
        created_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_000_000 + i,
    };
    store.put_payout_account(&a).await.unwrap();
}

/// Adds what [`fill_records`] puts in a store, `n` indexes, to `s`.
pub fn add_filled(s: &mut Summary, n: u64) {
    s.programs = n;
    // `super::programs::program`'s items.
    s.program_items = n * super::programs::program("p", "c").items.len() as u64;
    s.entitlements = n;
    s.progress = 2 * n;
    s.orders = n;
    s.receipts = 2 * n;
    s.pending_receipts = n;
    s.subscriptions = n;
    s.plan_overrides = n;
    s.audit_entries = 2 * n;
    s.payout_accounts = n;
}

/// Checks that `to` holds the records of index `i` as `from` does, read
/// by each of the ports' reads.
pub async fn same_records(from: &dyn Backend, to: &dyn Backend, tag: &str, i: u64) {
    let (user, coach) = (user(tag, i), coach(tag, i));
    let prog = format!("prog-{tag}-{i}");
    let ours = from.program(&prog).await.unwrap();
    assert_eq!(
        ours.as_ref().map(|p| p.items.len()),
        Some(program("p", "c").items.len())
    );
    assert_eq!(to.program(&prog).await.unwrap(), ours);
    assert_eq!(
        to.programs_of(&coach, 10).await.unwrap(),
        from.programs_of(&coach, 10).await.unwrap()
    );
    let e = from.entitlement(&user, &prog).await.unwrap();
    assert!(e.is_some());
    assert_eq!(to.entitlement(&user, &prog).await.unwrap(), e);
    assert_eq!(
        to.entitlements_to(&prog, 10).await.unwrap(),
        from.entitlements_to(&prog, 10).await.unwrap()
    );
    let p = from.progress(&user, &prog).await.unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(to.progress(&user, &prog).await.unwrap(), p);
    let order_id = format!("order-{tag}-{i}");
    let o = from.order(&order_id).await.unwrap().expect("the order");
    assert_eq!(o.version, 3);
    assert_eq!(to.order(&order_id).await.unwrap().as_ref(), Some(&o));
    let payment = o.payment.clone().expect("a payment");
    assert_eq!(to.order_by_payment(&payment).await.unwrap(), Some(o));
    for which in ["applied", "pending"] {
        let id = format!("evt-{tag}-{i}-{which}");
        let r = from.receipt(&id).await.unwrap();
        assert!(r.is_some());
        assert_eq!(to.receipt(&id).await.unwrap(), r);
    }
    // Applied once: the applied receipt is not pending on the target.
    let pending: Vec<String> = to
        .pending_receipts(1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(
        pending.contains(&format!("evt-{tag}-{i}-pending")),
        "{pending:?}"
    );
    assert!(
        !pending.contains(&format!("evt-{tag}-{i}-applied")),
        "{pending:?}"
    );
    let subs = from.subscriptions_of(&user, 10).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].version, 2);
    assert_eq!(to.subscriptions_of(&user, 10).await.unwrap(), subs);
    let over = from.plan_override(&user).await.unwrap();
    assert!(over.is_some());
    assert_eq!(to.plan_override(&user).await.unwrap(), over);
    let audit = from.audit_of(&user, 10).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(to.audit_of(&user, 10).await.unwrap(), audit);
    let a = from.payout_account(&coach).await.unwrap().expect("payout");
    assert_eq!(to.payout_account(&coach).await.unwrap().as_ref(), Some(&a));
    assert_eq!(to.payout_account_by_id(&a.account).await.unwrap(), Some(a));
}

/// Every listing of `store`, read a page of one and of two ids at a time,
/// gives the ids of one read, ascending and distinct (the cursors of the
/// pair and distinct listings continue where the page stopped).
pub async fn pages_continue(store: &dyn Backend) {
    for what in Listing::ALL {
        let all = store.list(what, "", 100_000).await.unwrap();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{what:?}: {all:?}");
        for limit in [1, 2] {
            let mut paged = Vec::new();
            let mut after = String::new();
            loop {
                let page = store.list(what, &after, limit).await.unwrap();
                assert!(page.len() <= limit, "{what:?}");
                let Some(last) = page.last().cloned() else {
                    break;
                };
                paged.extend(page);
                after = last;
            }
            assert_eq!(paged, all, "{what:?} by {limit}");
        }
    }
}
