//! The caller's media library over REST: `GET /api/v1/me/assets` (the
//! assets they uploaded, with the files and bytes each one stores, what
//! counts against their quota and the quota) and `DELETE
//! /api/v1/assets/{id}` (an asset of theirs, its published files and its
//! original). The work is `chalktalk_services::media::library`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chalktalk_services::media::MediaService;
use serde_json::json;

use super::{ApiResult, LiveCaller};
use crate::app::App;
use crate::http::ApiError;

fn media(app: &App) -> Result<&Arc<MediaService>, ApiError> {
    app.media
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this node has no media service"))
}

/// `GET /api/v1/me/assets`: your assets, newest first.
#[utoipa::path(get, path = "/api/v1/me/assets", tag = "me", responses((status = 200, description = "{assets: [{asset: Asset, files, stored_bytes}], used_bytes, quota_bytes}: files and stored_bytes are what the asset stores (published files, and the original with it); used_bytes (the original sizes) counts against quota_bytes (null: no quota)"), (status = 401, description = "unauthorized"), (status = 503, description = "unavailable")), security(("bearer" = [])))]
pub async fn list(State(app): State<App>, LiveCaller(c): LiveCaller) -> ApiResult {
    let lib = media(&app)?.library(&c.sub).await?;
    Ok(Json(lib).into_response())
}

/// `DELETE /api/v1/assets/{id}`: deletes an asset of yours (admins: any)
/// with its published files and original. Rooms showing a deleted video
/// stay; links to it stop working.
#[utoipa::path(delete, path = "/api/v1/assets/{id}", tag = "me", params(("id" = String, Path, description = "asset id")), responses((status = 200, description = "{deleted: id, freed_bytes}: freed_bytes is the asset's original size (what counted against the quota)"), (status = 404, description = "not_found: no asset of yours"), (status = 409, description = "conflict: still processing (cancel it first)"), (status = 401, description = "unauthorized"), (status = 503, description = "unavailable")), security(("bearer" = [])))]
pub async fn delete(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let gone = media(&app)?.delete(&c.sub, c.role, &id).await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "deleted": gone.id, "freed_bytes": gone.size })),
    )
        .into_response())
}
