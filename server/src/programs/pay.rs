//! Money: Stripe Checkout for a one-time program, refunds, and Stripe's
//! webhook (`POST /api/v1/webhooks/stripe`, the webhooks rate-limit
//! class): the signature is checked over the raw body and the event stored
//! before the 200; it is applied right after, in the background (and by
//! the sweeper after a crash).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use chalktalk_services::programs::checkout::CheckoutInput;
use serde_json::json;

use super::programs;
use crate::accounts::JsonBody;
use crate::app::App;
use crate::http::ApiError;
use crate::permissions::{ApiResult, LiveCaller};

/// `POST /api/v1/programs/{id}/checkout`: opens a Stripe Checkout Session
/// to buy a one-time program; access comes with Stripe's webhook.
#[utoipa::path(post, path = "/api/v1/programs/{id}/checkout", tag = "payments", request_body = CheckoutInput, params(("id" = String, Path, description = "program id")), responses((status = 200, description = "CheckoutOutput: {order, url, amount, currency}: send the buyer to url"), (status = 409, description = "unsupported_price (free or subscription), not_published, already_entitled, not_payable (the coach cannot be paid yet)"), (status = 403, description = "forbidden: your own program"), (status = 404, description = "not_found"), (status = 422, description = "validation_failed: success_url, cancel_url"), (status = 502, description = "payment_refused: Stripe refused"), (status = 503, description = "payments_disabled, unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn checkout(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<CheckoutInput>,
) -> ApiResult {
    let out = programs(&app)?.checkout(&c.sub, &id, &b).await?;
    Ok(Json(out).into_response())
}

/// `POST /api/v1/orders/{id}/refund`: refunds a paid order in full (the
/// program's coach, or an admin) and revokes the access it granted.
#[utoipa::path(post, path = "/api/v1/orders/{id}/refund", tag = "payments", params(("id" = String, Path, description = "order id (the Checkout Session id)")), responses((status = 200, description = "Order: {id, user, program, coach, amount, currency, fee, status: refunded, payment, paid_ms, created_ms, updated_ms, version}"), (status = 404, description = "not_found: no order of your programs"), (status = 409, description = "not_refundable: not paid"), (status = 502, description = "payment_refused"), (status = 503, description = "payments_disabled, unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn refund(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let o = programs(&app)?.refund(&c.sub, c.role, &id).await?;
    Ok(Json(o).into_response())
}

/// `POST /api/v1/webhooks/stripe`: Stripe's events, signed
/// (`Stripe-Signature`). 200 once stored (a replay: `duplicate: true`,
/// applied once); 400 `bad_signature` / `bad_event` with nothing stored.
#[utoipa::path(post, path = "/api/v1/webhooks/stripe", tag = "payments", request_body(content = String, description = "the raw event JSON, exactly as Stripe signed it", content_type = "application/json"), responses((status = 200, description = "{received: event id, duplicate: bool}"), (status = 400, description = "bad_signature (missing, wrong or older than 300 s), bad_event"), (status = 413, description = "too_large (over 512 KiB)"), (status = 503, description = "payments_disabled: no webhook secret set, unavailable")))]
pub async fn webhook(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let svc = programs(&app)?;
    let body = body.map_err(|r| {
        if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "webhook bodies are limited to {} bytes",
                super::MAX_WEBHOOK_BYTES
            ))
        } else {
            ApiError::bad_request(r.body_text())
        }
    })?;
    let sig = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (id, new) = svc.receive(&body, sig).await?;
    if new {
        let svc = Arc::clone(svc);
        tokio::spawn(async move {
            if let Err(e) = svc.process_pending().await {
                tracing::warn!(error = %e, "stripe events not applied yet (the sweeper retries)");
            }
        });
    }
    Ok(Json(json!({ "received": id, "duplicate": !new })).into_response())
}
