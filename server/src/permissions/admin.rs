//! `GET /api/v1/analytics/me` (what the matrix allows per plan, counted
//! from stored data) and the admin tools: set a user's plan (an override
//! of their subscriptions, audited), grant or revoke a video for an
//! athlete.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chalktalk_actors::store::MembershipKind;
use chalktalk_protocol::{MediaKind, Role};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiResult, LiveCaller, require, storage, subject, user_id};
use crate::accounts::JsonBody;
use crate::app::App;
use crate::http::ApiError;
use chalktalk_services::accounts::{Plan, Subscription, Tier};
use chalktalk_services::permissions::decide;
use chalktalk_services::permissions::matrix::{Analytics, row};

#[derive(Deserialize)]
pub struct AnalyticsQuery {
    user: Option<String>,
}

/// `GET /api/v1/analytics/me[?user=id]` (`user`: admins only; others get
/// 404 for anyone but themselves).
#[utoipa::path(get, path = "/api/v1/analytics/me", tag = "analytics", params(("user" = Option<String>, Query, description = "admins: another user's")), responses((status = 200, description = "{user, plan, scope, counts}"), (status = 403, description = "your plan has no analytics"), (status = 404, description = "not yours"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn analytics(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Query(q): Query<AnalyticsQuery>,
) -> ApiResult {
    let who = subject(&c);
    require(decide::analytics(who))?;
    let user = q.user.unwrap_or_else(|| c.sub.clone());
    if user != c.sub && c.role != Role::Admin {
        return Err(ApiError::not_found(format!(
            "no analytics of {user} you can see"
        )));
    }
    // The row that shapes the numbers: yours, or the subject's for admins.
    let plan = if user == c.sub {
        who.plan
    } else {
        app.perms.plan_of(&user).await.unwrap_or(Plan::AthleteFree)
    };
    let level = row(plan).analytics;
    let p = &app.perms;
    let videos = |u: String| async move {
        match &p.media {
            Some(m) => m
                .assets_of(&u, 100_000)
                .await
                .map(|v| v.iter().filter(|a| a.kind == MediaKind::Video).count() as u64),
            None => Ok(0),
        }
    };
    let mut counts = Map::new();
    let mut put = |k: &str, v: u64| {
        counts.insert(k.into(), Value::from(v));
    };
    put("videos", videos(user.clone()).await.map_err(storage)?);
    let rooms = p
        .store
        .memberships(&user, MembershipKind::Room)
        .await
        .map_err(storage)?;
    put("reviews", rooms.len() as u64);
    if matches!(
        level,
        Analytics::Full | Analytics::OwnData | Analytics::OwnProgress
    ) {
        let threads = p
            .store
            .memberships(&user, MembershipKind::Thread)
            .await
            .map_err(storage)?;
        let mut messages = 0;
        for t in &threads {
            messages += p.store.thread_head(t).await.map_err(storage)?;
        }
        put("threads", threads.len() as u64);
        put("messages", messages);
    }
    match level {
        Analytics::Full | Analytics::OwnData | Analytics::Basic => {
            let athletes = p.facts.active_athletes(&user).await.map_err(storage)?;
            put("athletes", athletes.len() as u64);
            if level != Analytics::Basic {
                let mut n = 0;
                for a in athletes {
                    n += videos(a.other).await.map_err(storage)?;
                }
                put("athlete_videos", n);
            }
        }
        Analytics::OwnProgress => {
            let coaches = p.facts.active_coaches(&user).await.map_err(storage)?;
            put("coaches", coaches.len() as u64);
        }
        Analytics::None => {}
    }
    let scope = format!("{level:?}");
    Ok(
        Json(json!({ "user": user, "plan": plan, "scope": scope, "counts": counts }))
            .into_response(),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PlanReq {
    /// admin, coach or athlete
    #[schema(value_type = Option<String>)]
    role: Option<Role>,
    /// active, trial or expired (coaches)
    #[schema(value_type = Option<String>)]
    subscription: Option<Subscription>,
    /// paid or free (athletes)
    #[schema(value_type = Option<String>)]
    tier: Option<Tier>,
}

/// `PUT /api/v1/admin/users/{id}/plan` `{"role", "subscription"?, "tier"?}`:
/// also an override of the user's subscriptions (until `DELETE
/// /api/v1/admin/users/{id}/plan/override`), written to the audit log.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/plan", tag = "admin", params(("id" = String, Path, description = "user id")), request_body = PlanReq, responses((status = 200, description = "{id, role, subscription, tier, plan}"), (status = 403, description = "admins only"), (status = 404, description = "no account"), (status = 422, description = "validation_failed"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn set_plan(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<PlanReq>,
) -> ApiResult {
    require(decide::admin(subject(&c)))?;
    let mut fields = Map::new();
    let role = b.role;
    match role {
        None => {
            fields.insert("role".into(), "required".into());
        }
        Some(Role::Coach) => {
            if b.subscription.is_none() {
                fields.insert("subscription".into(), "required for coaches".into());
            }
            if b.tier.is_some() {
                fields.insert("tier".into(), "only athletes have a tier".into());
            }
        }
        Some(Role::Athlete) => {
            if b.tier.is_none() {
                fields.insert("tier".into(), "required for athletes".into());
            }
            if b.subscription.is_some() {
                fields.insert(
                    "subscription".into(),
                    "only coaches have a subscription".into(),
                );
            }
        }
        Some(Role::Admin) => {
            if b.tier.is_some() || b.subscription.is_some() {
                fields.insert("role".into(), "admins have no subscription or tier".into());
            }
        }
    }
    let Some(role) = role.filter(|_| fields.is_empty()) else {
        return Err(ApiError::validation(fields));
    };
    let accounts = app
        .accounts
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("accounts are not enabled on this node"))?;
    let Some(before) = accounts.get(&id).await? else {
        return Err(ApiError::not_found(format!("no account {id}")));
    };
    let was = app.perms.plan_of(&id).await.unwrap_or(before.plan());
    let a = accounts.set_plan(&id, role, b.subscription, b.tier).await?;
    tracing::info!(admin = %c.sub, user = %id, plan = ?a.plan(), "plan set");
    if let Some(programs) = &app.programs {
        // An override: the fields just set decide over any subscription
        // until it is removed (DELETE .../plan/override); audited.
        programs.set_override(&c.sub, &id, was, a.plan()).await?;
    }
    if before.role != a.role {
        // A new role means new tokens (and TOTP enrollment for a coach or
        // admin): every session of the user ends, open WebSockets close.
        for s in accounts.sessions(&id).await? {
            accounts.revoke(&id, &s.sid).await?;
        }
        tracing::info!(user = %id, from = ?before.role, to = ?a.role, "role changed; sessions revoked");
    }
    Ok(Json(json!({
        "id": a.id, "role": a.role, "subscription": a.subscription, "tier": a.tier,
        "plan": a.plan(),
    }))
    .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct GrantReq {
    athlete: Option<String>,
    video: Option<String>,
}

/// `POST /api/v1/admin/grants` `{"athlete", "video"}`: 201 with the grant.
#[utoipa::path(post, path = "/api/v1/admin/grants", tag = "admin", request_body = GrantReq, responses((status = 201, description = "Grant"), (status = 403, description = "admins only"), (status = 404, description = "no video"), (status = 422, description = "validation_failed"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn grant(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    JsonBody(b): JsonBody<GrantReq>,
) -> ApiResult {
    require(decide::admin(subject(&c)))?;
    let athlete = b.athlete.unwrap_or_default();
    user_id("athlete", &athlete)?;
    let video = b.video.unwrap_or_default();
    if app
        .perms
        .video_asset(&video)
        .await
        .map_err(storage)?
        .is_none()
    {
        return Err(ApiError::not_found(format!("no video {video}")));
    }
    if let Some(acc) = &app.accounts
        && let Some(a) = acc.get(&athlete).await?
        && a.role != Role::Athlete
    {
        return Err(ApiError::invalid_field("athlete", "not an athlete"));
    }
    let g = app
        .perms
        .facts
        .grant(&athlete, &video, &c.sub)
        .await
        .map_err(super::facts_error)?;
    Ok((StatusCode::CREATED, Json(g)).into_response())
}

/// `DELETE /api/v1/admin/grants/{athlete}/{video}`: 204, or 404 if none.
#[utoipa::path(delete, path = "/api/v1/admin/grants/{athlete}/{video}", tag = "admin", params(("athlete" = String, Path, description = "athlete id"), ("video" = String, Path, description = "asset id")), responses((status = 204, description = "revoked"), (status = 403, description = "admins only"), (status = 404, description = "no such grant"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn revoke_grant(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path((athlete, video)): Path<(String, String)>,
) -> ApiResult {
    require(decide::admin(subject(&c)))?;
    if app
        .perms
        .facts
        .revoke_grant(&athlete, &video)
        .await
        .map_err(super::facts_error)?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("no such grant"))
    }
}
