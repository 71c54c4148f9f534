//! `GET /api/v1/ops/cluster/stream`: the cluster view as server-sent
//! events, one `view` event (the JSON of `GET /api/v1/ops/cluster`) every
//! `interval` (the heartbeat, 500 ms by default), so a dashboard follows
//! membership changes within a heartbeat without polling. The stream ends
//! when the caller's token expires (the page reconnects with a fresh one).

use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};

use crate::app::App;
use crate::http::ApiError;
use crate::permissions::{LiveCaller, require, subject};
use chalktalk_services::permissions::decide;

/// `GET /api/v1/ops/cluster/stream` (text/event-stream).
#[utoipa::path(get, path = "/api/v1/ops/cluster/stream", tag = "ops", responses((status = 200, description = "text/event-stream: a `view` event (the JSON of GET /api/v1/ops/cluster) every heartbeat, until the token expires", content_type = "text/event-stream"), (status = 403, description = "admins only (with two-factor authentication)"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn cluster_stream(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    require(decide::admin(subject(&c)))?;
    let interval = app
        .cluster
        .get()
        .map_or(Duration::from_millis(500), |cl| cl.heartbeat());
    let expires_ms = c.exp.saturating_mul(1000);
    let events = stream::unfold((app, true), move |(app, first)| async move {
        if !first {
            tokio::time::sleep(interval).await;
        }
        if chalktalk_actors::now_ms() >= expires_ms {
            return None;
        }
        let event = match super::view(&app).await {
            Ok(v) => Event::default().event("view").data(v.to_string()),
            Err(e) => Event::default().event("error").data(e.to_string()),
        };
        Some((Ok(event), (app, false)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
