//! The athlete's side: enrolling in a free program, marking items done,
//! progress (the coach sees every enrolled user's), the locker (the
//! programs the caller can open), and reading a review item.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::programs;
use crate::app::App;
use crate::permissions::{ApiResult, LiveCaller};

/// `POST /api/v1/programs/{id}/enroll`: enrolls you in a free, published
/// program.
#[utoipa::path(post, path = "/api/v1/programs/{id}/enroll", tag = "programs", params(("id" = String, Path, description = "program id")), responses((status = 201, description = "Entitlement: {user, program, source: free, status: active, granted_ms, revoked_ms, reference}"), (status = 402, description = "payment_required: the program is not free (use checkout)"), (status = 409, description = "not_published, already_entitled"), (status = 404, description = "not_found"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn enroll(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let e = programs(&app)?.enroll_free(&c.sub, &id).await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

/// `POST /api/v1/programs/{id}/items/{item}/done`: marks an item done
/// (again: the later time counts).
#[utoipa::path(post, path = "/api/v1/programs/{id}/items/{item}/done", tag = "programs", params(("id" = String, Path, description = "program id"), ("item" = String, Path, description = "item id")), responses((status = 200, description = "Progress: {user, program, done: [{item, done_ms}], done_count, total, percent, last_activity_ms}"), (status = 403, description = "not_entitled"), (status = 404, description = "not_found, no_such_item"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn done(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path((id, item)): Path<(String, String)>,
) -> ApiResult {
    let p = programs(&app)?.mark_done(&c.sub, &id, &item).await?;
    Ok(Json(p).into_response())
}

/// `GET /api/v1/programs/{id}/progress`: yours, or (its coach) every
/// enrolled user's.
#[utoipa::path(get, path = "/api/v1/programs/{id}/progress", tag = "programs", params(("id" = String, Path, description = "program id")), responses((status = 200, description = "{progress: [Progress]}"), (status = 403, description = "not_entitled"), (status = 404, description = "not_found"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn progress(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let p = programs(&app)?.progress(&c.sub, &id).await?;
    Ok(Json(json!({ "progress": p })).into_response())
}

/// `GET /api/v1/me/programs`: the programs you can open (your locker).
#[utoipa::path(get, path = "/api/v1/me/programs", tag = "programs", responses((status = 200, description = "{programs: [{program: Program, entitlement: Entitlement}]}"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn locker(State(app): State<App>, LiveCaller(c): LiveCaller) -> ApiResult {
    let v: Vec<_> = programs(&app)?
        .locker(&c.sub)
        .await?
        .into_iter()
        .map(|(p, e)| json!({ "program": p, "entitlement": e }))
        .collect();
    Ok(Json(json!({ "programs": v })).into_response())
}

/// `GET /api/v1/programs/{id}/items/{item}/review`: a review item (its
/// room's video, annotations and voice-overs, read-only) for its coach and
/// whoever holds the program.
#[utoipa::path(get, path = "/api/v1/programs/{id}/items/{item}/review", tag = "programs", params(("id" = String, Path, description = "program id"), ("item" = String, Path, description = "item id")), responses((status = 200, body = chalktalk_services::programs::review::ReviewView, description = "the room's committed annotations in video-time order; voice-overs are those of shape voice_over (open their asset with media_link)"), (status = 403, description = "not_entitled"), (status = 404, description = "not_found, no_such_item, not_a_review"), (status = 503, description = "unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn review(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path((id, item)): Path<(String, String)>,
) -> ApiResult {
    let v = programs(&app)?.review(&c.sub, &id, &item).await?;
    Ok(Json(v).into_response())
}
