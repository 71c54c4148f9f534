//! A coach's programs: create (a draft), read, replace, publish and take
//! back, and the published programs of a coach.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chalktalk_services::programs::edit::ProgramInput;
use serde_json::json;

use super::programs;
use crate::accounts::JsonBody;
use crate::app::App;
use crate::permissions::{ApiResult, LiveCaller};

/// `POST /api/v1/programs`: a new draft program of yours (coaches).
#[utoipa::path(post, path = "/api/v1/programs", tag = "programs", request_body = ProgramInput, responses((status = 201, description = "Program: {id, coach, title, description, sport, cover, items: [{kind: video|drill|review, id, title, asset|text|room and video}], status: draft, price: {kind: free|one_time|subscription, amount, currency, interval}, created_ms, updated_ms, published_ms}"), (status = 403, description = "forbidden: not a coach"), (status = 422, description = "validation_failed: fields names the wrong field (title, sport, items.asset, items.room, price.amount, price.currency, ...)"), (status = 401, description = "unauthorized"), (status = 503, description = "unavailable")), security(("bearer" = [])))]
pub async fn create(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    JsonBody(b): JsonBody<ProgramInput>,
) -> ApiResult {
    let p = programs(&app)?.create(&c.sub, c.role, &b).await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

/// `GET /api/v1/programs/{id}`: a published program, or a draft of yours.
#[utoipa::path(get, path = "/api/v1/programs/{id}", tag = "programs", params(("id" = String, Path, description = "program id")), responses((status = 200, description = "Program"), (status = 404, description = "not_found (drafts of others are not found)"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn get(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let p = programs(&app)?.visible(&c.sub, &id).await?;
    Ok(Json(p).into_response())
}

/// `PUT /api/v1/programs/{id}`: replaces the content of your program
/// (status and enrollments stay; keep item ids to keep their progress).
#[utoipa::path(put, path = "/api/v1/programs/{id}", tag = "programs", request_body = ProgramInput, params(("id" = String, Path, description = "program id")), responses((status = 200, description = "Program"), (status = 403, description = "forbidden: not your program"), (status = 404, description = "not_found"), (status = 409, description = "not_payable: a published free program made paid by a coach Stripe cannot pay yet"), (status = 422, description = "validation_failed"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn update(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ProgramInput>,
) -> ApiResult {
    let p = programs(&app)?.update(&c.sub, &id, &b).await?;
    Ok(Json(p).into_response())
}

/// `POST /api/v1/programs/{id}/publish`.
#[utoipa::path(post, path = "/api/v1/programs/{id}/publish", tag = "programs", params(("id" = String, Path, description = "program id")), responses((status = 200, description = "Program (published)"), (status = 409, description = "not_payable: a paid program of a coach whose Stripe Connect account cannot be paid yet"), (status = 403, description = "forbidden: not your program"), (status = 404, description = "not_found"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn publish(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let p = programs(&app)?.set_published(&c.sub, &id, true).await?;
    Ok(Json(p).into_response())
}

/// `POST /api/v1/programs/{id}/unpublish`: back to draft (enrolled users
/// keep access).
#[utoipa::path(post, path = "/api/v1/programs/{id}/unpublish", tag = "programs", params(("id" = String, Path, description = "program id")), responses((status = 200, description = "Program (draft)"), (status = 403, description = "forbidden: not your program"), (status = 404, description = "not_found"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn unpublish(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let p = programs(&app)?.set_published(&c.sub, &id, false).await?;
    Ok(Json(p).into_response())
}

/// `GET /api/v1/coaches/{id}/programs`: the coach's published programs
/// (all of them, drafts too, for the coach).
#[utoipa::path(get, path = "/api/v1/coaches/{id}/programs", tag = "programs", params(("id" = String, Path, description = "coach id")), responses((status = 200, description = "{programs: [Program]}"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn of_coach(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let v = programs(&app)?.of_coach(&c.sub, &id).await?;
    Ok(Json(json!({ "programs": v })).into_response())
}
