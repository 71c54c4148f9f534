//! Copying the records of the program and billing ports
//! ([`crate::programs::ProgramStore`], [`crate::billing::BillingStore`]):
//! programs, entitlements, progress, orders, webhook receipts,
//! subscriptions, plan overrides, audit entries and payout accounts, one
//! listed id at a time, through the target's ports.
//!
//! Each record is written only where the target's differs, so a second
//! run writes nothing. Orders and subscriptions are stored by their ports
//! only over the version before theirs: the copy writes the source's
//! record at each version after the target's up to the source's (a fresh
//! target: 1, 2, ... n), so the target ends with the same record and
//! version, and an interrupted copy continues where it stopped. Receipts
//! keep their `applied_ms` and `note`: an event applied on the source is
//! applied on the target (never again), a pending one stays pending.

use super::run::{CopyError, read, write};
use super::{Backend, Listing, Target, unpair};

/// More audit entries than one subject ever has (the port reads a
/// subject's entries in one call).
pub(super) const AUDIT_ALL: usize = usize::MAX;

/// The (user, program) of a pair id, or `Differs` for a listing that gave
/// something else.
pub(super) fn parts<'a>(what: &str, id: &'a str) -> Result<(&'a str, &'a str), CopyError> {
    match unpair(id) {
        (a, Some(b)) => Ok((a, b)),
        (_, None) => Err(CopyError::Differs(format!(
            "the source listed {what} {id:?}, not a (user, program) pair"
        ))),
    }
}

/// Copies the record(s) `id` of `what` (one of the program and billing
/// listings).
pub(super) async fn copy_record(
    from: &dyn Backend,
    to: &dyn Target,
    what: Listing,
    id: &str,
) -> Result<(), CopyError> {
    let w = |kind: &str| format!("{kind} {id}");
    match what {
        Listing::Programs => {
            let Some(p) = from.program(id).await.map_err(read(w("program")))? else {
                return Ok(());
            };
            if to.program(id).await.map_err(read(w("program")))? != Some(p.clone()) {
                to.put_program(&p).await.map_err(write(w("program")))?;
            }
        }
        Listing::Entitlements => {
            let (user, program) = parts("entitlement", id)?;
            let w = || format!("the entitlement of {user} to {program}");
            let Some(e) = from.entitlement(user, program).await.map_err(read(w()))? else {
                return Ok(());
            };
            if to.entitlement(user, program).await.map_err(read(w()))? != Some(e.clone()) {
                to.put_entitlement(&e).await.map_err(write(w()))?;
            }
        }
        Listing::Progress => {
            let (user, program) = parts("progress", id)?;
            let w = || format!("the progress of {user} in {program}");
            let theirs = to.progress(user, program).await.map_err(read(w()))?;
            for p in from.progress(user, program).await.map_err(read(w()))? {
                if !theirs.contains(&p) {
                    to.put_progress(&p).await.map_err(write(w()))?;
                }
            }
        }
        Listing::Orders => {
            let Some(o) = from.order(id).await.map_err(read(w("order")))? else {
                return Ok(());
            };
            let theirs = to.order(id).await.map_err(read(w("order")))?;
            if theirs.as_ref() != Some(&o) {
                let at = theirs.map(|t| (t.version, t == o));
                for version in steps(&w("order"), o.version, at)? {
                    let step = crate::programs::Order {
                        version,
                        ..o.clone()
                    };
                    if !to.put_order(&step).await.map_err(write(w("order")))? {
                        return Err(raced(&w("order")));
                    }
                }
            }
        }
        Listing::Receipts => {
            let Some(r) = from.receipt(id).await.map_err(read(w("receipt")))? else {
                return Ok(());
            };
            if !to.add_receipt(&r).await.map_err(write(w("receipt")))?
                && to.receipt(id).await.map_err(read(w("receipt")))? != Some(r.clone())
            {
                to.update_receipt(&r).await.map_err(write(w("receipt")))?;
            }
        }
        Listing::Subscriptions => {
            let Some(s) = from
                .subscription(id)
                .await
                .map_err(read(w("subscription")))?
            else {
                return Ok(());
            };
            let theirs = to.subscription(id).await.map_err(read(w("subscription")))?;
            if theirs.as_ref() != Some(&s) {
                let at = theirs.map(|t| (t.version, t == s));
                for version in steps(&w("subscription"), s.version, at)? {
                    let step = crate::billing::Subscription {
                        version,
                        ..s.clone()
                    };
                    let stored = to
                        .put_subscription(&step)
                        .await
                        .map_err(write(w("subscription")))?;
                    if !stored {
                        return Err(raced(&w("subscription")));
                    }
                }
            }
        }
        Listing::PlanOverrides => {
            let w = || format!("the plan override of {id}");
            let Some(o) = from.plan_override(id).await.map_err(read(w()))? else {
                return Ok(());
            };
            if to.plan_override(id).await.map_err(read(w()))? != Some(o.clone()) {
                to.set_plan_override(id, Some(&o))
                    .await
                    .map_err(write(w()))?;
            }
        }
        Listing::Audits => {
            let w = || format!("the billing audit of {id}");
            let theirs = to.audit_of(id, AUDIT_ALL).await.map_err(read(w()))?;
            for e in from.audit_of(id, AUDIT_ALL).await.map_err(read(w()))? {
                if !theirs.contains(&e) {
                    to.add_audit(&e).await.map_err(write(w()))?;
                }
            }
        }
        Listing::PayoutAccounts => {
            let w = || format!("the payout account of {id}");
            let Some(a) = from.payout_account(id).await.map_err(read(w()))? else {
                return Ok(());
            };
            if to.payout_account(id).await.map_err(read(w()))? != Some(a.clone()) {
                to.put_payout_account(&a).await.map_err(write(w()))?;
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

/// The versions to write so the target's record (at `at`: its version,
/// and whether it equals the source's) reaches the source's `version`.
fn steps(
    what: &str,
    version: u64,
    at: Option<(u64, bool)>,
) -> Result<std::ops::RangeInclusive<u64>, CopyError> {
    if version == 0 {
        return Err(CopyError::Differs(format!(
            "{what} has version 0, which no store writes"
        )));
    }
    let theirs = match at {
        None => 0,
        Some((v, same)) if v < version || (same && v == version) => v,
        Some((v, _)) => {
            return Err(CopyError::Differs(format!(
                "the target has another {what} at version {v} (the source's: {version})"
            )));
        }
    };
    Ok(theirs + 1..=version)
}

/// The target refused a version step: something else writes it.
fn raced(what: &str) -> CopyError {
    CopyError::Differs(format!(
        "the target refused {what} at the next version (is a node writing to it?)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_continue_after_the_targets_version() {
        assert_eq!(steps("o", 3, None).unwrap(), 1..=3);
        assert_eq!(steps("o", 3, Some((1, false))).unwrap(), 2..=3);
        assert!(steps("o", 3, Some((3, true))).unwrap().is_empty());
        assert!(steps("o", 3, Some((3, false))).is_err());
        assert!(steps("o", 3, Some((4, false))).is_err());
        assert!(steps("o", 0, None).is_err());
    }

    #[test]
    fn pairs_split_back() {
        let id = super::super::pair("u", "p");
        assert_eq!(parts("entitlement", &id).unwrap(), ("u", "p"));
        assert!(parts("entitlement", "u").is_err());
    }
}
