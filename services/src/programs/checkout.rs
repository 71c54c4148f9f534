//! Buying a program: a Stripe Checkout Session per attempt. For a
//! one-time price its id is the order's id, stored as `open` before the
//! buyer is sent to it; for a monthly or yearly price the session is in
//! subscription mode and the subscription's events grant access
//! (`super::program_subs`), so no order is stored. Refunds (the order's
//! coach or an admin) revoke what the order granted. Access is granted by the webhook (`super::webhook`), never by
//! the redirect back from Checkout.

use chalktalk_adapters::payments::{CheckoutRequest, Payments, Recurring};
use chalktalk_adapters::programs::{Order, OrderStatus, Price, ProgramStatus};
use chalktalk_protocol::Role;
use serde::{Deserialize, Serialize};

use super::{ProgramError, ProgramService, new_id, now_ms};

/// Where Checkout sends the buyer back to.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckoutInput {
    /// An http(s) URL, at most 2000 characters.
    pub success_url: String,
    /// An http(s) URL, at most 2000 characters.
    pub cancel_url: String,
}

/// The opened checkout.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckoutOutput {
    /// The order id (Stripe's Checkout Session id).
    pub order: String,
    /// Send the buyer here.
    pub url: Option<String>,
    pub amount: u64,
    pub currency: String,
}

pub(crate) fn url(field: &'static str, v: &str) -> Result<String, ProgramError> {
    let ok = (v.starts_with("https://") || v.starts_with("http://"))
        && v.len() <= 2000
        && !v.chars().any(char::is_whitespace);
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ProgramError::invalid(
            field,
            "an http(s) URL of at most 2000 characters",
        ))
    }
}

impl ProgramService {
    fn payments(&self) -> Result<&dyn Payments, ProgramError> {
        self.payments
            .as_deref()
            .ok_or(ProgramError::PaymentsDisabled)
    }

    /// Opens a Checkout Session for `user` to buy (or subscribe to)
    /// program `id`.
    #[tracing::instrument(skip(self, input))]
    pub async fn checkout(
        &self,
        user: &str,
        id: &str,
        input: &CheckoutInput,
    ) -> Result<CheckoutOutput, ProgramError> {
        let success_url = url("success_url", &input.success_url)?;
        let cancel_url = url("cancel_url", &input.cancel_url)?;
        let p = self.visible(user, id).await?;
        if p.status != ProgramStatus::Published {
            return Err(ProgramError::NotPublished);
        }
        let (amount, currency, recurring) = match &p.price {
            Price::OneTime { amount, currency } => (*amount, currency.clone(), None),
            Price::Free => {
                return Err(ProgramError::UnsupportedPrice(
                    "this program is free: enroll instead",
                ));
            }
            Price::Subscription {
                interval,
                amount,
                currency,
            } => (
                *amount,
                currency.clone(),
                Some(Recurring {
                    interval: *interval,
                    fee_percent: self.billing.platform_fee_percent,
                }),
            ),
        };
        if p.coach == user {
            return Err(ProgramError::Forbidden("you cannot buy your own program"));
        }
        // Live: a program subscription that lapsed without an event yet
        // (grace over, period ended) does not stop a new purchase.
        let entitled = match self.store.entitlement(user, id).await? {
            Some(e) => self.entitlement_live(&e).await?,
            None => false,
        };
        if entitled {
            return Err(ProgramError::AlreadyEntitled);
        }
        let payments = self.payments()?;
        let destination = self.destination(&p.coach, amount).await?;
        let fee = destination.as_ref().map_or(0, |(_, fee)| *fee);
        let reference = new_id("ord");
        let session = payments
            .checkout(&CheckoutRequest {
                reference: reference.clone(),
                user: user.to_owned(),
                program: id.to_owned(),
                title: p.title.clone(),
                amount,
                currency: currency.clone(),
                success_url,
                cancel_url,
                destination,
                recurring,
            })
            .await?;
        if recurring.is_some() {
            // No order: the subscription's events open the program
            // (`super::program_subs`) and keep it open while it is paid.
            return Ok(CheckoutOutput {
                order: session.id,
                url: session.url,
                amount,
                currency,
            });
        }
        let now = now_ms();
        let order = Order {
            id: session.id.clone(),
            user: user.to_owned(),
            program: id.to_owned(),
            coach: p.coach.clone(),
            amount,
            currency: currency.clone(),
            fee,
            status: OrderStatus::Open,
            payment: None,
            paid_ms: None,
            created_ms: now,
            updated_ms: now,
            version: 1,
            kind: chalktalk_adapters::programs::OrderKind::Checkout,
        };
        // A webhook may have stored it first (from the session's metadata).
        if !self.store.put_order(&order).await? {
            tracing::debug!(order = %order.id, "order stored by its webhook first");
        }
        Ok(CheckoutOutput {
            order: session.id,
            url: session.url,
            amount,
            currency,
        })
    }

    /// Refunds order `id` in full (its program's coach or an admin) and
    /// revokes what it granted. Stripe's `charge.refunded` event that
    /// follows finds the order refunded already.
    #[tracing::instrument(skip(self))]
    pub async fn refund(&self, caller: &str, role: Role, id: &str) -> Result<Order, ProgramError> {
        let order = self
            .store
            .order(id)
            .await?
            .ok_or_else(|| ProgramError::NotFound(id.to_owned()))?;
        if role != Role::Admin {
            let coach = self.store.program(&order.program).await?.map(|p| p.coach);
            if coach.as_deref() != Some(caller) {
                return Err(ProgramError::NotFound(id.to_owned()));
            }
        }
        let Some(payment) = order
            .payment
            .clone()
            .filter(|_| order.status == OrderStatus::Paid)
        else {
            return Err(ProgramError::NotRefundable);
        };
        self.payments()?
            .refund(&payment, &format!("refund-{}", order.id))
            .await?;
        self.advance(&order.id, None, OrderStatus::Refunded, Some(&payment))
            .await
    }
}
