//! The plan a user's subscriptions give (issue 12): [`in_force`] and
//! [`plan_from`] are pure; [`ProgramService::billed_plan`] loads the
//! records and is asked by `Permissions::plan_of` (so REST routes and the
//! WebSocket guard, which both decide with the account's live plan, see a
//! change at their next request or guarded frame).
//!
//! Rules: a subscription that is `trialing` or `active` gives its plan;
//! `past_due` keeps it for the grace period (`past_due_grace_secs`) from
//! the moment it became past due; `canceled`, `unpaid`, `incomplete`,
//! `paused` and unknown statuses give nothing; `cancel_at_period_end`
//! ends it at `current_period_end`, `cancel_at` at that time. Of the
//! subscriptions in force whose plan fits the role, the best wins
//! (premium over basic). A user with subscription records but none in
//! force is on the free row: `athlete_free`, and for coaches `coach_basic`
//! (the matrix has no coach row below basic). Without any record on a node
//! with Stripe, the free row too: a coach's trial is a `trialing`
//! subscription (Checkout gives a coach's first one `coach_trial_days`),
//! not the account's age. While an admin override exists, and on a node
//! without Stripe, the account's admin-set fields decide. Subscriptions to a training program
//! ([`PaidPlan::Program`]) give no row: they open their program
//! (`super::program_subs`). Every override set or cleared is
//! written to the audit log.

use chalktalk_actors::store::StoreError;
use chalktalk_adapters::billing::{
    AuditEntry, PaidPlan, PlanOverride, Subscription, SubscriptionStatus,
};
use chalktalk_protocol::Role;

use super::{MAX_LIST, ProgramError, ProgramService, new_id, now_ms};
use crate::accounts::Plan;

/// The matrix row a paid plan gives.
pub fn row_of(p: PaidPlan) -> Plan {
    match p {
        PaidPlan::CoachBasic => Plan::CoachBasic,
        PaidPlan::CoachPremium => Plan::CoachPremium,
        PaidPlan::AthletePaid => Plan::AthletePaid,
        // Opens one program; the matrix row stays the account's.
        PaidPlan::Program => Plan::AthleteFree,
    }
}

/// The paid plan of a matrix row's name (`coach_basic`, ...).
pub fn paid_plan(name: &str) -> Option<PaidPlan> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Does `s` give its plan at `now` (seconds)?
pub fn in_force(s: &Subscription, now: i64, grace_secs: u64) -> bool {
    let reached = |t: Option<i64>| t.is_some_and(|t| now >= t);
    if reached(s.cancel_at) || (s.cancel_at_period_end && reached(s.current_period_end)) {
        return false;
    }
    match s.status {
        SubscriptionStatus::Trialing | SubscriptionStatus::Active => true,
        SubscriptionStatus::PastDue => {
            let grace = i64::try_from(grace_secs).unwrap_or(i64::MAX);
            s.past_due_since
                .is_none_or(|since| now < since.saturating_add(grace))
        }
        _ => false,
    }
}

/// The row `subs` give a user of `role` at `now` (seconds).
pub fn plan_from(role: Role, subs: &[Subscription], now: i64, grace_secs: u64) -> Plan {
    let fits = |p: PaidPlan| {
        matches!(
            (role, p),
            (Role::Coach, PaidPlan::CoachBasic | PaidPlan::CoachPremium)
                | (Role::Athlete, PaidPlan::AthletePaid)
        )
    };
    let rank = |p: PaidPlan| match p {
        PaidPlan::CoachPremium => 2,
        PaidPlan::CoachBasic | PaidPlan::AthletePaid => 1,
        PaidPlan::Program => 0,
    };
    let best = subs
        .iter()
        .filter(|s| fits(s.plan) && in_force(s, now, grace_secs))
        .map(|s| s.plan)
        .max_by_key(|p| rank(*p));
    match (role, best) {
        (Role::Admin, _) => Plan::Admin,
        (_, Some(p)) => row_of(p),
        (Role::Coach, None) => Plan::CoachBasic,
        (Role::Athlete, None) => Plan::AthleteFree,
    }
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> i64 {
    i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX)
}

impl ProgramService {
    /// The plan `user` (of `role`) has from their subscriptions now;
    /// `None` when the account's own fields decide (admins, an admin
    /// override, no subscription record).
    pub async fn billed_plan(&self, user: &str, role: Role) -> Result<Option<Plan>, StoreError> {
        if role == Role::Admin || self.store.plan_override(user).await?.is_some() {
            return Ok(None);
        }
        // A program's subscription opens that program, not a plan.
        let subs: Vec<Subscription> = self
            .store
            .subscriptions_of(user, MAX_LIST)
            .await?
            .into_iter()
            .filter(|s| s.plan != PaidPlan::Program)
            .collect();
        if subs.is_empty() && self.payments.is_none() {
            // No Stripe on this node: the account's fields decide.
            return Ok(None);
        }
        Ok(Some(plan_from(
            role,
            &subs,
            now_secs(),
            self.billing.past_due_grace_secs,
        )))
    }

    /// A user's subscriptions (ended ones too).
    pub async fn subscriptions(&self, user: &str) -> Result<Vec<Subscription>, ProgramError> {
        Ok(self.store.subscriptions_of(user, MAX_LIST).await?)
    }

    /// Records that admin `by` set the plan of `user` to `plan` (the
    /// account's fields decide from now on), with an audit entry.
    pub async fn set_override(
        &self,
        by: &str,
        user: &str,
        before: Plan,
        plan: Plan,
    ) -> Result<PlanOverride, ProgramError> {
        let name = plan_name(plan);
        let o = PlanOverride {
            user: user.to_owned(),
            by: by.to_owned(),
            at_ms: now_ms(),
            plan: name.clone(),
        };
        self.store.set_plan_override(user, Some(&o)).await?;
        self.audit(
            by,
            user,
            "plan_override_set",
            format!("{} -> {name}", plan_name(before)),
        )
        .await?;
        Ok(o)
    }

    /// Removes the override of `user` (their subscriptions decide again),
    /// with an audit entry; `NotFound` when there is none.
    pub async fn clear_override(&self, by: &str, user: &str) -> Result<(), ProgramError> {
        let Some(old) = self.store.plan_override(user).await? else {
            return Err(ProgramError::NoOverride);
        };
        self.store.set_plan_override(user, None).await?;
        self.audit(
            by,
            user,
            "plan_override_cleared",
            format!("{} (set by {}) removed", old.plan, old.by),
        )
        .await
    }

    /// The override of `user`, if any.
    pub async fn plan_override(&self, user: &str) -> Result<Option<PlanOverride>, ProgramError> {
        Ok(self.store.plan_override(user).await?)
    }

    /// The audit log about `user`, oldest first.
    pub async fn audit_of(&self, user: &str) -> Result<Vec<AuditEntry>, ProgramError> {
        Ok(self.store.audit_of(user, MAX_LIST).await?)
    }

    async fn audit(
        &self,
        actor: &str,
        subject: &str,
        action: &str,
        detail: String,
    ) -> Result<(), ProgramError> {
        let e = AuditEntry {
            id: new_id("aud"),
            subject: subject.to_owned(),
            actor: actor.to_owned(),
            at_ms: now_ms(),
            action: action.to_owned(),
            detail,
        };
        tracing::info!(actor, subject, action, detail = %e.detail, "billing audit");
        Ok(self.store.add_audit(&e).await?)
    }
}

/// A row's name as the API writes it.
pub fn plan_name(p: Plan) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A subscription `sub_1` of user `u` (tests of this module and of
    /// `program_subs`).
    pub(crate) fn sub(plan: PaidPlan, status: SubscriptionStatus) -> Subscription {
        Subscription {
            id: "sub_1".into(),
            user: "u".into(),
            customer: None,
            plan,
            program: None,
            status,
            current_period_end: None,
            cancel_at_period_end: false,
            cancel_at: None,
            past_due_since: None,
            event_created: 1,
            amount: 900,
            currency: "eur".into(),
            created_ms: 1,
            updated_ms: 1,
            version: 1,
        }
    }

    #[test]
    fn statuses_periods_and_grace() {
        use SubscriptionStatus::*;
        let grace = 100;
        for (status, given) in [
            (Trialing, true),
            (Active, true),
            (PastDue, true),
            (Canceled, false),
            (Unpaid, false),
            (Incomplete, false),
            (IncompleteExpired, false),
            (Paused, false),
            (Other, false),
        ] {
            assert_eq!(
                in_force(&sub(PaidPlan::AthletePaid, status), 1000, grace),
                given,
                "{status:?}"
            );
        }
        let mut s = sub(PaidPlan::AthletePaid, PastDue);
        s.past_due_since = Some(1000);
        assert!(in_force(&s, 1099, grace));
        assert!(!in_force(&s, 1100, grace), "the grace period is over");
        let mut s = sub(PaidPlan::AthletePaid, Active);
        s.cancel_at_period_end = true;
        s.current_period_end = Some(2000);
        assert!(in_force(&s, 1999, grace));
        assert!(!in_force(&s, 2000, grace), "canceled at the period's end");
        s.cancel_at_period_end = false;
        assert!(in_force(&s, 5000, grace), "renews");
        s.cancel_at = Some(3000);
        assert!(!in_force(&s, 3000, grace));
    }

    #[test]
    fn the_best_fitting_plan_or_the_free_row() {
        use SubscriptionStatus::*;
        let premium = sub(PaidPlan::CoachPremium, Active);
        let basic = sub(PaidPlan::CoachBasic, Trialing);
        let athlete = sub(PaidPlan::AthletePaid, Active);
        let gone = sub(PaidPlan::CoachPremium, Canceled);
        let f = |role, subs: &[Subscription]| plan_from(role, subs, 1000, 10);
        assert_eq!(
            f(Role::Coach, &[basic.clone(), premium.clone()]),
            Plan::CoachPremium
        );
        assert_eq!(
            f(Role::Coach, &[basic.clone(), gone.clone()]),
            Plan::CoachBasic
        );
        assert_eq!(
            f(Role::Coach, std::slice::from_ref(&gone)),
            Plan::CoachBasic
        );
        assert_eq!(
            f(Role::Coach, std::slice::from_ref(&athlete)),
            Plan::CoachBasic,
            "not a coach plan"
        );
        assert_eq!(
            f(Role::Athlete, std::slice::from_ref(&athlete)),
            Plan::AthletePaid
        );
        assert_eq!(f(Role::Athlete, &[premium]), Plan::AthleteFree);
        assert_eq!(f(Role::Admin, &[athlete]), Plan::Admin);
        assert_eq!(paid_plan("coach_premium"), Some(PaidPlan::CoachPremium));
        assert_eq!(paid_plan("admin"), None);
        assert_eq!(plan_name(Plan::AthleteFree), "athlete_free");
    }
}
