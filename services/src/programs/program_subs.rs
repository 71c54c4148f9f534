//! Subscriptions to a training program's own monthly or yearly price
//! (issue 12): the subscription's record ([`PaidPlan::Program`], written
//! by `super::subscribe` from its events like any subscription) decides
//! the buyer's entitlement to that program.
//!
//! - [`ProgramService::sync_program_access`], after every applied
//!   subscription or invoice event: a subscription in force
//!   (`super::plans::in_force`: trialing, active, past due within the
//!   grace, before a scheduled end) grants an entitlement (source
//!   `subscription`, reference the subscription id) if none is active; one
//!   that is not revokes the entitlement it granted.
//! - [`ProgramService::entitlement_live`], at every read that opens a
//!   program's content: an entitlement granted by a subscription counts
//!   only while that subscription is in force *now*, so the end of the
//!   grace or of a period canceled at its end closes the program without
//!   waiting for Stripe's next event.

use chalktalk_actors::store::StoreError;
use chalktalk_adapters::billing::{PaidPlan, Subscription};
use chalktalk_adapters::programs::{Entitlement, EntitlementStatus, Source};

use super::plans::{in_force, now_secs};
use super::{ProgramError, ProgramService, now_ms};

/// Does `s` open its program at `now` (seconds)?
fn opens(s: &Subscription, now: i64, grace_secs: u64) -> bool {
    s.plan == PaidPlan::Program && s.program.is_some() && in_force(s, now, grace_secs)
}

impl ProgramService {
    /// Brings the entitlement of subscription `id`'s user to its program
    /// in line with the subscription's stored state (nothing for a plan's
    /// subscription).
    pub(crate) async fn sync_program_access(&self, id: &str) -> Result<(), ProgramError> {
        let Some(s) = self.store.subscription(id).await? else {
            return Ok(());
        };
        let Some(program) = s.program.clone().filter(|_| s.plan == PaidPlan::Program) else {
            return Ok(());
        };
        let current = self.store.entitlement(&s.user, &program).await?;
        let active = current
            .as_ref()
            .is_some_and(|e| e.status == EntitlementStatus::Active);
        if opens(&s, now_secs(), self.billing.past_due_grace_secs) {
            if !active {
                self.store
                    .put_entitlement(&Entitlement {
                        user: s.user.clone(),
                        program,
                        source: Source::Subscription,
                        status: EntitlementStatus::Active,
                        granted_ms: now_ms(),
                        revoked_ms: None,
                        reference: Some(s.id.clone()),
                    })
                    .await?;
                tracing::info!(subscription = %s.id, user = %s.user, "program opened by its subscription");
            }
        } else if let Some(mut e) = current.filter(|e| {
            e.status == EntitlementStatus::Active && e.reference.as_deref() == Some(s.id.as_str())
        }) {
            e.status = EntitlementStatus::Revoked;
            e.revoked_ms = Some(now_ms());
            self.store.put_entitlement(&e).await?;
            tracing::info!(subscription = %s.id, user = %s.user, status = ?s.status, "program closed with its subscription");
        }
        Ok(())
    }

    /// Does `e` open its program now? An active entitlement does, unless a
    /// subscription granted it and is no longer in force.
    pub(crate) async fn entitlement_live(&self, e: &Entitlement) -> Result<bool, StoreError> {
        if e.status != EntitlementStatus::Active {
            return Ok(false);
        }
        if e.source != Source::Subscription {
            return Ok(true);
        }
        let Some(id) = e.reference.as_deref() else {
            return Ok(true);
        };
        Ok(match self.store.subscription(id).await? {
            Some(s) => opens(&s, now_secs(), self.billing.past_due_grace_secs),
            // Granted by an admin naming no stored subscription.
            None => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use chalktalk_adapters::billing::SubscriptionStatus;

    use super::*;

    fn sub(plan: PaidPlan, program: Option<&str>, status: SubscriptionStatus) -> Subscription {
        let mut s = crate::programs::plans::tests::sub(plan, status);
        s.program = program.map(str::to_owned);
        s.current_period_end = Some(2_000);
        s
    }

    #[test]
    fn a_program_opens_while_its_subscription_is_in_force() {
        use SubscriptionStatus::*;
        let grace = 100;
        assert!(opens(
            &sub(PaidPlan::Program, Some("p"), Active),
            1_000,
            grace
        ));
        assert!(opens(
            &sub(PaidPlan::Program, Some("p"), Trialing),
            1_000,
            grace
        ));
        assert!(!opens(
            &sub(PaidPlan::Program, Some("p"), Canceled),
            1_000,
            grace
        ));
        assert!(!opens(
            &sub(PaidPlan::Program, Some("p"), Unpaid),
            1_000,
            grace
        ));
        // A plan's subscription opens no program, nor one without program.
        assert!(!opens(
            &sub(PaidPlan::AthletePaid, Some("p"), Active),
            1_000,
            grace
        ));
        assert!(!opens(&sub(PaidPlan::Program, None, Active), 1_000, grace));
        // Past due: within the grace only.
        let mut s = sub(PaidPlan::Program, Some("p"), PastDue);
        s.past_due_since = Some(1_000);
        assert!(opens(&s, 1_099, grace));
        assert!(!opens(&s, 1_100, grace));
        // Canceled at the period's end: open until then.
        let mut s = sub(PaidPlan::Program, Some("p"), Active);
        s.cancel_at_period_end = true;
        assert!(opens(&s, 1_999, grace));
        assert!(!opens(&s, 2_000, grace));
    }
}
