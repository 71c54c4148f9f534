//! The OpenAPI document of the REST API, generated from the handlers: each
//! route set registers its handlers through `utoipa_axum::OpenApiRouter`
//! (`#[utoipa::path]` on the handler, `ToSchema` on its bodies), so what is
//! served and what is documented come from the same registration. The
//! document is served at `/api/openapi.json`; `/api/docs` is a small,
//! self-contained page (no CDN, no external script) that renders it.

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi as _, ToSchema};

/// The security scheme name of `Authorization: Bearer <access token>`.
pub const BEARER: &str = "bearer";

/// The error body of every REST route (PROTOCOL.md, HTTP conventions).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `token_expired`, `forbidden`,
    /// `mfa_required`, `not_found`, `validation_failed`, `too_large`,
    /// `bad_request`, `rate_limit_exceeded`, `refresh_reused`, …
    pub error: String,
    /// For humans.
    pub message: String,
    /// With `validation_failed`: the problem of each field.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
    /// With 429 and 503: seconds to wait (also in `Retry-After`).
    pub retry_after: Option<u64>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(http));
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "chalktalk REST API",
        description = "Accounts, sessions and resources of chalktalk. The realtime side \
            (one WebSocket at /ws speaking MessagePack) is described in docs/PROTOCOL.md.",
    ),
    modifiers(&Security),
    components(schemas(ErrorBody)),
)]
struct Base;

/// The document before route sets add their paths.
pub fn base() -> OpenApi {
    Base::openapi()
}

const DOCS_HTML: &str = include_str!("docs.html");

/// `/api/openapi.json` and `/api/docs` for `doc`.
pub fn routes(doc: &OpenApi) -> Router {
    let json = Bytes::from(doc.to_pretty_json().unwrap_or_else(|e| {
        tracing::error!(%e, "OpenAPI document did not serialise");
        "{}".into()
    }));
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .route(
            "/api/docs",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'none'; script-src 'unsafe-inline'; \
                             style-src 'unsafe-inline'; connect-src 'self'",
                        ),
                    ],
                    DOCS_HTML,
                )
                    .into_response()
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_document_has_bearer_security_and_the_error_body() {
        let v: serde_json::Value =
            serde_json::from_str(&base().to_json().expect("json")).expect("parse");
        assert!(v["openapi"].as_str().is_some_and(|s| s.starts_with("3.")));
        assert_eq!(
            v["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        assert!(v["components"]["schemas"]["ErrorBody"]["properties"]["error"].is_object());
    }

    #[test]
    fn docs_page_loads_nothing_from_elsewhere() {
        assert!(!DOCS_HTML.contains("http://") && !DOCS_HTML.contains("https://"));
        assert!(DOCS_HTML.contains("/api/openapi.json"));
    }
}
