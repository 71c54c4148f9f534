//! `GET /metrics`: the node's metrics in the Prometheus text format (0.0.4).
//! The counters and histograms the hot paths bump live in
//! `chalktalk_actors::metrics`; the gauges here are read when scraped
//! (connections, rooms, threads, outbound queue counters, the encoder pool,
//! the store's health, the process's memory and CPU). Every name starts
//! with `chalktalk_`; docs/OPERATIONS.md, "Metrics", lists them.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::app::App;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route's handler.
pub async fn handler(State(app): State<App>) -> Response {
    let body = render(&app).await;
    match body {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics: encoding failed: {e}"),
        )
            .into_response(),
    }
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    reg.register(name, help, ConstGauge::new(v));
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    reg.register(name, help, ConstCounter::new(v));
}

/// The whole text of one scrape.
pub async fn render(app: &App) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::with_prefix("chalktalk");
    chalktalk_actors::metrics::metrics().register(&mut reg);

    let connections = app
        .connections
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len();
    gauge(
        &mut reg,
        "connections",
        "Open WebSocket sessions (after hello)",
        connections as i64,
    );
    let (rooms, threads) = app.directory.counts().await;
    gauge(
        &mut reg,
        "rooms",
        "Review rooms running on this node",
        rooms as i64,
    );
    gauge(
        &mut reg,
        "threads",
        "Chat threads running on this node",
        threads as i64,
    );
    gauge(
        &mut reg,
        "inboxes",
        "Users' inboxes this node writes (users with a device connected or notices on the way; in a cluster, those it owns)",
        app.directory.inboxes().await as i64,
    );
    let stats = &app.directory.deps.stats;
    use std::sync::atomic::Ordering::Relaxed;
    counter(
        &mut reg,
        "ephemeral_dropped",
        "Live frames (points, pointers, presence) dropped for slow receivers",
        stats.ephemeral_dropped.load(Relaxed),
    );
    counter(
        &mut reg,
        "lagged",
        "Receivers that fell behind on durable frames",
        stats.lagged.load(Relaxed),
    );
    counter(
        &mut reg,
        "killed",
        "Connections closed for not reading (1008)",
        stats.killed.load(Relaxed),
    );
    let up = tokio::time::timeout(Duration::from_secs(1), app.directory.deps.store.health())
        .await
        .is_ok_and(|r| r.is_ok());
    gauge(
        &mut reg,
        "store_up",
        "1 if the store answers (what /ready checks)",
        i64::from(up),
    );
    if let Some(stats) = app.media.as_ref().and_then(|m| m.pool()).map(|p| p.stats()) {
        gauge(
            &mut reg,
            "encoder_queued",
            "Media jobs waiting to run",
            stats.queued as i64,
        );
        gauge(
            &mut reg,
            "encoder_running",
            "Media jobs running",
            stats.running as i64,
        );
        gauge(
            &mut reg,
            "encoder_workers",
            "Media worker slots",
            stats.workers as i64,
        );
        counter(&mut reg, "encoder_done", "Media jobs done", stats.done);
        counter(
            &mut reg,
            "encoder_failed",
            "Media jobs failed",
            stats.failed,
        );
        counter(
            &mut reg,
            "encoder_retried",
            "Media job retries",
            stats.retried,
        );
        counter(
            &mut reg,
            "encoder_cancelled",
            "Media jobs cancelled",
            stats.cancelled,
        );
    }
    if let Some(cluster) = app.cluster.get() {
        let view = cluster.view().await;
        for (status, name) in [
            (chalktalk_cluster::Status::Up, "cluster_members_up"),
            (
                chalktalk_cluster::Status::Suspect,
                "cluster_members_suspect",
            ),
            (chalktalk_cluster::Status::Down, "cluster_members_down"),
            (
                chalktalk_cluster::Status::Refused,
                "cluster_members_refused",
            ),
        ] {
            let n = view.members.iter().filter(|m| m.status == status).count();
            gauge(
                &mut reg,
                name,
                "Other nodes of the cluster by status, as this node sees them",
                n as i64,
            );
        }
    }
    if let Some(rss) = chalktalk_actors::metrics::resident_bytes(None) {
        reg.register_with_unit(
            "process_resident_memory",
            "Resident memory of the node process",
            Unit::Bytes,
            ConstGauge::new(rss as i64),
        );
    }
    reg.register_with_unit(
        "process_cpu",
        "CPU time (user + system) of the node process",
        Unit::Seconds,
        ConstCounter::new(chalktalk_actors::metrics::own_cpu_seconds()),
    );
    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}
