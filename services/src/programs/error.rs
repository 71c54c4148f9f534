//! [`ProgramError`]: why a program, enrollment, checkout or webhook request
//! was refused or failed, each with its stable code
//! ([`ProgramError::code`], the `"error"` of the JSON body). The server
//! maps each to its HTTP status (server/src/http/error.rs).

use chalktalk_actors::store::StoreError;
use chalktalk_adapters::payments::PaymentError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProgramError {
    /// `validation_failed` (422): a field is missing or wrong.
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    /// `not_found` (404): no such program (or a draft of someone else).
    #[error("no program {0} you can see")]
    NotFound(String),
    /// `forbidden` (403): only coaches build programs; only its coach
    /// edits one.
    #[error("{0}")]
    Forbidden(&'static str),
    /// `payment_required` (402): the program costs money; buy it through
    /// checkout.
    #[error("this program is not free: buy it through checkout")]
    NotFree,
    /// `unsupported_price` (409): checkout sells one-time prices only
    /// (subscriptions are not built yet), and free programs need none.
    #[error("{0}")]
    UnsupportedPrice(&'static str),
    /// `not_published` (409): drafts cannot be enrolled in or bought.
    #[error("this program is not published")]
    NotPublished,
    /// `already_entitled` (409): the caller can already open it.
    #[error("you are already enrolled in this program")]
    AlreadyEntitled,
    /// `not_entitled` (403): progress needs an active enrollment.
    #[error("you are not enrolled in this program")]
    NotEntitled,
    /// `not_refundable` (409): only a paid order can be refunded.
    #[error("only a paid order can be refunded")]
    NotRefundable,
    /// `no_such_item` (404).
    #[error("the program has no item {0}")]
    NoSuchItem(String),
    /// `not_a_review` (404): the item exists but is not a review room.
    #[error("item {0} of this program is not a review")]
    NotAReview(String),
    /// `bad_signature` (400): the webhook's Stripe-Signature does not
    /// match its body (or is too old); nothing was stored.
    #[error("{0}")]
    BadSignature(String),
    /// `bad_event` (400): a signed body that is not an event.
    #[error("{0}")]
    BadEvent(String),
    /// `plan_unavailable` (409): no Stripe price is configured for this
    /// plan on this node.
    #[error("this plan cannot be subscribed to on this node (no price configured)")]
    PlanUnavailable,
    /// `already_subscribed` (409): a subscription to this plan is in force.
    #[error("you already have a subscription to this plan")]
    AlreadySubscribed,
    /// `not_payable` (409): the coach's Stripe Connect account cannot be
    /// paid yet (onboarding not finished): no paid program is published
    /// or sold.
    #[error(
        "the coach cannot be paid yet: finish Stripe onboarding (POST /api/v1/me/payouts/onboarding) before selling"
    )]
    NotPayable,
    /// `no_payout_account` (409): onboarding has not started.
    #[error("no payout account yet: start with POST /api/v1/me/payouts/onboarding")]
    NoPayoutAccount,
    /// `no_override` (404): the user's plan is not overridden by an admin.
    #[error("no admin override of this user's plan")]
    NoOverride,
    /// `payments_disabled` (503): no Stripe key or webhook secret set.
    #[error("payments are not configured on this node")]
    PaymentsDisabled,
    /// `payment_refused` (502): Stripe refused the request.
    #[error("{0}")]
    PaymentRefused(String),
    /// `bad_period` (400): the revenue query's `from` / `to` are not
    /// months `YYYY-MM` (1970-01 on), `from` is after `to`, or they span
    /// more than 120 months.
    #[error("{0}")]
    BadPeriod(String),
    /// `unavailable` (503): storage or Stripe failed; retry later.
    #[error("{0}")]
    Unavailable(String),
}

impl ProgramError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ProgramError::Invalid { .. } => "validation_failed",
            ProgramError::NotFound(_) => "not_found",
            ProgramError::Forbidden(_) => "forbidden",
            ProgramError::NotFree => "payment_required",
            ProgramError::UnsupportedPrice(_) => "unsupported_price",
            ProgramError::NotPublished => "not_published",
            ProgramError::AlreadyEntitled => "already_entitled",
            ProgramError::NotEntitled => "not_entitled",
            ProgramError::NotRefundable => "not_refundable",
            ProgramError::NoSuchItem(_) => "no_such_item",
            ProgramError::NotAReview(_) => "not_a_review",
            ProgramError::BadSignature(_) => "bad_signature",
            ProgramError::BadEvent(_) => "bad_event",
            ProgramError::PlanUnavailable => "plan_unavailable",
            ProgramError::AlreadySubscribed => "already_subscribed",
            ProgramError::NoOverride => "no_override",
            ProgramError::NotPayable => "not_payable",
            ProgramError::NoPayoutAccount => "no_payout_account",
            ProgramError::PaymentsDisabled => "payments_disabled",
            ProgramError::PaymentRefused(_) => "payment_refused",
            ProgramError::BadPeriod(_) => "bad_period",
            ProgramError::Unavailable(_) => "unavailable",
        }
    }

    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> ProgramError {
        ProgramError::Invalid {
            field,
            problem: problem.into(),
        }
    }
}

impl From<StoreError> for ProgramError {
    fn from(e: StoreError) -> ProgramError {
        ProgramError::Unavailable(format!("storage: {e}"))
    }
}

impl From<PaymentError> for ProgramError {
    fn from(e: PaymentError) -> ProgramError {
        match e {
            PaymentError::Refused(m) => ProgramError::PaymentRefused(m),
            other => ProgramError::Unavailable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = ProgramError::invalid("title", "1-200 characters");
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("validation_failed", "title: 1-200 characters")
        );
        let e = ProgramError::from(PaymentError::Refused("card declined".into()));
        assert_eq!(e.code(), "payment_refused");
        let e = ProgramError::from(StoreError::Unavailable("down".into()));
        assert_eq!(e.code(), "unavailable");
    }
}
