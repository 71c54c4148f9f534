//! Counting and verifying the records of the program and billing ports
//! (the part of [`super::summarize`] for what `records.rs` copies): each
//! record of the source is read whole from the target too and must be
//! equal, and the target's lookups by a second key (an order by its
//! payment, a payout account by its Stripe id) must find it.

use super::records::{AUDIT_ALL, parts};
use super::run::CopyError;
use super::summary::{differs, read};
use super::{Backend, Listing, Summary, Target};

/// Counts the record(s) `id` of `what` (one of the program and billing
/// listings) and, with `check`, verifies that `check` holds them equal.
pub(super) async fn count_record(
    s: &mut Summary,
    from: &dyn Backend,
    check: Option<&dyn Target>,
    what: Listing,
    id: &str,
) -> Result<(), CopyError> {
    let r = |w: &str| read(format!("{w} {id}"));
    match what {
        Listing::Programs => {
            let ours = from.program(id).await.map_err(r("program"))?;
            s.programs += u64::from(ours.is_some());
            s.program_items += ours.as_ref().map_or(0, |p| p.items.len() as u64);
            if let Some(to) = check
                && to.program(id).await.map_err(r("program"))? != ours
            {
                return Err(differs(format!("program {id}")));
            }
        }
        Listing::Entitlements => {
            let (user, program) = parts("entitlement", id)?;
            let w = format!("the entitlement of {user} to {program}");
            let ours = from
                .entitlement(user, program)
                .await
                .map_err(read(w.clone()))?;
            s.entitlements += u64::from(ours.is_some());
            if let Some(to) = check
                && to
                    .entitlement(user, program)
                    .await
                    .map_err(read(w.clone()))?
                    != ours
            {
                return Err(differs(w));
            }
        }
        Listing::Progress => {
            let (user, program) = parts("progress", id)?;
            let w = format!("the progress of {user} in {program}");
            let ours = from
                .progress(user, program)
                .await
                .map_err(read(w.clone()))?;
            s.progress += ours.len() as u64;
            if let Some(to) = check
                && to.progress(user, program).await.map_err(read(w.clone()))? != ours
            {
                return Err(differs(w));
            }
        }
        Listing::Orders => {
            let ours = from.order(id).await.map_err(r("order"))?;
            s.orders += u64::from(ours.is_some());
            if let Some(to) = check {
                let by_payment = match ours.as_ref().and_then(|o| o.payment.as_deref()) {
                    Some(p) => to.order_by_payment(p).await.map_err(r("order"))? == ours,
                    None => true,
                };
                if !by_payment || to.order(id).await.map_err(r("order"))? != ours {
                    return Err(differs(format!("order {id}")));
                }
            }
        }
        Listing::Receipts => {
            let ours = from.receipt(id).await.map_err(r("receipt"))?;
            s.receipts += u64::from(ours.is_some());
            s.pending_receipts += u64::from(ours.as_ref().is_some_and(|x| x.applied_ms.is_none()));
            if let Some(to) = check
                && to.receipt(id).await.map_err(r("receipt"))? != ours
            {
                return Err(differs(format!("receipt {id}")));
            }
        }
        Listing::Subscriptions => {
            let ours = from.subscription(id).await.map_err(r("subscription"))?;
            s.subscriptions += u64::from(ours.is_some());
            if let Some(to) = check
                && to.subscription(id).await.map_err(r("subscription"))? != ours
            {
                return Err(differs(format!("subscription {id}")));
            }
        }
        Listing::PlanOverrides => {
            let ours = from.plan_override(id).await.map_err(r("plan override"))?;
            s.plan_overrides += u64::from(ours.is_some());
            if let Some(to) = check
                && to.plan_override(id).await.map_err(r("plan override"))? != ours
            {
                return Err(differs(format!("the plan override of {id}")));
            }
        }
        Listing::Audits => {
            let ours = from.audit_of(id, AUDIT_ALL).await.map_err(r("audit"))?;
            s.audit_entries += ours.len() as u64;
            if let Some(to) = check
                && to.audit_of(id, AUDIT_ALL).await.map_err(r("audit"))? != ours
            {
                return Err(differs(format!("the billing audit of {id}")));
            }
        }
        Listing::PayoutAccounts => {
            let ours = from.payout_account(id).await.map_err(r("payout account"))?;
            s.payout_accounts += u64::from(ours.is_some());
            if let Some(to) = check {
                let by_id = match ours.as_ref() {
                    Some(a) => {
                        to.payout_account_by_id(&a.account)
                            .await
                            .map_err(r("payout account"))?
                            == ours
                    }
                    None => true,
                };
                if !by_id || to.payout_account(id).await.map_err(r("payout account"))? != ours {
                    return Err(differs(format!("the payout account of {id}")));
                }
            }
        }
        Listing::Rooms
        | Listing::Threads
        | Listing::Inboxes
        | Listing::Members
        | Listing::Assets
        | Listing::Jobs => {}
    }
    Ok(())
}
