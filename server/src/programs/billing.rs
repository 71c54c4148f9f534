//! Subscriptions to the plans over REST: subscribing through Stripe
//! Checkout (`POST /api/v1/me/subscription/checkout`), the caller's plan
//! and subscriptions (`GET /api/v1/me/subscription`), and for admins a
//! user's billing with the audit log (`GET
//! /api/v1/admin/users/{id}/billing`) and removing an override (`DELETE
//! /api/v1/admin/users/{id}/plan/override`; setting one is `PUT
//! /api/v1/admin/users/{id}/plan`, `crate::permissions`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chalktalk_services::permissions::decide;
use chalktalk_services::programs::plans::plan_name;
use chalktalk_services::programs::subscribe::SubscribeInput;
use serde_json::json;

use super::programs;
use crate::accounts::JsonBody;
use crate::app::App;
use crate::http::ApiError;
use crate::permissions::{ApiResult, LiveCaller, require, subject, user_id};

/// `POST /api/v1/me/subscription/checkout`: opens a Stripe Checkout
/// Session in subscription mode to a plan; the plan comes with Stripe's
/// subscription webhook.
#[utoipa::path(post, path = "/api/v1/me/subscription/checkout", tag = "payments", request_body = SubscribeInput, responses((status = 200, description = "CheckoutOutput: {order: the Checkout Session id, url, amount, currency}: send the buyer to url"), (status = 409, description = "plan_unavailable (no price configured), already_subscribed"), (status = 422, description = "validation_failed: plan, success_url, cancel_url"), (status = 502, description = "payment_refused"), (status = 503, description = "payments_disabled, unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn subscribe(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    JsonBody(b): JsonBody<SubscribeInput>,
) -> ApiResult {
    let out = programs(&app)?.subscribe(&c.sub, c.role, &b).await?;
    Ok(Json(out).into_response())
}

/// `GET /api/v1/me/subscription`: the caller's plan now (the matrix row
/// every decision uses), whether an admin override decides it, and their
/// subscriptions as the webhooks left them.
#[utoipa::path(get, path = "/api/v1/me/subscription", tag = "payments", responses((status = 200, description = "{plan, overridden, subscriptions: [{id, user, customer, plan, status, current_period_end, cancel_at_period_end, cancel_at, past_due_since, event_created, amount, currency, created_ms, updated_ms, version}]}"), (status = 503, description = "unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn mine(State(app): State<App>, LiveCaller(c): LiveCaller) -> ApiResult {
    let svc = programs(&app)?;
    let subs = svc.subscriptions(&c.sub).await?;
    let overridden = svc.plan_override(&c.sub).await?.is_some();
    Ok(Json(json!({
        "plan": plan_name(c.plan()),
        "overridden": overridden,
        "subscriptions": subs,
    }))
    .into_response())
}

/// `GET /api/v1/admin/users/{id}/billing`: a user's plan, override,
/// subscriptions and audit log (admins).
#[utoipa::path(get, path = "/api/v1/admin/users/{id}/billing", tag = "admin", params(("id" = String, Path, description = "user id")), responses((status = 200, description = "{user, plan, override: {user, by, at_ms, plan} | null, subscriptions, audit: [{id, subject, actor, at_ms, action, detail}]}"), (status = 403, description = "admins only"), (status = 422, description = "validation_failed"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn of_user(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    require(decide::admin(subject(&c)))?;
    user_id("id", &id)?;
    let svc = programs(&app)?;
    let plan = app.perms.plan_of(&id).await.map(plan_name);
    Ok(Json(json!({
        "user": id,
        "plan": plan,
        "override": svc.plan_override(&id).await?,
        "subscriptions": svc.subscriptions(&id).await?,
        "audit": svc.audit_of(&id).await?,
    }))
    .into_response())
}

/// `DELETE /api/v1/admin/users/{id}/plan/override`: the user's
/// subscriptions decide their plan again (audited).
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/plan/override", tag = "admin", params(("id" = String, Path, description = "user id")), responses((status = 204, description = "removed"), (status = 404, description = "no_override"), (status = 403, description = "admins only"), (status = 422, description = "validation_failed"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn clear_override(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(decide::admin(subject(&c)))?;
    user_id("id", &id)?;
    programs(&app)?.clear_override(&c.sub, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
