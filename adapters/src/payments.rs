//! The payment port ([`Payments`]) and its Stripe adapter ([`StripePayments`],
//! async-stripe 1.0): Checkout Sessions for one-time purchases and for
//! subscriptions to a plan's Price, refunds,
//! and the webhook signature check ([`verify_webhook`]). Every POST carries
//! an idempotency key made by the caller from what it is about (the order,
//! the refund), so a retried request is applied once by Stripe.
//! `base_url` points the client elsewhere (tests: localstripe and a server
//! of recorded Checkout responses).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionLineItemsPriceDataRecurring,
    CreateCheckoutSessionLineItemsPriceDataRecurringInterval,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentIntentDataTransferData,
    CreateCheckoutSessionSubscriptionData, CreateCheckoutSessionSubscriptionDataTransferData,
    ProductData,
};

/// What a payment request failed with.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The provider refused the request (a 4xx): its message.
    #[error("the payment provider refused: {0}")]
    Refused(String),
    /// The provider could not be reached or answered something unreadable.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    #[error("bad payment settings: {0}")]
    Config(String),
}

/// A Checkout Session to open for one order.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// Our order reference (client_reference_id and metadata); also the
    /// idempotency key's base.
    pub reference: String,
    pub user: String,
    pub program: String,
    pub title: String,
    pub amount: u64,
    pub currency: String,
    pub success_url: String,
    pub cancel_url: String,
    /// A destination charge: the coach's Connect account and the
    /// platform's fee in minor units (`transfer_data.destination`,
    /// `application_fee_amount`).
    pub destination: Option<(String, u64)>,
    /// A program sold by subscription: the session is in subscription
    /// mode, the price recurs at this interval, and a destination's fee is
    /// the platform's percent of every invoice
    /// (`subscription_data.application_fee_percent`).
    pub recurring: Option<Recurring>,
}

/// How a program's subscription recurs (see [`CheckoutRequest::recurring`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurring {
    pub interval: crate::programs::Interval,
    /// The platform's fee in percent of each invoice (with a destination).
    pub fee_percent: u8,
}

/// A Checkout Session in subscription mode to one plan's Price.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    /// Our reference (client_reference_id, metadata, idempotency key).
    pub reference: String,
    pub user: String,
    /// Our name of the plan (`coach_premium`, ...), in the metadata.
    pub plan: String,
    /// The Stripe Price (or Plan) id.
    pub price: String,
    pub success_url: String,
    pub cancel_url: String,
    /// Free trial days before the first invoice (`trial_period_days`).
    pub trial_days: Option<u32>,
}

/// The session the buyer is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
}

/// Talks to the payment provider.
#[async_trait]
pub trait Payments: Send + Sync + 'static {
    /// Opens a Checkout Session for one program: in payment mode, or in
    /// subscription mode with a recurring price ([`CheckoutRequest::recurring`]).
    async fn checkout(&self, req: &CheckoutRequest) -> Result<CheckoutSession, PaymentError>;
    /// Refunds a payment in full: the refund's id.
    async fn refund(&self, payment: &str, key: &str) -> Result<String, PaymentError>;
    /// Opens a Checkout Session in subscription mode; the subscription it
    /// creates carries `chalktalk_user` and `chalktalk_plan` in its
    /// metadata (what the webhooks read).
    async fn subscribe(&self, req: &SubscribeRequest) -> Result<CheckoutSession, PaymentError>;
    /// One page (at most 100) of the account's events, newest first,
    /// after the event `starting_after`: the events as JSON and whether
    /// more follow (`GET /v1/events`; Stripe keeps 30 days of them).
    async fn events(
        &self,
        starting_after: Option<&str>,
    ) -> Result<(Vec<serde_json::Value>, bool), PaymentError>;
    /// Creates a Connect Express account for `coach` (metadata
    /// `chalktalk_user`; idempotency key `account-<coach>`): its id.
    async fn create_account(&self, coach: &str) -> Result<String, PaymentError>;
    /// An onboarding link (`account_onboarding`) of `account`: its URL.
    async fn account_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<String, PaymentError>;
    /// A login link to the Express dashboard of `account`: its URL.
    async fn login_link(&self, account: &str) -> Result<String, PaymentError>;
}

/// Sends a form request as plain JSON (no typed object compiled).
async fn raw(
    client: &Client,
    method: stripe_client_core::StripeMethod,
    path: &str,
    form: &[(&str, &str)],
    key: Option<RequestStrategy>,
) -> Result<serde_json::Value, PaymentError> {
    let mut req = stripe_client_core::RequestBuilder::new(method, path);
    if !form.is_empty() {
        let map: std::collections::BTreeMap<&str, &str> = form.iter().copied().collect();
        req = req.form(&map);
    }
    let mut req = req.customize::<miniserde::json::Value>();
    if let Some(k) = key {
        req = req.request_strategy(k);
    }
    let v = req.send(client).await.map_err(failed)?;
    serde_json::from_str(&miniserde::json::to_string(&v))
        .map_err(|e| PaymentError::Unavailable(format!("{path}: {e}")))
}

fn field(v: &serde_json::Value, name: &str, what: &str) -> Result<String, PaymentError> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| PaymentError::Unavailable(format!("{what} without {name}")))
}

#[derive(serde::Serialize)]
struct ListEvents<'a> {
    limit: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

/// Stripe through async-stripe.
pub struct StripePayments {
    client: Client,
}

impl StripePayments {
    /// A client with `secret_key`, at `base_url` when given (else Stripe).
    pub fn new(secret_key: &str, base_url: Option<&str>) -> Result<StripePayments, PaymentError> {
        let mut b = ClientBuilder::new(secret_key).timeout(Duration::from_secs(20));
        if let Some(url) = base_url {
            b = b.url(url);
        }
        let client = b.build().map_err(|e| PaymentError::Config(e.to_string()))?;
        Ok(StripePayments { client })
    }
}

fn key(k: &str) -> Result<RequestStrategy, PaymentError> {
    IdempotencyKey::new(k)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| PaymentError::Config(format!("idempotency key: {e}")))
}

fn failed(e: stripe::StripeError) -> PaymentError {
    match e {
        stripe::StripeError::Stripe(err, status) if (400..500).contains(&status) => {
            PaymentError::Refused(
                err.message
                    .clone()
                    .unwrap_or_else(|| format!("status {status}")),
            )
        }
        other => PaymentError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl Payments for StripePayments {
    #[tracing::instrument(skip_all, fields(reference = %req.reference))]
    async fn checkout(&self, req: &CheckoutRequest) -> Result<CheckoutSession, PaymentError> {
        let amount = i64::try_from(req.amount)
            .map_err(|_| PaymentError::Refused("amount out of range".into()))?;
        let currency: stripe_types::Currency = req
            .currency
            .parse()
            .map_err(|_| PaymentError::Refused("unknown currency".into()))?;
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
        price.unit_amount = Some(amount);
        price.product_data = Some(ProductData::new(req.title.clone()));
        if let Some(r) = &req.recurring {
            use crate::programs::Interval;
            use CreateCheckoutSessionLineItemsPriceDataRecurringInterval as Every;
            let every = match r.interval {
                Interval::Monthly => Every::Month,
                Interval::Yearly => Every::Year,
            };
            price.recurring = Some(CreateCheckoutSessionLineItemsPriceDataRecurring::new(every));
        }
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price_data = Some(price);
        item.quantity = Some(1);
        let meta = HashMap::from([
            ("chalktalk_order".to_string(), req.reference.clone()),
            ("chalktalk_user".to_string(), req.user.clone()),
            ("chalktalk_program".to_string(), req.program.clone()),
        ]);
        let session = CreateCheckoutSession::new()
            .line_items(vec![item])
            .client_reference_id(req.reference.clone())
            .metadata(meta.clone())
            .success_url(req.success_url.clone())
            .cancel_url(req.cancel_url.clone());
        let session = match &req.recurring {
            None => {
                let mut pi = CreateCheckoutSessionPaymentIntentData::new();
                pi.metadata = Some(meta);
                if let Some((account, fee)) = &req.destination {
                    pi.transfer_data = Some(
                        CreateCheckoutSessionPaymentIntentDataTransferData::new(account.clone()),
                    );
                    pi.application_fee_amount = Some(
                        i64::try_from(*fee)
                            .map_err(|_| PaymentError::Refused("fee out of range".into()))?,
                    );
                }
                session
                    .mode(stripe_shared::CheckoutSessionMode::Payment)
                    .payment_intent_data(pi)
            }
            Some(r) => {
                // The subscription carries the metadata: its events say
                // whose it is and which program it opens.
                let mut sub = CreateCheckoutSessionSubscriptionData::new();
                sub.metadata = Some(meta);
                if let Some((account, _)) = &req.destination {
                    sub.transfer_data = Some(
                        CreateCheckoutSessionSubscriptionDataTransferData::new(account.clone()),
                    );
                    sub.application_fee_percent = Some(f64::from(r.fee_percent));
                }
                session
                    .mode(stripe_shared::CheckoutSessionMode::Subscription)
                    .subscription_data(sub)
            }
        };
        let s = session
            .customize()
            .request_strategy(key(&format!("checkout-{}", req.reference))?)
            .send(&self.client)
            .await
            .map_err(failed)?;
        Ok(session_of(s))
    }

    #[tracing::instrument(skip_all, fields(reference = %req.reference, plan = %req.plan))]
    async fn subscribe(&self, req: &SubscribeRequest) -> Result<CheckoutSession, PaymentError> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(req.price.clone());
        item.quantity = Some(1);
        let meta = HashMap::from([
            ("chalktalk_ref".to_string(), req.reference.clone()),
            ("chalktalk_user".to_string(), req.user.clone()),
            ("chalktalk_plan".to_string(), req.plan.clone()),
        ]);
        let mut sub = CreateCheckoutSessionSubscriptionData::new();
        sub.metadata = Some(meta.clone());
        sub.trial_period_days = req.trial_days.filter(|d| *d > 0);
        let s = CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Subscription)
            .line_items(vec![item])
            .client_reference_id(req.reference.clone())
            .metadata(meta)
            .subscription_data(sub)
            .success_url(req.success_url.clone())
            .cancel_url(req.cancel_url.clone())
            .customize()
            .request_strategy(key(&format!("subscribe-{}", req.reference))?)
            .send(&self.client)
            .await
            .map_err(failed)?;
        Ok(session_of(s))
    }

    #[tracing::instrument(skip(self))]
    async fn create_account(&self, coach: &str) -> Result<String, PaymentError> {
        use stripe_client_core::StripeMethod;
        let form = [("type", "express"), ("metadata[chalktalk_user]", coach)];
        let k = key(&format!("account-{coach}"))?;
        let v = raw(
            &self.client,
            StripeMethod::Post,
            "/accounts",
            &form,
            Some(k),
        )
        .await?;
        field(&v, "id", "an account")
    }

    #[tracing::instrument(skip(self, refresh_url, return_url))]
    async fn account_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<String, PaymentError> {
        use stripe_client_core::StripeMethod;
        let form = [
            ("account", account),
            ("refresh_url", refresh_url),
            ("return_url", return_url),
            ("type", "account_onboarding"),
        ];
        let v = raw(
            &self.client,
            StripeMethod::Post,
            "/account_links",
            &form,
            None,
        )
        .await?;
        field(&v, "url", "an account link")
    }

    #[tracing::instrument(skip(self))]
    async fn login_link(&self, account: &str) -> Result<String, PaymentError> {
        use stripe_client_core::StripeMethod;
        let path = format!("/accounts/{account}/login_links");
        let v = raw(&self.client, StripeMethod::Post, &path, &[], None).await?;
        field(&v, "url", "a login link")
    }

    #[tracing::instrument(skip(self))]
    async fn events(
        &self,
        starting_after: Option<&str>,
    ) -> Result<(Vec<serde_json::Value>, bool), PaymentError> {
        use stripe_client_core::{RequestBuilder, StripeMethod};
        let page: miniserde::json::Value = RequestBuilder::new(StripeMethod::Get, "/events")
            .query(&ListEvents {
                limit: 100,
                starting_after,
            })
            .customize::<miniserde::json::Value>()
            .send(&self.client)
            .await
            .map_err(failed)?;
        let page: serde_json::Value = serde_json::from_str(&miniserde::json::to_string(&page))
            .map_err(|e| PaymentError::Unavailable(format!("an event list: {e}")))?;
        let events = match page["data"].as_array() {
            Some(list) => list.clone(),
            None => {
                return Err(PaymentError::Unavailable(
                    "an event list without data".into(),
                ));
            }
        };
        Ok((events, page["has_more"].as_bool().unwrap_or(false)))
    }

    #[tracing::instrument(skip_all, fields(payment = %payment))]
    async fn refund(&self, payment: &str, k: &str) -> Result<String, PaymentError> {
        let r = stripe_core::refund::CreateRefund::new()
            .payment_intent(payment)
            .customize()
            .request_strategy(key(k)?)
            .send(&self.client)
            .await
            .map_err(failed)?;
        Ok(r.id.as_str().to_owned())
    }
}

/// Why a webhook body was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("bad or missing Stripe-Signature: {0}")]
    Signature(String),
    #[error("the body is not a Stripe event: {0}")]
    Body(String),
}

/// The fields of a verified event the service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    pub id: String,
    pub kind: String,
    pub created: i64,
}

/// Checks `signature` (the `Stripe-Signature` header) over the raw `body`
/// with the endpoint `secret` (HMAC-SHA256, at most 300 s old:
/// `stripe_webhook::Webhook`), then reads the event's id, type and
/// created time.
pub fn verify_webhook(
    body: &[u8],
    signature: &str,
    secret: &str,
) -> Result<VerifiedEvent, WebhookError> {
    let text = std::str::from_utf8(body).map_err(|e| WebhookError::Body(e.to_string()))?;
    match stripe_webhook::Webhook::construct_event(text, signature, secret) {
        // A body whose object async-stripe cannot type (we enable none of
        // its event objects) is still verified: the signature is checked
        // before the body is parsed.
        Ok(_) | Err(stripe_webhook::WebhookError::BadParse(_)) => {}
        Err(e) => return Err(WebhookError::Signature(e.to_string())),
    }
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| WebhookError::Body(e.to_string()))?;
    let id = v["id"].as_str().filter(|s| !s.is_empty());
    let kind = v["type"].as_str().filter(|s| !s.is_empty());
    match (id, kind, v["created"].as_i64()) {
        (Some(id), Some(kind), Some(created)) if id.len() <= 255 => Ok(VerifiedEvent {
            id: id.to_owned(),
            kind: kind.to_owned(),
            created,
        }),
        _ => Err(WebhookError::Body(
            "id, type and created are required".into(),
        )),
    }
}

/// A `Stripe-Signature` header for `body` (tests and tools).
pub fn sign_webhook(body: &str, secret: &str, timestamp: Option<i64>) -> String {
    stripe_webhook::Webhook::generate_test_header(body, secret, timestamp)
}

/// Our view of a Checkout Session Stripe created.
fn session_of(s: stripe_checkout::CheckoutSession) -> CheckoutSession {
    CheckoutSession {
        id: s.id.as_str().to_owned(),
        url: s.url,
        amount_total: s.amount_total,
        currency: s.currency.map(|c| c.to_string()),
    }
}
