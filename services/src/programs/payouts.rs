//! Coach payouts through Stripe Connect (Express): the coach's account
//! (created once, idempotency key `account-<coach>`), the onboarding link
//! and the dashboard login link ([`ProgramService::onboard`],
//! [`ProgramService::dashboard`]); `account.updated` marks the coach
//! payable (`charges_enabled && payouts_enabled`;
//! [`ProgramService::apply_account`]). A coach who is not payable cannot
//! publish a paid program nor be sold (`not_payable`) when Stripe is
//! configured; paid checkouts are destination charges to the coach's
//! account with the platform's fee ([`ProgramService::destination`]).

use chalktalk_adapters::billing::PayoutAccount;
use chalktalk_protocol::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checkout::url;
use super::webhook::Outcome;
use super::{ProgramError, ProgramService, now_ms};

/// Where Stripe sends the coach back from onboarding.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OnboardInput {
    /// An http(s) URL: the link expired, make a new one.
    pub refresh_url: String,
    /// An http(s) URL: onboarding left (done or not).
    pub return_url: String,
}

/// A link to send the coach to, and their payout state.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutLink {
    /// The Connect account (`acct_...`).
    pub account: String,
    pub url: String,
    pub payable: bool,
}

impl ProgramService {
    /// The coach's Connect account, created on first use.
    async fn account_of(&self, coach: &str, role: Role) -> Result<PayoutAccount, ProgramError> {
        if role != Role::Coach {
            return Err(ProgramError::Forbidden("only coaches are paid out"));
        }
        if let Some(a) = self.store.payout_account(coach).await? {
            return Ok(a);
        }
        let payments = self
            .payments
            .as_deref()
            .ok_or(ProgramError::PaymentsDisabled)?;
        let id = payments.create_account(coach).await?;
        let a = PayoutAccount {
            coach: coach.to_owned(),
            account: id,
            charges_enabled: false,
            payouts_enabled: false,
            details_submitted: false,
            event_created: 0,
            created_ms: now_ms(),
            updated_ms: now_ms(),
        };
        self.store.put_payout_account(&a).await?;
        Ok(a)
    }

    /// An onboarding link for `coach` (creating their account first).
    pub async fn onboard(
        &self,
        coach: &str,
        role: Role,
        input: &OnboardInput,
    ) -> Result<PayoutLink, ProgramError> {
        let refresh = url("refresh_url", &input.refresh_url)?;
        let back = url("return_url", &input.return_url)?;
        let a = self.account_of(coach, role).await?;
        let payments = self
            .payments
            .as_deref()
            .ok_or(ProgramError::PaymentsDisabled)?;
        let link = payments.account_link(&a.account, &refresh, &back).await?;
        Ok(PayoutLink {
            payable: a.payable(),
            account: a.account,
            url: link,
        })
    }

    /// A login link to the coach's Express dashboard; `no_payout_account`
    /// before onboarding started.
    pub async fn dashboard(&self, coach: &str) -> Result<PayoutLink, ProgramError> {
        let a = self
            .store
            .payout_account(coach)
            .await?
            .ok_or(ProgramError::NoPayoutAccount)?;
        let payments = self
            .payments
            .as_deref()
            .ok_or(ProgramError::PaymentsDisabled)?;
        let link = payments.login_link(&a.account).await?;
        Ok(PayoutLink {
            payable: a.payable(),
            account: a.account,
            url: link,
        })
    }

    /// The coach's payout account, if any.
    pub async fn payout_account(&self, coach: &str) -> Result<Option<PayoutAccount>, ProgramError> {
        Ok(self.store.payout_account(coach).await?)
    }

    /// `Ok(None)` without Stripe (nothing is sold then); the destination
    /// (account, fee in minor units) of a sale of `amount` by `coach`;
    /// `not_payable` when the coach cannot be paid yet.
    /// The platform's fee on a sale of `amount` (minor units, rounded
    /// down).
    pub(crate) fn fee_of(&self, amount: u64) -> u64 {
        amount.saturating_mul(u64::from(self.billing.platform_fee_percent)) / 100
    }

    pub(crate) async fn destination(
        &self,
        coach: &str,
        amount: u64,
    ) -> Result<Option<(String, u64)>, ProgramError> {
        if self.payments.is_none() {
            return Ok(None);
        }
        match self.store.payout_account(coach).await? {
            Some(a) if a.payable() => Ok(Some((a.account, self.fee_of(amount)))),
            _ => Err(ProgramError::NotPayable),
        }
    }

    /// Applies `account.updated` (its object `obj`, the event's `created`).
    pub(crate) async fn apply_account(
        &self,
        obj: &Value,
        created: i64,
    ) -> Result<Outcome, ProgramError> {
        let Some(id) = obj["id"].as_str() else {
            return Err(ProgramError::BadEvent("an account without id".into()));
        };
        let Some(mut a) = self.store.payout_account_by_id(id).await? else {
            return Ok(Outcome::Ignored("not a chalktalk coach's account"));
        };
        if created < a.event_created {
            return Ok(Outcome::Ignored("an older state than the stored one"));
        }
        a.charges_enabled = obj["charges_enabled"].as_bool().unwrap_or(false);
        a.payouts_enabled = obj["payouts_enabled"].as_bool().unwrap_or(false);
        a.details_submitted = obj["details_submitted"].as_bool().unwrap_or(false);
        a.event_created = created;
        a.updated_ms = now_ms();
        self.store.put_payout_account(&a).await?;
        tracing::info!(coach = %a.coach, account = %a.account, payable = a.payable(), "payout account");
        Ok(Outcome::Applied)
    }
}
