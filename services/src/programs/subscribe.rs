//! Subscriptions to the plans (coach basic/premium, athlete paid): a
//! Stripe Checkout Session in subscription mode to the plan's configured
//! Price ([`ProgramService::subscribe`]), and the webhook events that
//! keep each subscription's record ([`ProgramService::apply_billing`]):
//! `customer.subscription.created` / `.updated` / `.deleted` write the
//! subscription's state as Stripe sends it; `invoice.payment_failed`
//! makes an active one past due, `invoice.paid` /
//! `invoice.payment_succeeded` make a past-due one active again. A
//! subscription to a training program's own price (metadata
//! `chalktalk_program`, from `super::checkout`) is recorded the same way
//! as [`PaidPlan::Program`] and opens or closes that program
//! (`super::program_subs`); each of its paid invoices is recorded as an
//! order of kind `Invoice` for the revenue figures.
//!
//! Any order: a record remembers the `created` of the event that last set
//! it; an older event changes nothing, and a canceled subscription stays
//! canceled (Stripe never reopens one). An invoice event about a
//! subscription no record knows yet waits for it (the receipt stays
//! pending). The plan itself is derived from the records at each
//! decision (`super::plans`).

use chalktalk_adapters::billing::{PaidPlan, Subscription, SubscriptionStatus};
use chalktalk_adapters::payments::SubscribeRequest;
use chalktalk_adapters::programs::{Order, OrderKind, OrderStatus};
use chalktalk_protocol::Role;
use serde::Deserialize;
use serde_json::Value;

use super::checkout::{CheckoutOutput, url};
use super::plans::{in_force, now_secs};
use super::webhook::Outcome;
use super::{ProgramError, ProgramService, new_id, now_ms};

/// What to subscribe to and where Checkout sends the buyer back.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubscribeInput {
    /// `coach_basic` or `coach_premium` (coaches), `athlete_paid`
    /// (athletes).
    pub plan: String,
    /// An http(s) URL, at most 2000 characters.
    pub success_url: String,
    /// An http(s) URL, at most 2000 characters.
    pub cancel_url: String,
}

/// An id field that Stripe writes as a string or, expanded, an object.
fn id_of(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v["id"].as_str())
}

/// The first item's price (or, older API versions and localstripe, plan)
/// id of a subscription object.
fn price_of(obj: &Value) -> Option<&str> {
    let item = &obj["items"]["data"][0];
    id_of(&item["price"])
        .or_else(|| id_of(&item["plan"]))
        .or_else(|| id_of(&obj["plan"]))
}

/// The subscription an invoice belongs to (API versions before and after
/// 2025-03: `subscription`, or `parent.subscription_details`).
fn invoice_subscription(obj: &Value) -> Option<&str> {
    id_of(&obj["subscription"])
        .or_else(|| obj["parent"]["subscription_details"]["subscription"].as_str())
}

impl ProgramService {
    /// Opens a Checkout Session for `user` (of `role`) to subscribe to a
    /// plan; the plan comes with the webhook's subscription event.
    #[tracing::instrument(skip(self, input))]
    pub async fn subscribe(
        &self,
        user: &str,
        role: Role,
        input: &SubscribeInput,
    ) -> Result<CheckoutOutput, ProgramError> {
        let success_url = url("success_url", &input.success_url)?;
        let cancel_url = url("cancel_url", &input.cancel_url)?;
        let fits = match super::plans::paid_plan(&input.plan) {
            Some(p @ (PaidPlan::CoachBasic | PaidPlan::CoachPremium)) if role == Role::Coach => {
                Some(p)
            }
            Some(p @ PaidPlan::AthletePaid) if role == Role::Athlete => Some(p),
            _ => None,
        };
        let Some(plan) = fits else {
            return Err(ProgramError::invalid(
                "plan",
                "coach_basic or coach_premium for coaches, athlete_paid for athletes",
            ));
        };
        let Some(price) = self.billing.prices.of(plan) else {
            return Err(ProgramError::PlanUnavailable);
        };
        let now = now_secs();
        let grace = self.billing.past_due_grace_secs;
        let had = self.store.subscriptions_of(user, super::MAX_LIST).await?;
        if had
            .iter()
            .any(|s| s.plan == plan && in_force(s, now, grace))
        {
            return Err(ProgramError::AlreadySubscribed);
        }
        // A coach's first plan subscription starts with the free trial
        // (what a new coach's account age gave before subscriptions).
        let first = !had.iter().any(|s| s.plan != PaidPlan::Program);
        let trial_days = (role == Role::Coach && first && self.billing.coach_trial_days > 0)
            .then_some(self.billing.coach_trial_days);
        let payments = self
            .payments
            .as_deref()
            .ok_or(ProgramError::PaymentsDisabled)?;
        let session = payments
            .subscribe(&SubscribeRequest {
                reference: new_id("subref"),
                user: user.to_owned(),
                plan: input.plan.clone(),
                price: price.to_owned(),
                success_url,
                cancel_url,
                trial_days,
            })
            .await?;
        Ok(CheckoutOutput {
            order: session.id,
            url: session.url,
            amount: session
                .amount_total
                .and_then(|a| u64::try_from(a).ok())
                .unwrap_or(0),
            currency: session.currency.unwrap_or_default(),
        })
    }

    /// Applies one subscription or invoice event (`kind`, its object and
    /// `created`); `None` for other kinds.
    pub(crate) async fn apply_billing(
        &self,
        kind: &str,
        obj: &Value,
        created: i64,
    ) -> Result<Option<Outcome>, ProgramError> {
        let out = match kind {
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                self.subscription_event(kind, obj, created).await?
            }
            "invoice.payment_failed" => self.invoice_event(obj, created, false).await?,
            "invoice.paid" | "invoice.payment_succeeded" => {
                self.invoice_event(obj, created, true).await?
            }
            _ => return Ok(None),
        };
        Ok(Some(out))
    }

    async fn subscription_event(
        &self,
        kind: &str,
        obj: &Value,
        created: i64,
    ) -> Result<Outcome, ProgramError> {
        let Some(id) = obj["id"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 255)
        else {
            return Err(ProgramError::BadEvent("a subscription without id".into()));
        };
        let stored = self.store.subscription(id).await?;
        let user = obj["metadata"]["chalktalk_user"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| stored.as_ref().map(|s| s.user.clone()));
        let Some(user) = user else {
            return Ok(Outcome::Ignored("not a chalktalk subscription"));
        };
        // A program's own subscription names its program (checkout.rs).
        let program = obj["metadata"]["chalktalk_program"]
            .as_str()
            .filter(|p| !p.is_empty() && p.len() <= 255)
            .map(str::to_owned)
            .or_else(|| stored.as_ref().and_then(|s| s.program.clone()));
        let plan = if program.is_some() {
            Some(PaidPlan::Program)
        } else {
            price_of(obj)
                .and_then(|p| self.billing.prices.plan(p))
                .or(stored.as_ref().map(|s| s.plan))
        };
        let Some(plan) = plan else {
            return Ok(Outcome::Ignored("its price is not one of the plans"));
        };
        let mut status = SubscriptionStatus::parse(obj["status"].as_str().unwrap_or_default());
        if kind == "customer.subscription.deleted" {
            status = SubscriptionStatus::Canceled;
        }
        let item = &obj["items"]["data"][0];
        let period_end = obj["current_period_end"]
            .as_i64()
            .or_else(|| item["current_period_end"].as_i64());
        let price = if item["price"].is_object() {
            &item["price"]
        } else {
            &item["plan"]
        };
        let fresh = Subscription {
            id: id.to_owned(),
            user,
            customer: id_of(&obj["customer"]).map(str::to_owned),
            plan,
            program,
            status,
            current_period_end: period_end,
            cancel_at_period_end: obj["cancel_at_period_end"].as_bool().unwrap_or(false),
            cancel_at: obj["cancel_at"].as_i64(),
            past_due_since: None,
            event_created: created,
            amount: price["unit_amount"]
                .as_u64()
                .or_else(|| price["amount"].as_u64())
                .unwrap_or(0),
            currency: price["currency"].as_str().unwrap_or_default().to_owned(),
            created_ms: now_ms(),
            updated_ms: now_ms(),
            version: 1,
        };
        self.write_subscription(id, created, move |old| {
            let mut s = fresh.clone();
            if let Some(old) = old {
                s.created_ms = old.created_ms;
                s.version = old.version + 1;
                if s.status == SubscriptionStatus::PastDue
                    && old.status == SubscriptionStatus::PastDue
                {
                    s.past_due_since = old.past_due_since;
                }
            }
            if s.status == SubscriptionStatus::PastDue && s.past_due_since.is_none() {
                s.past_due_since = Some(created);
            }
            Some(s)
        })
        .await
    }

    async fn invoice_event(
        &self,
        obj: &Value,
        created: i64,
        paid: bool,
    ) -> Result<Outcome, ProgramError> {
        let Some(id) = invoice_subscription(obj) else {
            return Ok(Outcome::Ignored("not a subscription invoice"));
        };
        let meta = &obj["parent"]["subscription_details"]["metadata"];
        if meta.is_object() && meta["chalktalk_user"].is_null() {
            return Ok(Outcome::Ignored("not a chalktalk subscription"));
        }
        let Some(stored) = self.store.subscription(id).await? else {
            return Ok(Outcome::Waiting(format!("no subscription {id} yet")));
        };
        let recorded = match (&stored.program, paid) {
            (Some(program), true) => self.record_invoice(obj, &stored.user, program).await?,
            _ => false,
        };
        let out = self
            .write_subscription(id, created, move |old| {
                let mut s = old?.clone();
                let to = match (paid, s.status) {
                    (
                        true,
                        SubscriptionStatus::PastDue
                        | SubscriptionStatus::Unpaid
                        | SubscriptionStatus::Incomplete,
                    ) => SubscriptionStatus::Active,
                    (false, SubscriptionStatus::Active | SubscriptionStatus::Trialing) => {
                        SubscriptionStatus::PastDue
                    }
                    _ => return None,
                };
                s.past_due_since = (to == SubscriptionStatus::PastDue).then_some(created);
                s.status = to;
                s.event_created = created;
                s.version += 1;
                Some(s)
            })
            .await?;
        Ok(match out {
            Outcome::Ignored(_) if recorded => Outcome::Applied,
            other => other,
        })
    }

    /// Records the paid invoice `obj` of `user`'s subscription to
    /// `program` as an order of kind `Invoice` (the money the revenue
    /// figures count); once per invoice (`invoice.paid` and
    /// `invoice.payment_succeeded` both come), nothing for a zero amount
    /// (a trial). Whether it was recorded now.
    async fn record_invoice(
        &self,
        obj: &Value,
        user: &str,
        program: &str,
    ) -> Result<bool, ProgramError> {
        let Some(id) = obj["id"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 255)
        else {
            return Err(ProgramError::BadEvent("an invoice without id".into()));
        };
        let amount = obj["amount_paid"].as_u64().unwrap_or(0);
        if amount == 0 || self.store.order(id).await?.is_some() {
            return Ok(false);
        }
        let coach = self.store.program(program).await?.map(|p| p.coach);
        let secs = |v: &Value| v.as_u64().map(|s| s.saturating_mul(1000));
        let paid_ms = secs(&obj["status_transitions"]["paid_at"]).unwrap_or_else(now_ms);
        let order = Order {
            id: id.to_owned(),
            user: user.to_owned(),
            program: program.to_owned(),
            coach: coach.unwrap_or_default(),
            amount,
            currency: obj["currency"].as_str().unwrap_or_default().to_owned(),
            // The application fee Stripe took for the platform; the
            // configured percent when the invoice does not say.
            fee: obj["application_fee_amount"]
                .as_u64()
                .unwrap_or_else(|| self.fee_of(amount)),
            status: OrderStatus::Paid,
            // Refunds and disputes name it (API versions that still
            // carry it on the invoice).
            payment: id_of(&obj["payment_intent"]).map(str::to_owned),
            paid_ms: Some(paid_ms),
            created_ms: secs(&obj["created"]).unwrap_or(paid_ms),
            updated_ms: now_ms(),
            version: 1,
            kind: OrderKind::Invoice,
        };
        let stored = self.store.put_order(&order).await?;
        if stored {
            tracing::info!(invoice = id, %user, program, amount, "program subscription invoice recorded");
        }
        Ok(stored)
    }

    /// Writes what `next` makes of the stored subscription `id` unless the
    /// stored state is newer than `created` or ended; compare-and-set on
    /// the version (a racing writer makes it read again).
    async fn write_subscription(
        &self,
        id: &str,
        created: i64,
        next: impl Fn(Option<&Subscription>) -> Option<Subscription>,
    ) -> Result<Outcome, ProgramError> {
        for _ in 0..8 {
            let old = self.store.subscription(id).await?;
            if let Some(o) = &old {
                if o.status == SubscriptionStatus::Canceled {
                    return Ok(Outcome::Ignored("the subscription has ended"));
                }
                if created < o.event_created {
                    return Ok(Outcome::Ignored("an older state than the stored one"));
                }
            }
            let Some(mut s) = next(old.as_ref()) else {
                return Ok(Outcome::Ignored("nothing to change"));
            };
            s.updated_ms = now_ms();
            if self.store.put_subscription(&s).await? {
                tracing::info!(subscription = %s.id, user = %s.user, status = ?s.status, plan = ?s.plan, "subscription state");
                self.sync_program_access(id).await?;
                return Ok(Outcome::Applied);
            }
        }
        Err(ProgramError::Unavailable(format!(
            "subscription {id} keeps changing; retry"
        )))
    }
}
