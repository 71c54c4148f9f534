//! The billing records of the [`BillingStore`] port (issue 12, second
//! slice): each user's Stripe subscriptions as the webhooks last left them
//! ([`Subscription`]), admin overrides of the plan ([`PlanOverride`]) and
//! the audit log of those overrides ([`AuditEntry`]), coaches' Stripe
//! Connect accounts ([`PayoutAccount`]). Every
//! `ProgramStore` is a `BillingStore`. Adapters: the embedded store
//! (`crate::embedded::billing`), PostgreSQL (`crate::postgres::billing`,
//! `sql/007_billing.sql`) and ScyllaDB (`crate::scylla::billing`,
//! `cql/010_billing.cql`, not run against a server here); each runs
//! `crate::conformance::billing`.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use serde::{Deserialize, Serialize};

/// The paid plan a subscription's price buys (the row of the permission
/// matrix it gives while it is in force).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidPlan {
    CoachBasic,
    CoachPremium,
    AthletePaid,
    /// A subscription to one training program (`Subscription::program`):
    /// it opens that program, and gives no row of the matrix.
    Program,
}

/// Stripe's subscription status, as Stripe writes it; `other` for one
/// this version does not know (treated as not in force).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Incomplete,
    IncompleteExpired,
    Paused,
    #[serde(other)]
    Other,
}

impl SubscriptionStatus {
    /// Parses Stripe's `status` string (unknown ones are `Other`).
    pub fn parse(s: &str) -> SubscriptionStatus {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .unwrap_or(SubscriptionStatus::Other)
    }
}

/// One Stripe subscription of a user (id: Stripe's `sub_...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub user: String,
    pub customer: Option<String>,
    pub plan: PaidPlan,
    /// The program a [`PaidPlan::Program`] subscription opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    pub status: SubscriptionStatus,
    /// End of the paid period (seconds since the epoch).
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// A scheduled end (seconds).
    pub cancel_at: Option<i64>,
    /// When it became past due (seconds; the event's `created`).
    pub past_due_since: Option<i64>,
    /// The `created` (seconds) of the event that last set this state: an
    /// older event never overwrites it.
    pub event_created: i64,
    /// Amount per period in minor units, and its currency.
    pub amount: u64,
    pub currency: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Incremented by every write; [`BillingStore::put_subscription`]
    /// stores only over the version before it.
    pub version: u64,
}

/// An admin's override: while it exists, the account's admin-set fields
/// decide the plan, not the subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOverride {
    pub user: String,
    /// The admin who set it.
    pub by: String,
    pub at_ms: u64,
    /// The plan it set (the matrix row's name, e.g. `coach_premium`).
    pub plan: String,
}

/// One audited admin action on a user's billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unique per entry.
    pub id: String,
    /// The user it concerns.
    pub subject: String,
    /// Who did it.
    pub actor: String,
    pub at_ms: u64,
    /// e.g. `plan_override_set`, `plan_override_cleared`.
    pub action: String,
    /// A human line (before → after).
    pub detail: String,
}

/// A coach's Stripe Connect (Express) account: payable once Stripe says
/// `charges_enabled` and `payouts_enabled` (the `account.updated` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutAccount {
    pub coach: String,
    /// Stripe's `acct_...`.
    pub account: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    /// The `created` of the event that last set the flags (0: none yet).
    pub event_created: i64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl PayoutAccount {
    /// May the coach be paid (destination charges)?
    pub fn payable(&self) -> bool {
        self.charges_enabled && self.payouts_enabled
    }
}

/// Subscriptions, plan overrides and their audit log; coaches' payout
/// accounts.
#[async_trait]
pub trait BillingStore: Send + Sync + 'static {
    /// Stores `s` if the stored one has version `s.version - 1` (none
    /// stored for version 1); `Ok(false)` otherwise, nothing written.
    async fn put_subscription(&self, s: &Subscription) -> Result<bool, StoreError>;
    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError>;
    /// A user's subscriptions (ended ones too) by id, at most `limit`.
    async fn subscriptions_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError>;
    /// One page of every user's subscriptions (the platform's figures), in
    /// an order the store fixes (by id in the embedded store and
    /// PostgreSQL, by token in ScyllaDB), strictly after the one with id
    /// `after` (the last of the previous page), at most `limit`.
    async fn subscriptions_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError>;

    /// Sets (`Some`) or clears (`None`) the override of `user`.
    async fn set_plan_override(
        &self,
        user: &str,
        o: Option<&PlanOverride>,
    ) -> Result<(), StoreError>;
    async fn plan_override(&self, user: &str) -> Result<Option<PlanOverride>, StoreError>;

    /// Appends an entry (an existing id is overwritten).
    async fn add_audit(&self, e: &AuditEntry) -> Result<(), StoreError>;
    /// The entries about `subject`, oldest first (ties by id), at most
    /// `limit`.
    async fn audit_of(&self, subject: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// Creates or replaces the payout account of `a.coach` (and its index
    /// by Stripe account id).
    async fn put_payout_account(&self, a: &PayoutAccount) -> Result<(), StoreError>;
    async fn payout_account(&self, coach: &str) -> Result<Option<PayoutAccount>, StoreError>;
    /// The payout account whose Stripe id is `account`.
    async fn payout_account_by_id(
        &self,
        account: &str,
    ) -> Result<Option<PayoutAccount>, StoreError>;
}
