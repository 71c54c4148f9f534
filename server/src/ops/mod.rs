//! The operators' read-only API and dashboard: `GET /api/v1/ops/cluster`,
//! this node and its view of the cluster (members, their status, heartbeat
//! age and round trip, connections, rooms, threads, memory and CPU, the
//! encoder queue, and the latest membership events), the same as a live
//! stream (`stream.rs`), where a room or thread lives
//! (`/api/v1/ops/rooms/{id}/placement`, `/api/v1/ops/threads/{id}/placement`),
//! and the dashboard page at `/ops` (`page.rs`). Admins only (the permission
//! matrix's admin row, so with two-factor authentication); the page itself
//! holds no data.

mod page;
mod stream;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use chalktalk_actors::lease::LeaseKind;
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::App;
use crate::http::ApiError;
use crate::permissions::{LiveCaller, require, subject};
use chalktalk_services::permissions::decide;

/// `GET /api/v1/ops/cluster`.
#[utoipa::path(get, path = "/api/v1/ops/cluster", tag = "ops", responses((status = 200, description = "{clustered, me, members, events, heartbeat_ms, suspect_after_ms, down_after_ms}"), (status = 403, description = "admins only (with two-factor authentication)"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn cluster(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
) -> Result<impl IntoResponse, ApiError> {
    require(decide::admin(subject(&c)))?;
    Ok(Json(view(&app).await?))
}

/// The cluster as this node sees it (the body of `GET /api/v1/ops/cluster`
/// and of each `view` event of the stream).
pub(crate) async fn view(app: &App) -> Result<serde_json::Value, ApiError> {
    Ok(match app.cluster.get() {
        Some(cluster) => {
            let mut v = serde_json::to_value(cluster.view().await)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            v["clustered"] = json!(true);
            v
        }
        None => {
            // The figures a clustered node puts in its heartbeats.
            let info = crate::server::node_info(app)().await;
            json!({
                "clustered": false,
                "me": {
                    "node": "standalone",
                    "status": "up",
                    "app_version": env!("CARGO_PKG_VERSION"),
                    "info": info,
                },
                "members": [],
                "events": [],
            })
        }
    })
}

/// `GET /api/v1/ops/rooms/{id}/placement`: which node holds the room's
/// lease (its owner), at which epoch and until when, and the room's fence
/// as stored; `owner` is null for a room no node serves now.
#[utoipa::path(get, path = "/api/v1/ops/rooms/{id}/placement", tag = "ops", params(("id" = String, Path, description = "room id")), responses((status = 200, description = "{room, clustered, owner, epoch, expires_ms, expired, fence}"), (status = 403, description = "admins only (with two-factor authentication)"), (status = 401, description = "unauthorized"), (status = 503, description = "the store cannot be reached")), security(("bearer" = [])))]
pub async fn room_placement(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    require(decide::admin(subject(&c)))?;
    placement(&app, LeaseKind::Room, id).await.map(Json)
}

/// `GET /api/v1/ops/threads/{id}/placement`: the same for a chat thread.
#[utoipa::path(get, path = "/api/v1/ops/threads/{id}/placement", tag = "ops", params(("id" = String, Path, description = "thread id")), responses((status = 200, description = "{thread, clustered, owner, epoch, expires_ms, expired, fence}"), (status = 403, description = "admins only (with two-factor authentication)"), (status = 401, description = "unauthorized"), (status = 503, description = "the store cannot be reached")), security(("bearer" = [])))]
pub async fn thread_placement(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    require(decide::admin(subject(&c)))?;
    placement(&app, LeaseKind::Thread, id).await.map(Json)
}

/// Where a room or thread lives: its lease and its stored fence.
async fn placement(app: &App, kind: LeaseKind, id: String) -> Result<Value, ApiError> {
    let unavailable = |e: chalktalk_actors::store::StoreError| ApiError::unavailable(e.to_string());
    let store = &app.directory.deps.store;
    let fence = match kind {
        LeaseKind::Thread => store.thread_fence(&id).await,
        _ => store.room_fence(&id).await,
    }
    .map_err(unavailable)?;
    let key = kind.as_str();
    let Some(p) = &app.directory.deps.placement else {
        return Ok(json!({
            key: id, "clustered": false, "owner": null, "epoch": 0, "fence": fence,
        }));
    };
    let holder = p.leases.holder(kind, &id).await.map_err(unavailable)?;
    let now = chalktalk_actors::now_ms();
    Ok(match holder {
        Some(l) => json!({
            key: id, "clustered": true, "owner": l.owner, "epoch": l.epoch,
            "expires_ms": l.expires_ms, "expired": l.expires_ms <= now, "fence": fence,
        }),
        None => json!({
            key: id, "clustered": true, "owner": null, "epoch": 0, "fence": fence,
        }),
    })
}

/// The dashboard page (not in the OpenAPI document: HTML).
pub fn page_routes() -> axum::Router {
    axum::Router::new().route("/ops", axum::routing::get(page::dashboard))
}

pub fn routes(app: App) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(cluster))
        .routes(routes!(room_placement))
        .routes(routes!(thread_placement))
        .routes(routes!(stream::cluster_stream))
        .with_state(app)
}
