//! REST routes of the permission matrix under `/api/v1` (contract:
//! docs/PROTOCOL.md, "Permissions"): relationships, profiles, videos and
//! their reviews, thread history and sending over HTTP, analytics and the
//! admin tools. Every route authenticates with [`Caller`]; where the
//! matrix gives no access to another user's resource the answer is 404,
//! never 403, so ids do not reveal what exists.

mod admin;
mod relationships;
mod threads;
mod videos;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use chalktalk_actors::store::StoreError;

use super::facts::FactsError;
use super::{Decision, Subject};
use crate::accounts::MAX_JSON_BYTES;
use crate::auth::Claims;
use crate::gateway::App;
use crate::http::ApiError;

pub(crate) type ApiResult = Result<axum::response::Response, ApiError>;

pub(crate) fn subject(c: &Claims) -> Subject<'_> {
    Subject {
        user: &c.sub,
        plan: c.plan(),
    }
}

pub(crate) fn storage(e: StoreError) -> ApiError {
    ApiError::unavailable(format!("storage: {e}"))
}

pub(crate) fn facts_error(e: FactsError) -> ApiError {
    match e {
        FactsError::Store(e) => storage(e),
        FactsError::Disabled => ApiError::unavailable(e.to_string()),
        FactsError::NotFound => ApiError::not_found("no such relationship of yours"),
        FactsError::Conflict(m) => ApiError::conflict("conflict", m),
    }
}

/// 403 with the decision's reason unless allowed.
pub(crate) fn require(d: Decision) -> Result<(), ApiError> {
    if d.allowed() {
        Ok(())
    } else {
        Err(ApiError::forbidden(d.why().message()))
    }
}

/// 422 unless `id` is a valid user id.
pub(crate) fn user_id(field: &str, id: &str) -> Result<(), ApiError> {
    if chalktalk_protocol::valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            "1-64 characters of [A-Za-z0-9_.:@-]",
        ))
    }
}

/// The OpenAPI description of these routes (merged into /api/openapi.json).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    relationships::list,
    relationships::invite,
    relationships::act,
    relationships::get_profile,
    relationships::put_profile,
    videos::list,
    videos::one,
    videos::reviews,
    threads::history,
    threads::send,
    admin::analytics,
    admin::set_plan,
    admin::grant,
    admin::revoke_grant,
))]
pub struct PermissionsApi;

/// Every route of this module (state: the node's [`App`]).
pub fn routes(app: App) -> Router {
    Router::new()
        .route(
            "/api/v1/relationships",
            get(relationships::list).post(relationships::invite),
        )
        .route(
            "/api/v1/relationships/{coach}/{athlete}/{action}",
            post(relationships::act),
        )
        .route(
            "/api/v1/profiles/{user}",
            get(relationships::get_profile).put(relationships::put_profile),
        )
        .route("/api/v1/videos", get(videos::list))
        .route("/api/v1/videos/{id}", get(videos::one))
        .route("/api/v1/videos/{id}/reviews", get(videos::reviews))
        .route(
            "/api/v1/threads/{id}/messages",
            get(threads::history).post(threads::send),
        )
        .route("/api/v1/analytics/me", get(admin::analytics))
        .route("/api/v1/admin/users/{id}/plan", put(admin::set_plan))
        .route("/api/v1/admin/grants", post(admin::grant))
        .route(
            "/api/v1/admin/grants/{athlete}/{video}",
            delete(admin::revoke_grant),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .with_state(app)
}
