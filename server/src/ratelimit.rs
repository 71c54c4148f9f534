//! The HTTP layer: every request but `/health`, `/ready` and `/ws` (whose
//! frames are limited per session in `gateway::ws`) is counted before it
//! reaches its handler.
//!
//! - Key: `u:{user}` for a valid bearer token ([`Auth::verify`]); otherwise
//!   `ip:{client ip}`, the TCP peer, or, when the peer is a trusted proxy,
//!   the right-most untrusted address of `X-Forwarded-For`.
//! - Class: [`route_class`].
//! - Every limited answer carries `X-RateLimit-Limit`, `-Remaining` and
//!   `-Reset`; a refused request gets 429 `rate_limit_exceeded` with
//!   `retry_after` and `Retry-After`, and never reaches the handler.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::ApiError;
use chalktalk_adapters::ratelimit::{Class, Decision, RateLimitConfig, RateLimits};
use chalktalk_services::auth::Auth;

pub const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The client address the limiter used, left in the request's extensions
/// for handlers (e.g. sign-in throttling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

#[derive(Clone)]
struct Guard {
    limits: RateLimits,
    auth: Auth,
}

/// Wraps every route of `router` (including ones merged into it before this
/// call) in the rate limiter. The node must be served with
/// `into_make_service_with_connect_info::<SocketAddr>()` for per-IP keys.
pub fn layer(router: Router, limits: RateLimits, auth: Auth) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Guard { limits, auth },
        guard,
    ))
}

/// Routes never limited here.
fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics" | "/ws")
}

/// True when `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The class of a request: creating an upload (POST under
/// `/api/v1/uploads`), `/api/v1/webhooks*`, `/api/v1/analytics*` and the
/// revenue reports (`/api/v1/me/revenue`, `/api/v1/admin/revenue`), else
/// authenticated or public by whether the caller has a valid token.
pub fn route_class(method: &Method, path: &str, authenticated: bool) -> Class {
    if method == Method::POST && under(path, "/api/v1/uploads") {
        Class::Upload
    } else if under(path, "/api/v1/webhooks") {
        Class::Webhooks
    } else if under(path, "/api/v1/analytics")
        || path == "/api/v1/me/revenue"
        || path == "/api/v1/admin/revenue"
    {
        Class::Analytics
    } else if authenticated {
        Class::Authenticated
    } else {
        Class::Public
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client: the peer, or what trusted proxies say it is.
fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    config: &RateLimitConfig,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !config.is_trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // Garbage from an untrusted party: stop at the last good hop.
            break;
        };
        client = ip.to_canonical();
        if !config.is_trusted(client) {
            break;
        }
    }
    Some(client)
}

fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    headers.insert(LIMIT, HeaderValue::from(d.limit));
    headers.insert(REMAINING, HeaderValue::from(d.remaining));
    headers.insert(RESET, HeaderValue::from(d.reset_after_secs));
}

fn refused(d: &Decision, class: Class) -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
        format!(
            "too many {} requests; retry in {} s",
            class.name(),
            d.retry_after_secs
        ),
    );
    e.retry_after = Some(d.retry_after_secs);
    e.into_response()
}

async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let user = bearer(req.headers())
        .and_then(|t| g.auth.verify(t).ok())
        .map(|c| c.sub);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip(peer, req.headers(), &g.limits.config);
    let class = route_class(req.method(), req.uri().path(), user.is_some());
    let key = match (&user, ip) {
        (Some(u), _) => format!("u:{u}"),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "ip:unknown".to_string(),
    };
    let d = g.limits.limiter.check(&key, class).await;
    let mut res = if d.allowed {
        req.extensions_mut().insert(ClientIp(ip));
        next.run(req).await
    } else {
        tracing::debug!(key, class = class.name(), "rate limited");
        refused(&d, class)
    };
    set_headers(res.headers_mut(), &d);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_by_route() {
        let c = |m: Method, p: &str, a| route_class(&m, p, a);
        assert_eq!(c(Method::POST, "/api/v1/uploads", true), Class::Upload);
        assert_eq!(
            c(Method::POST, "/api/v1/uploads/simple", false),
            Class::Upload
        );
        assert_eq!(
            c(Method::PATCH, "/api/v1/uploads/abc", true),
            Class::Authenticated
        );
        assert_eq!(c(Method::GET, "/api/v1/uploads/abc", false), Class::Public);
        assert_eq!(
            c(Method::POST, "/api/v1/webhooks/stripe", false),
            Class::Webhooks
        );
        assert_eq!(c(Method::GET, "/api/v1/analytics", true), Class::Analytics);
        assert_eq!(c(Method::GET, "/api/v1/me/revenue", true), Class::Analytics);
        assert_eq!(
            c(Method::GET, "/api/v1/admin/revenue", true),
            Class::Analytics
        );
        assert_eq!(
            c(Method::GET, "/api/v1/analyticsx", true),
            Class::Authenticated
        );
        assert_eq!(
            c(Method::GET, "/media/t/a/master.m3u8", false),
            Class::Public
        );
        assert!(exempt("/health") && exempt("/ws") && !exempt("/healthz"));
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let config = RateLimitConfig::from_settings("", "10.0.0.0/8").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        // Untrusted peer: the header is ignored.
        assert_eq!(
            client_ip(Some(ip("9.9.9.9")), &h, &config),
            Some(ip("9.9.9.9"))
        );
        // Trusted: right-most untrusted hop (the left one is client-made).
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &config),
            Some(ip("1.2.3.4"))
        );
        h.insert("x-forwarded-for", "junk, 10.0.0.9".parse().unwrap());
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &config),
            Some(ip("10.0.0.9"))
        );
        assert_eq!(
            client_ip(Some(ip("::ffff:9.9.9.9")), &HeaderMap::new(), &config),
            Some(ip("9.9.9.9"))
        );
        assert_eq!(client_ip(None, &h, &config), None);
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
