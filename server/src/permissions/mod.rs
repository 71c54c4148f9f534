//! REST routes of the permission matrix under `/api/v1` (the service is
//! `chalktalk_services::permissions`; contract:
//! docs/PROTOCOL.md, "Permissions"): relationships, profiles, videos and
//! their reviews, thread history and sending over HTTP, analytics and the
//! admin tools. Every route authenticates with [`LiveCaller`] (the
//! [`Caller`] check, then the account's current role and plan); where the
//! matrix gives no access to another user's resource the answer is 404,
//! never 403, so ids do not reveal what exists.

mod admin;
mod library;
mod mine;
mod relationships;
mod threads;
mod videos;

use axum::extract::DefaultBodyLimit;
use chalktalk_actors::store::StoreError;
use utoipa_axum::{router::OpenApiRouter, routes};

use chalktalk_services::auth::Claims;
use chalktalk_services::permissions::facts::FactsError;
use chalktalk_services::permissions::{Decision, PermissionError, Subject};

use crate::accounts::{Caller, MAX_JSON_BYTES};
use crate::app::App;
use crate::http::ApiError;

pub(crate) type ApiResult = Result<axum::response::Response, ApiError>;

/// Extractor: the authenticated caller ([`Caller`]: valid, unrevoked
/// access token) with the plan of their account as it is NOW, not as the
/// token says: an admin's plan change applies at once instead of after the
/// token's remaining lifetime. A token whose role is no longer the
/// account's is refused (401; a role change also revokes the sessions:
/// the user signs in again, enrolling TOTP if now a coach or admin). Users
/// without an account (dev tokens) keep the token's plan.
pub struct LiveCaller(pub Claims);

impl axum::extract::FromRequestParts<App> for LiveCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &App,
    ) -> Result<Self, Self::Rejection> {
        let Caller(mut c) = Caller::from_request_parts(parts, app).await?;
        if let Some(plan) = app.perms.plan_of(&c.sub).await {
            if plan.role() != c.role {
                return Err(ApiError::unauthorized(
                    "your role changed since this token was issued; sign in again",
                ));
            }
            c.plan = Some(plan);
        }
        Ok(LiveCaller(c))
    }
}

pub(crate) fn subject(c: &Claims) -> Subject<'_> {
    Subject {
        user: &c.sub,
        plan: c.plan(),
    }
}

/// 503 `unavailable` for a storage failure.
pub(crate) fn storage(e: StoreError) -> ApiError {
    PermissionError::from(e).into()
}

/// A failed change of relationships or grants.
pub(crate) fn facts_error(e: FactsError) -> ApiError {
    PermissionError::from(e).into()
}

/// 403 with the decision's reason unless allowed.
pub(crate) fn require(d: Decision) -> Result<(), ApiError> {
    Ok(d.require()?)
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

/// Every route of this module (state: the node's [`App`]); each handler is
/// also in the OpenAPI document.
pub fn routes(app: App) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(relationships::list, relationships::invite))
        .routes(routes!(relationships::act))
        .routes(routes!(
            relationships::get_profile,
            relationships::put_profile
        ))
        .routes(routes!(videos::list))
        .routes(routes!(videos::one))
        .routes(routes!(videos::reviews))
        .routes(routes!(threads::history, threads::send))
        .routes(routes!(mine::rooms))
        .routes(routes!(mine::threads))
        .routes(routes!(library::list))
        .routes(routes!(library::delete))
        .routes(routes!(admin::analytics))
        .routes(routes!(admin::set_plan))
        .routes(routes!(admin::grant))
        .routes(routes!(admin::revoke_grant))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .with_state(app)
}
