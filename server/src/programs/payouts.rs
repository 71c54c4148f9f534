//! Coach payouts over REST (Stripe Connect Express): onboarding
//! (`POST /api/v1/me/payouts/onboarding`: creates the account on first
//! use, answers an account link), the Express dashboard
//! (`POST /api/v1/me/payouts/dashboard`: a login link) and the state
//! (`GET /api/v1/me/payouts`).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use chalktalk_services::programs::payouts::OnboardInput;
use serde_json::json;

use super::programs;
use crate::accounts::JsonBody;
use crate::app::App;
use crate::permissions::{ApiResult, LiveCaller};

/// `POST /api/v1/me/payouts/onboarding`: the coach's Connect Express
/// account (created once) and a Stripe onboarding link to send them to.
#[utoipa::path(post, path = "/api/v1/me/payouts/onboarding", tag = "payments", request_body = OnboardInput, responses((status = 200, description = "PayoutLink: {account, url, payable}"), (status = 403, description = "forbidden: coaches only"), (status = 422, description = "validation_failed: refresh_url, return_url"), (status = 502, description = "payment_refused"), (status = 503, description = "payments_disabled, unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn onboarding(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    JsonBody(b): JsonBody<OnboardInput>,
) -> ApiResult {
    let out = programs(&app)?.onboard(&c.sub, c.role, &b).await?;
    Ok(Json(out).into_response())
}

/// `POST /api/v1/me/payouts/dashboard`: a login link to the coach's
/// Express dashboard.
#[utoipa::path(post, path = "/api/v1/me/payouts/dashboard", tag = "payments", responses((status = 200, description = "PayoutLink: {account, url, payable}"), (status = 409, description = "no_payout_account: onboarding not started"), (status = 502, description = "payment_refused"), (status = 503, description = "payments_disabled, unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn dashboard(State(app): State<App>, LiveCaller(c): LiveCaller) -> ApiResult {
    let out = programs(&app)?.dashboard(&c.sub).await?;
    Ok(Json(out).into_response())
}

/// `GET /api/v1/me/payouts`: the coach's payout account and whether they
/// can be paid (`payable`: Stripe's charges_enabled and payouts_enabled).
#[utoipa::path(get, path = "/api/v1/me/payouts", tag = "payments", responses((status = 200, description = "{account: {coach, account, charges_enabled, payouts_enabled, details_submitted, event_created, created_ms, updated_ms} | null, payable}"), (status = 503, description = "unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn state(State(app): State<App>, LiveCaller(c): LiveCaller) -> ApiResult {
    let a = programs(&app)?.payout_account(&c.sub).await?;
    let payable = a.as_ref().is_some_and(|a| a.payable());
    Ok(Json(json!({ "account": a, "payable": payable })).into_response())
}
