//! The HTTP side of the server (axum): the WebSocket endpoint `/ws`,
//! liveness `/health`, readiness `/ready`, metrics `/metrics`, and the running server's
//! handle with graceful shutdown (every connection is closed with 1001).

mod dispatch;
pub mod guard;
mod hello;
mod trim;
pub mod ws;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chalktalk_actors::Outbound;
use chalktalk_protocol::CloseCode;
use tokio::sync::watch;

use crate::app::App;

/// Subprotocol clients may offer; a second offered entry `bearer.<token>`
/// carries the token for browsers, which cannot set headers.
pub const SUBPROTOCOL: &str = "chalktalk.v1";

/// The token from `Authorization: Bearer …` or a `bearer.…` subprotocol.
fn header_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_string());
    }
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("bearer.").map(str::to_string))
}

async fn ws_endpoint(
    State(app): State<App>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if app.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let token = header_token(&headers);
    let max = app.directory.deps.config.limits.max_frame_bytes as usize;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        // Client frames are small (a stroke preview ~150 bytes, a 16-point
        // op ~400); a larger one grows its own connection's buffer and is
        // read in 512-byte steps. Every connection pays for this buffer,
        // idle or not (docs/BENCHMARKS.md §2).
        .read_buffer_size(512)
        .write_buffer_size(32 * 1024)
        .max_write_buffer_size(4 * 1024 * 1024)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| ws::serve(Box::new(socket), app, token))
}

async fn health() -> &'static str {
    "ok"
}

async fn ready(State(app): State<App>) -> Response {
    if app.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), app.directory.deps.store.health()).await {
        Ok(Ok(_)) => "ready".into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store: timeout").into_response(),
    }
}

/// The routes of a node, all rate limited but `/ws` (frames are limited per
/// session), `/health` and `/ready`.
pub fn router(app: App) -> Router {
    let (limits, auth) = (app.ratelimit.clone(), app.auth.clone());
    crate::ratelimit::layer(routes(app), limits, auth)
}

/// Every route of a node (add new ones here). REST route sets register
/// through `OpenApiRouter`, so the OpenAPI document (`/api/openapi.json`)
/// lists exactly what is served.
fn routes(app: App) -> Router {
    let http = app.http.clone();
    let accounts = app.accounts.clone();
    let web = crate::webapp::routes(app.web_dir.clone());
    let mut api = utoipa_axum::router::OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(crate::permissions::routes(app.clone()))
        .merge(crate::programs::routes(app.clone()))
        .merge(crate::ops::routes(app.clone()));
    let r = Router::new()
        .route("/ws", get(ws_endpoint))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::handler))
        .with_state(app);
    if let Some(svc) = accounts {
        api = api.merge(crate::accounts::routes(svc));
    }
    if let Some(state) = http {
        api = api.merge(crate::http::routes(state));
    }
    let (api, doc) = api.split_for_parts();
    r.merge(api)
        .merge(crate::openapi::routes(&doc))
        .merge(web)
        .merge(crate::ops::page_routes())
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    sweeper: Option<tokio::task::JoinHandle<()>>,
    trimmer: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds and starts serving `app`.
    pub async fn start(addr: SocketAddr, app: App) -> std::io::Result<Running> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // Small replies (acks, pongs) must not wait behind Nagle for the
        // peer's delayed ACK of the relayed frames before them (~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%e, "TCP_NODELAY not set on an accepted socket");
            }
        });
        let (stop, mut stopped) = watch::channel(false);
        let router = router(app.clone());
        let sweeper = app.http.clone().map(crate::http::spawn_sweeper);
        let trimmer = trim::spawn(app.connections.clone());
        let task = tokio::spawn(async move {
            // Peer addresses for per-IP throttling (sign-in, rate limits).
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        });
        Ok(Running {
            addr,
            app,
            stop,
            task,
            sweeper,
            trimmer,
        })
    }

    /// Closes every connection with 1001, stops accepting, stops the actors.
    pub async fn shutdown(self) {
        self.app.draining.store(true, Ordering::Relaxed);
        let conns: Vec<Outbound> = self
            .app
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for c in conns {
            c.kill(CloseCode::GOING_AWAY, "server shutting down");
        }
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        if let Some(s) = self.sweeper {
            s.abort();
        }
        self.trimmer.abort();
        if let Some(c) = self.app.cluster.get() {
            c.shutdown();
        }
        if let Some(m) = &self.app.media {
            m.stop();
        }
        self.app.directory.shutdown();
        // Drain: give the rooms' leases up so that other nodes serve them
        // at once (their members rejoin there), not after the lease time.
        if let Some(p) = &self.app.directory.deps.placement {
            let n = p.release_all(Duration::from_secs(3)).await;
            tracing::info!(released = n, "room leases handed over");
        }
    }
}
