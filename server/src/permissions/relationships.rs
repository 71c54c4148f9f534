//! Coach–athlete relationships (invite, accept, decline, end, list mine)
//! and profiles (GET a visible one, PUT your own).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chalktalk_protocol::Role;
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, LiveCaller, facts_error, storage, user_id};
use crate::accounts::JsonBody;
use crate::app::App;
use crate::http::ApiError;
use chalktalk_services::permissions::RelState;
use chalktalk_services::permissions::profiles::{Profile, ProfileInput, validate};

/// `GET /api/v1/relationships`: mine, as coach or athlete.
#[utoipa::path(get, path = "/api/v1/relationships", tag = "relationships", responses((status = 200, description = "{relationships: [Relationship]}"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn list(State(app): State<App>, LiveCaller(c): LiveCaller) -> ApiResult {
    let f = &app.perms.facts;
    let mut rels = match c.role {
        Role::Coach => f.of_coach(&c.sub).await.map_err(storage)?,
        Role::Athlete => f.of_athlete(&c.sub).await.map_err(storage)?,
        Role::Admin => vec![],
    };
    rels.sort_by(|a, b| {
        (a.invited_ms, &a.coach, &a.athlete).cmp(&(b.invited_ms, &b.coach, &b.athlete))
    });
    Ok(Json(json!({ "relationships": rels })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct InviteReq {
    athlete: Option<String>,
}

/// `POST /api/v1/relationships` `{"athlete": id}`: a coach invites.
#[utoipa::path(post, path = "/api/v1/relationships", tag = "relationships", request_body = InviteReq, responses((status = 201, description = "Relationship (invited)"), (status = 403, description = "not a coach"), (status = 409, description = "already invited or active"), (status = 422, description = "validation_failed"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn invite(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    JsonBody(b): JsonBody<InviteReq>,
) -> ApiResult {
    if c.role != Role::Coach {
        return Err(ApiError::forbidden("only coaches invite athletes"));
    }
    let athlete = b.athlete.unwrap_or_default();
    user_id("athlete", &athlete)?;
    if athlete == c.sub {
        return Err(ApiError::invalid_field("athlete", "cannot invite yourself"));
    }
    // An account of another role cannot be invited (dev identities have
    // no account and are checked when they answer).
    if let Some(acc) = &app.accounts
        && let Some(a) = acc.get(&athlete).await?
        && a.role != Role::Athlete
    {
        return Err(ApiError::invalid_field("athlete", "not an athlete"));
    }
    let r = app
        .perms
        .facts
        .invite(&c.sub, &athlete)
        .await
        .map_err(facts_error)?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

/// `POST /api/v1/relationships/{coach}/{athlete}/{accept|decline|end}`.
/// Only the athlete answers; either side ends. Someone else's pair is 404.
#[utoipa::path(post, path = "/api/v1/relationships/{coach}/{athlete}/{action}", tag = "relationships", params(("coach" = String, Path, description = "coach id"), ("athlete" = String, Path, description = "athlete id"), ("action" = String, Path, description = "accept, decline or end")), responses((status = 200, description = "Relationship"), (status = 403, description = "only the athlete answers"), (status = 404, description = "not your relationship"), (status = 409, description = "state does not allow it"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn act(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path((coach, athlete, action)): Path<(String, String, String)>,
) -> ApiResult {
    let f = &app.perms.facts;
    let mine =
        (c.sub == coach && c.role == Role::Coach) || (c.sub == athlete && c.role == Role::Athlete);
    if !mine {
        return Err(ApiError::not_found("no such relationship of yours"));
    }
    let r = match action.as_str() {
        "accept" | "decline" if c.sub == athlete => f
            .respond(&coach, &athlete, action == "accept")
            .await
            .map_err(facts_error)?,
        "accept" | "decline" => {
            return Err(ApiError::forbidden("only the invited athlete answers"));
        }
        "end" => f.end(&coach, &athlete).await.map_err(facts_error)?,
        _ => return Err(ApiError::not_found("actions: accept, decline, end")),
    };
    Ok(Json(r).into_response())
}

/// `GET /api/v1/profiles/{user}` (`me` for yours): coach profiles are
/// public to signed-in users; athlete profiles to themselves, admins and
/// coaches with an invited or active relationship; otherwise 404.
#[utoipa::path(get, path = "/api/v1/profiles/{user}", tag = "profiles", params(("user" = String, Path, description = "user id or me")), responses((status = 200, description = "{user, profile}"), (status = 404, description = "no profile you can see"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn get_profile(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(user): Path<String>,
) -> ApiResult {
    let user = if user == "me" { c.sub.clone() } else { user };
    let hidden = || ApiError::not_found(format!("no profile of {user} you can see"));
    let Some(p) = app.perms.profiles.get(&user).await.map_err(storage)? else {
        return Err(hidden());
    };
    let visible = match &p {
        Profile::Coach { .. } => true,
        Profile::Athlete { .. } => {
            user == c.sub
                || c.role == Role::Admin
                || (c.role == Role::Coach
                    && app
                        .perms
                        .facts
                        .relationship(&c.sub, &user)
                        .await
                        .map_err(storage)?
                        .is_some_and(|(r, _)| {
                            matches!(r.state, RelState::Invited | RelState::Active)
                        }))
        }
    };
    if !visible {
        return Err(hidden());
    }
    Ok(Json(json!({ "user": user, "profile": p })).into_response())
}

/// `PUT /api/v1/profiles/me`: your coach or athlete profile (422 with
/// fields when invalid).
#[utoipa::path(put, path = "/api/v1/profiles/{user}", tag = "profiles", params(("user" = String, Path, description = "me")), request_body = ProfileInput, responses((status = 200, description = "{user, profile}"), (status = 403, description = "not yours, or an admin"), (status = 422, description = "validation_failed with fields"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn put_profile(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(user): Path<String>,
    JsonBody(b): JsonBody<ProfileInput>,
) -> ApiResult {
    if user != "me" && user != c.sub {
        return Err(ApiError::forbidden("you can only edit your own profile"));
    }
    let coach = match c.role {
        Role::Coach => true,
        Role::Athlete => false,
        Role::Admin => return Err(ApiError::forbidden("admins have no profile")),
    };
    let p = validate(coach, b).map_err(ApiError::validation)?;
    app.perms.profiles.put(&c.sub, &p).await.map_err(storage)?;
    Ok(Json(json!({ "user": c.sub, "profile": p })).into_response())
}
