//! Stripe webhooks, durably: [`ProgramService::receive`] verifies the
//! signature over the raw body and stores the event as a `Receipt` (once
//! per event id: a replay or duplicate is acknowledged and not stored
//! again) before anything is applied; [`ProgramService::process_pending`]
//! then applies stored receipts oldest first and marks each applied. It
//! runs after every new receipt, at start and periodically, so a crash
//! between receipt and processing loses nothing.
//!
//! Any order: an order only moves forward (open → paid → disputed →
//! refunded; an expiry never undoes a payment), so an old event applied
//! late changes nothing; a refund or dispute whose payment no order knows
//! yet waits (stays
//! pending, with a note) and is applied on a later pass once the checkout's
//! event arrived.
//!
//! Events used: `checkout.session.completed` and
//! `checkout.session.async_payment_succeeded` (paid: grant),
//! `checkout.session.expired`, `charge.refunded` (full refund: revoke),
//! `charge.dispute.created` (a chargeback: revoke, the order `disputed`),
//! `account.updated` (a coach's Connect account: payable or not);
//! the subscription and invoice events of `super::subscribe`. Others are
//! stored and marked applied with nothing done. A receipt still waiting
//! after [`GIVE_UP_MS`] is marked applied with a note (it never matched).

use chalktalk_adapters::payments::{WebhookError, verify_webhook};
use chalktalk_adapters::programs::{
    Entitlement, EntitlementStatus, Order, OrderStatus, Receipt, Source,
};
use serde_json::Value;

use super::{ProgramError, ProgramService, now_ms};

/// Receipts applied per pass at most.
const PASS: usize = 100;
/// Passes per call (a waiting receipt is retried on the next pass).
const MAX_PASSES: usize = 4;
/// How long a receipt may wait for the event it needs (7 days).
pub const GIVE_UP_MS: u64 = 7 * 24 * 3600 * 1000;

/// What applying one receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    Ignored(&'static str),
    Waiting(String),
}

fn rank(s: OrderStatus) -> u8 {
    match s {
        OrderStatus::Open => 0,
        OrderStatus::Expired => 1,
        OrderStatus::Paid => 2,
        OrderStatus::Disputed => 3,
        OrderStatus::Refunded => 4,
    }
}

/// An id field that Stripe writes as a string or, expanded, an object.
fn id_of(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v["id"].as_str())
}

impl ProgramService {
    /// Verifies and stores one webhook body: `Ok(true)` when new,
    /// `Ok(false)` for an event id seen before.
    #[tracing::instrument(skip_all)]
    pub async fn receive(
        &self,
        body: &[u8],
        signature: &str,
    ) -> Result<(String, bool), ProgramError> {
        let secret = self
            .webhook_secret
            .as_deref()
            .ok_or(ProgramError::PaymentsDisabled)?;
        let mut verified = verify_webhook(body, signature, secret);
        if let (Err(WebhookError::Signature(_)), Some(connect)) =
            (&verified, self.connect_webhook_secret.as_deref())
        {
            verified = verify_webhook(body, signature, connect);
        }
        let ev = verified.map_err(|e| match e {
            WebhookError::Signature(m) => ProgramError::BadSignature(m),
            WebhookError::Body(m) => ProgramError::BadEvent(m),
        })?;
        let r = Receipt {
            id: ev.id.clone(),
            kind: ev.kind,
            created: ev.created,
            body: body.to_vec(),
            received_ms: now_ms(),
            applied_ms: None,
            note: None,
        };
        let new = self.store.add_receipt(&r).await?;
        tracing::info!(event = %ev.id, kind = %r.kind, new, "stripe webhook stored");
        Ok((ev.id, new))
    }

    /// Applies pending receipts; the number applied.
    #[tracing::instrument(skip(self))]
    pub async fn process_pending(&self) -> Result<usize, ProgramError> {
        let _one = self.processing.lock().await;
        let mut applied = 0;
        for _ in 0..MAX_PASSES {
            let mut progressed = false;
            for mut r in self.store.pending_receipts(PASS).await? {
                match self.apply(&r).await {
                    Ok(Outcome::Waiting(note))
                        if now_ms().saturating_sub(r.received_ms) > GIVE_UP_MS =>
                    {
                        tracing::warn!(event = %r.id, %note, "stripe event given up");
                        r.note = Some(format!("given up after 7 days: {note}"));
                        r.applied_ms = Some(now_ms());
                        self.store.update_receipt(&r).await?;
                    }
                    Ok(Outcome::Waiting(note)) => {
                        if r.note.as_deref() != Some(note.as_str()) {
                            r.note = Some(note);
                            self.store.update_receipt(&r).await?;
                        }
                    }
                    Ok(outcome) => {
                        if let Outcome::Ignored(why) = outcome {
                            r.note = Some(why.to_owned());
                        } else {
                            r.note = None;
                        }
                        r.applied_ms = Some(now_ms());
                        self.store.update_receipt(&r).await?;
                        tracing::info!(event = %r.id, kind = %r.kind, note = ?r.note, "stripe event applied");
                        applied += 1;
                        progressed = true;
                    }
                    Err(e @ ProgramError::Unavailable(_)) => return Err(e),
                    Err(e) => {
                        // Not retryable (a malformed body): recorded, never applied.
                        tracing::warn!(event = %r.id, error = %e, "stripe event cannot be applied");
                        r.note = Some(format!("not applicable: {e}"));
                        r.applied_ms = Some(now_ms());
                        self.store.update_receipt(&r).await?;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(applied)
    }

    async fn apply(&self, r: &Receipt) -> Result<Outcome, ProgramError> {
        let v: Value =
            serde_json::from_slice(&r.body).map_err(|e| ProgramError::BadEvent(e.to_string()))?;
        let obj = &v["data"]["object"];
        match r.kind.as_str() {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
                if obj["mode"].as_str() != Some("payment") {
                    return Ok(Outcome::Ignored("not a one-time payment"));
                }
                if !matches!(
                    obj["payment_status"].as_str(),
                    Some("paid" | "no_payment_required")
                ) {
                    return Ok(Outcome::Ignored("not paid yet"));
                }
                let Some(id) = obj["id"].as_str() else {
                    return Err(ProgramError::BadEvent("a session without id".into()));
                };
                let meta = &obj["metadata"];
                let seed = match (
                    meta["chalktalk_user"].as_str(),
                    meta["chalktalk_program"].as_str(),
                ) {
                    (Some(user), Some(program)) => {
                        let amount = obj["amount_total"].as_u64().unwrap_or(0);
                        let coach = self.store.program(program).await?.map(|p| p.coach);
                        Some(Order {
                            id: id.to_owned(),
                            user: user.to_owned(),
                            program: program.to_owned(),
                            coach: coach.unwrap_or_default(),
                            amount,
                            currency: obj["currency"].as_str().unwrap_or_default().to_owned(),
                            // The checkout's fee (the session does not carry
                            // its payment's application fee).
                            fee: self.fee_of(amount),
                            status: OrderStatus::Open,
                            payment: None,
                            paid_ms: None,
                            created_ms: now_ms(),
                            updated_ms: now_ms(),
                            version: 1,
                            kind: chalktalk_adapters::programs::OrderKind::Checkout,
                        })
                    }
                    _ => None,
                };
                if seed.is_none() && self.store.order(id).await?.is_none() {
                    return Ok(Outcome::Ignored("not a chalktalk checkout"));
                }
                let payment = id_of(&obj["payment_intent"]);
                self.advance(id, seed, OrderStatus::Paid, payment).await?;
                Ok(Outcome::Applied)
            }
            "checkout.session.expired" => {
                let Some(id) = obj["id"].as_str() else {
                    return Err(ProgramError::BadEvent("a session without id".into()));
                };
                match self.advance(id, None, OrderStatus::Expired, None).await {
                    Ok(_) => Ok(Outcome::Applied),
                    Err(ProgramError::NotFound(_)) => Ok(Outcome::Ignored("no such order")),
                    Err(e) => Err(e),
                }
            }
            "charge.refunded" => {
                if obj["refunded"].as_bool() != Some(true) {
                    return Ok(Outcome::Ignored("a partial refund keeps access"));
                }
                let Some(pi) = id_of(&obj["payment_intent"]) else {
                    return Ok(Outcome::Ignored("a charge without payment intent"));
                };
                match self.store.order_by_payment(pi).await? {
                    Some(o) => {
                        self.advance(&o.id, None, OrderStatus::Refunded, Some(pi))
                            .await?;
                        Ok(Outcome::Applied)
                    }
                    None => Ok(Outcome::Waiting(format!("no order paid by {pi} yet"))),
                }
            }
            "account.updated" => self.apply_account(obj, r.created).await,
            "charge.dispute.created" => {
                // A chargeback: revoke what the payment bought, as a
                // refund does (the dispute's outcome does not give it
                // back; the coach or an admin can grant it again).
                let Some(pi) = id_of(&obj["payment_intent"]) else {
                    return Ok(Outcome::Ignored("a dispute without payment intent"));
                };
                match self.store.order_by_payment(pi).await? {
                    Some(o) => {
                        self.advance(&o.id, None, OrderStatus::Disputed, Some(pi))
                            .await?;
                        Ok(Outcome::Applied)
                    }
                    None => Ok(Outcome::Waiting(format!("no order paid by {pi} yet"))),
                }
            }
            other => match self.apply_billing(other, obj, r.created).await? {
                Some(outcome) => Ok(outcome),
                None => Ok(Outcome::Ignored("event type not used")),
            },
        }
    }

    /// Moves order `id` forward to `to` (creating it from `seed` when
    /// unknown) and brings its entitlement in line. Compare-and-set on the
    /// order's version: a racing writer makes it read again.
    pub(crate) async fn advance(
        &self,
        id: &str,
        seed: Option<Order>,
        to: OrderStatus,
        payment: Option<&str>,
    ) -> Result<Order, ProgramError> {
        for _ in 0..8 {
            let order = match self.store.order(id).await? {
                None => {
                    let Some(mut o) = seed.clone() else {
                        return Err(ProgramError::NotFound(id.to_owned()));
                    };
                    o.status = to;
                    o.payment = payment.map(str::to_owned);
                    if to == OrderStatus::Paid {
                        o.paid_ms = Some(now_ms());
                    }
                    if !self.store.put_order(&o).await? {
                        continue;
                    }
                    o
                }
                Some(o) if rank(to) <= rank(o.status) => o,
                Some(mut o) => {
                    if to == OrderStatus::Paid && o.paid_ms.is_none() {
                        o.paid_ms = Some(now_ms());
                    }
                    o.status = to;
                    o.payment = payment.map(str::to_owned).or(o.payment);
                    o.updated_ms = now_ms();
                    o.version += 1;
                    if !self.store.put_order(&o).await? {
                        continue;
                    }
                    o
                }
            };
            self.sync_entitlement(&order).await?;
            return Ok(order);
        }
        Err(ProgramError::Unavailable(format!(
            "order {id} keeps changing; retry"
        )))
    }

    async fn sync_entitlement(&self, o: &Order) -> Result<(), ProgramError> {
        if o.kind == chalktalk_adapters::programs::OrderKind::Invoice {
            // A subscription's invoice: the subscription's state decides
            // (`super::program_subs`).
            return Ok(());
        }
        let current = self.store.entitlement(&o.user, &o.program).await?;
        let active = current
            .as_ref()
            .is_some_and(|e| e.status == EntitlementStatus::Active);
        match o.status {
            OrderStatus::Paid if !active => {
                self.store
                    .put_entitlement(&Entitlement {
                        user: o.user.clone(),
                        program: o.program.clone(),
                        source: Source::Purchase,
                        status: EntitlementStatus::Active,
                        granted_ms: now_ms(),
                        revoked_ms: None,
                        reference: Some(o.id.clone()),
                    })
                    .await?;
            }
            OrderStatus::Refunded | OrderStatus::Disputed => {
                if let Some(mut e) = current.filter(|e| {
                    e.status == EntitlementStatus::Active && e.reference.as_deref() == Some(&o.id)
                }) {
                    e.status = EntitlementStatus::Revoked;
                    e.revoked_ms = Some(now_ms());
                    self.store.put_entitlement(&e).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
