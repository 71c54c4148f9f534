//! The videos a caller can see (`GET /api/v1/videos`, `/videos/{id}`) and
//! the reviews (rooms) of one that the caller belongs to.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use chalktalk_actors::store::MembershipKind;
use chalktalk_protocol::{Asset, Role};
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, LiveCaller, storage, subject};
use crate::app::App;
use crate::http::ApiError;
use chalktalk_services::auth::Claims;

#[derive(Deserialize)]
pub struct ListQuery {
    owner: Option<String>,
}

/// `GET /api/v1/videos[?owner=id]`: every video you can see; `owner`
/// filters (admins: any user's videos).
#[utoipa::path(get, path = "/api/v1/videos", tag = "videos", params(("owner" = Option<String>, Query, description = "only this owner's videos (admins: any owner)")), responses((status = 200, description = "{videos: [Asset]}"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let who = subject(&c);
    let admin_owner = q.owner.as_deref().filter(|_| c.role == Role::Admin);
    let mut v = app
        .perms
        .visible_videos(who, admin_owner)
        .await
        .map_err(storage)?;
    if let Some(o) = &q.owner {
        v.retain(|a| &a.owner == o);
    }
    Ok(Json(json!({ "videos": v })).into_response())
}

/// The video `id` if `c` may see it, else 404 (whether or not it exists).
pub(super) async fn visible(app: &App, c: &Claims, id: &str) -> Result<Asset, ApiError> {
    let hidden = || ApiError::not_found(format!("no video {id} you can see"));
    let a = app
        .perms
        .video_asset(id)
        .await
        .map_err(storage)?
        .ok_or_else(hidden)?;
    let d = app
        .perms
        .video(subject(c), &a.owner, &a.id)
        .await
        .map_err(storage)?;
    if d.allowed() { Ok(a) } else { Err(hidden()) }
}

/// `GET /api/v1/videos/{id}`.
#[utoipa::path(get, path = "/api/v1/videos/{id}", tag = "videos", params(("id" = String, Path, description = "asset id")), responses((status = 200, description = "Asset"), (status = 404, description = "no video you can see"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn one(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let a = visible(&app, &c, &id).await?;
    Ok(Json(a).into_response())
}

/// `GET /api/v1/videos/{id}/reviews`: review rooms of the video that you
/// are a member of.
#[utoipa::path(get, path = "/api/v1/videos/{id}/reviews", tag = "videos", params(("id" = String, Path, description = "asset id")), responses((status = 200, description = "{video, reviews: [{room, video_id, owner, created_ms, head}]}"), (status = 404, description = "no video you can see"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn reviews(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> ApiResult {
    let a = visible(&app, &c, &id).await?;
    let store = &app.perms.store;
    let rooms = store
        .memberships(&c.sub, MembershipKind::Room)
        .await
        .map_err(storage)?;
    let mut out = Vec::new();
    for r in rooms {
        if let Some(m) = store.room(&r).await.map_err(storage)?
            && m.video_id == a.id
        {
            let head = store.room_head(&m.id).await.map_err(storage)?;
            out.push(json!({
                "room": m.id, "video_id": m.video_id, "owner": m.owner,
                "created_ms": m.created_ms, "head": head,
            }));
        }
    }
    Ok(Json(json!({ "video": a.id, "reviews": out })).into_response())
}
