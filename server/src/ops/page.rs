//! `GET /ops`: the operators' dashboard, one self-contained HTML page
//! (`dashboard.html`, compiled into the binary, so it works without the web
//! app's build). It holds no data: it reads the cluster from
//! `/api/v1/ops/cluster/stream` with the admin's token (the web app's
//! session in this origin's localStorage, or one pasted into the page) and
//! asks `/api/v1/ops/rooms/{id}/placement` where a room lives.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("dashboard.html");

pub async fn dashboard() -> Response {
    let mut r = PAGE.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Nothing but this page's own script, styles and same-origin fetches.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    r
}
