//! REST routes of training programs and payments under `/api/v1` (the
//! service is `chalktalk_services::programs`; contract: docs/PROTOCOL.md,
//! "Training programs and payments"): a coach's programs ([`coach`]),
//! enrollment, progress and the caller's locker ([`athlete`]), Stripe
//! checkout, refunds and the webhook ([`pay`]), subscriptions to the plans
//! and admin overrides ([`billing`]), coach payouts through Stripe Connect
//! ([`payouts`]), revenue analytics for coaches and admins ([`revenue`]).
//! Also where the node builds
//! the service from its settings and keeps applying stored webhook events
//! ([`spawn_webhook_sweeper`]).

mod athlete;
mod billing;
mod coach;
mod pay;
mod payouts;
mod revenue;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use chalktalk_actors::encoder::MediaStore;
use chalktalk_adapters::payments::{Payments, StripePayments};
use chalktalk_adapters::programs::ProgramStore;
use chalktalk_services::programs::{Billing, PaymentsConfig, ProgramService};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::accounts::MAX_JSON_BYTES;
use crate::app::App;
use crate::http::ApiError;

/// How often stored webhook events not yet applied are retried.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The program service of a node: Stripe when a secret key is set.
pub fn service(
    cfg: &PaymentsConfig,
    store: Arc<dyn ProgramStore>,
    media: Option<Arc<dyn MediaStore>>,
) -> Result<Arc<ProgramService>, String> {
    let payments = match &cfg.secret_key {
        Some(key) => Some(Arc::new(
            StripePayments::new(key, cfg.api_base.as_deref()).map_err(|e| e.to_string())?,
        ) as Arc<dyn Payments>),
        None => None,
    };
    Ok(ProgramService::new(
        store,
        media,
        payments,
        cfg.webhook_secret.clone(),
        Billing {
            prices: cfg.prices.clone(),
            past_due_grace_secs: cfg.past_due_grace_secs,
            coach_trial_days: cfg.coach_trial_days,
            platform_fee_percent: cfg.platform_fee_percent,
        },
    )
    .with_connect_secret(cfg.connect_webhook_secret.clone()))
}

/// Applies pending webhook receipts now (those a previous run stored but
/// did not apply) and then every [`SWEEP_EVERY`], for as long as the node
/// holds the service (a weak reference: a stopped node's store is
/// released).
pub fn spawn_webhook_sweeper(svc: &Arc<ProgramService>) {
    let weak = Arc::downgrade(svc);
    tokio::spawn(async move {
        loop {
            let Some(svc) = weak.upgrade() else { return };
            match svc.process_pending().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(applied = n, "stored stripe events applied"),
                Err(e) => tracing::warn!(error = %e, "stored stripe events not applied yet"),
            }
            drop(svc);
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    });
}

pub(crate) fn programs(app: &App) -> Result<&Arc<ProgramService>, ApiError> {
    app.programs
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this node's store keeps no programs"))
}

/// Largest webhook body.
pub const MAX_WEBHOOK_BYTES: usize = 512 * 1024;

/// Every route of this module; each handler is also in the OpenAPI
/// document.
pub fn routes(app: App) -> OpenApiRouter {
    let webhook = OpenApiRouter::new()
        .routes(routes!(pay::webhook))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .with_state(app.clone());
    OpenApiRouter::new()
        .routes(routes!(coach::create))
        .routes(routes!(coach::get, coach::update))
        .routes(routes!(coach::publish))
        .routes(routes!(coach::unpublish))
        .routes(routes!(coach::of_coach))
        .routes(routes!(athlete::enroll))
        .routes(routes!(athlete::done))
        .routes(routes!(athlete::progress))
        .routes(routes!(athlete::locker))
        .routes(routes!(athlete::review))
        .routes(routes!(pay::checkout))
        .routes(routes!(pay::refund))
        .routes(routes!(billing::subscribe))
        .routes(routes!(billing::mine))
        .routes(routes!(billing::of_user))
        .routes(routes!(billing::clear_override))
        .routes(routes!(payouts::onboarding))
        .routes(routes!(payouts::dashboard))
        .routes(routes!(payouts::state))
        .routes(routes!(revenue::coach))
        .routes(routes!(revenue::platform))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .with_state(app)
        .merge(webhook)
}
