//! The operators' read-only API: `GET /api/v1/ops/cluster`, this node and
//! its view of the cluster (members, their status, heartbeat age and
//! round trip, connections, rooms, threads, memory and CPU, the encoder
//! queue, and the latest membership events). Admins only (the permission
//! matrix's admin row, so with two-factor authentication).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;
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
    Ok(Json(match app.cluster.get() {
        Some(cluster) => {
            let mut v = serde_json::to_value(cluster.view().await)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            v["clustered"] = json!(true);
            v
        }
        None => {
            // The figures a clustered node puts in its heartbeats.
            let info = crate::server::node_info(&app)().await;
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
    }))
}

pub fn routes(app: App) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(cluster))
        .with_state(app)
}
