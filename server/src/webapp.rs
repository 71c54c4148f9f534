//! The browser app (web/, issue 11), served by the node itself: `/` and
//! every `/app/...` path answer `index.html` (the app routes on the client),
//! `/web/{file}` the app's built files (`web/dist` after `npm run build` in
//! web/). Nothing here touches `/ws`, `/api/...`, `/media/...`, `/health`
//! or `/ready`.
//!
//! Where the files are: the `web_dir` setting (`CHALKTALK_WEB_DIR`), else
//! the first of `<binary's dir>/web`, `<binary's dir>/../../web/dist` (a
//! `target/{debug,release}` inside the repository) and `web/dist` under the
//! working directory that holds an `index.html`. Without one, `/` answers
//! 503 with a page that says how to build the app.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The directory of the built app, if one is found (see the module doc).
pub fn find_dir(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = configured {
        return Some(d.to_path_buf());
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("web"));
        candidates.push(dir.join("../../web/dist"));
    }
    candidates.push(PathBuf::from("web/dist"));
    candidates
        .into_iter()
        .find(|d| d.join("index.html").is_file())
}

/// The app's routes; `dir` as given by [`find_dir`].
pub fn routes(dir: Option<PathBuf>) -> Router {
    if let Some(d) = &dir {
        tracing::info!(dir = %d.display(), "serving the web app");
    } else {
        tracing::info!("no built web app found (web/dist): `/` explains how to build it");
    }
    let dir = Arc::new(dir);
    Router::new()
        .route("/", get(index))
        .route("/app", get(index))
        .route("/app/{*rest}", get(index))
        .route("/web/{*path}", get(file))
        .with_state(dir)
}

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>chalktalk</title><body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\">\
<h1>chalktalk</h1><p>The web app is not built on this server. Build it with \
<code>scripts/build-web.sh</code> (or <code>npm ci &amp;&amp; npm run build</code> in \
<code>web/</code>), or point the <code>web_dir</code> setting \
(<code>CHALKTALK_WEB_DIR</code>) at a built <code>dist</code> folder.</p>\
<p>The API (<code>/ws</code>, <code>/api/...</code>) works without it.</p></body></html>";

async fn index(State(dir): State<Arc<Option<PathBuf>>>) -> Response {
    let Some(d) = dir.as_ref() else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            NOT_BUILT.as_bytes().to_vec(),
        );
    };
    match tokio::fs::read(d.join("index.html")).await {
        Ok(bytes) => html(StatusCode::OK, bytes),
        Err(e) => {
            tracing::warn!(%e, dir = %d.display(), "web app index.html unreadable");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                NOT_BUILT.as_bytes().to_vec(),
            )
        }
    }
}

fn html(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

/// `path` is safe when every segment is a plain name: no `..`, `.`,
/// empty segments, backslashes or characters outside `[A-Za-z0-9_.-]`.
fn safe(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn file(State(dir): State<Arc<Option<PathBuf>>>, UrlPath(path): UrlPath<String>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    let Some(d) = dir.as_ref() else {
        return not_found();
    };
    if !safe(&path) {
        return not_found();
    }
    match tokio::fs::read(d.join(&path)).await {
        Ok(bytes) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&path)),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        Err(_) => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        assert!(safe("app.js"));
        assert!(safe("icons/a-1.png"));
        for bad in [
            "", "..", "../x", "a/../b", "./a", "a//b", "a\\b", "a b", "/etc",
        ] {
            assert!(!safe(bad), "{bad}");
        }
    }

    #[test]
    fn types() {
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}
