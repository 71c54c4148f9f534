//! REST routes of accounts and sessions under `/api/v1` (contract:
//! docs/PROTOCOL.md, "Accounts and sessions"). JSON bodies are limited to
//! 64 KiB (413 `too_large`); malformed JSON is 400 `bad_request`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State,
};
use axum::http::{HeaderMap, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chalktalk_protocol::Role;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::guard::{authenticate, authenticate_allowing_mfa_enrollment};
use super::password::{check_password, normalise_email};
use super::service::{Accounts, SignIn, device_name};
use crate::http::ApiError;

/// Largest JSON body.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A JSON body: 413 over the limit, 400 if malformed.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(format!("JSON bodies are limited to {MAX_JSON_BYTES} bytes"))
            } else {
                ApiError::bad_request(r.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    }
}

/// The peer address (when the server records it).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

type Svc = State<Arc<Accounts>>;
type ApiResult = Result<Response, ApiError>;

fn required(fields: &mut Map<String, Value>, name: &str, v: &Option<String>) {
    if v.as_deref().is_none_or(str::is_empty) {
        fields.insert(name.into(), "required".into());
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RegisterReq {
    email: Option<String>,
    password: Option<String>,
    role: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts", request_body = RegisterReq, responses((status = 202, description = "accepted (no enumeration)"), (status = 400, description = "malformed JSON"), (status = 422, description = "validation_failed with fields"), (status = 429, description = "rate_limit_exceeded")))]
async fn register(State(a): Svc, JsonBody(b): JsonBody<RegisterReq>) -> ApiResult {
    let mut fields = Map::new();
    required(&mut fields, "email", &b.email);
    required(&mut fields, "password", &b.password);
    let email = b.email.as_deref().map(normalise_email);
    if let Some(Err(p)) = &email
        && !fields.contains_key("email")
    {
        fields.insert("email".into(), (*p).into());
    }
    if let (Some(pw), Some(Ok(e))) = (&b.password, &email)
        && let Err(p) = check_password(pw, e)
    {
        fields.insert("password".into(), p.into());
    }
    let role = match b.role.as_deref() {
        None | Some("athlete") => Role::Athlete,
        Some("coach") => Role::Coach,
        Some(_) => {
            fields.insert("role".into(), "must be athlete or coach".into());
            Role::Athlete
        }
    };
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let (email, password) = (b.email.unwrap_or_default(), b.password.unwrap_or_default());
    // The same answer whether the email was free or taken.
    let _ = a.create_account(&email, &password, role).await?;
    let body = json!({
        "status": "accepted",
        "message": "if this email address can be used, its account is ready: sign in",
    });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

fn sign_in_response(s: SignIn) -> Response {
    match s {
        SignIn::Tokens(t) => axum::Json(t).into_response(),
        SignIn::Challenge {
            challenge,
            expires_in,
        } => axum::Json(json!({
            "mfa": "required",
            "challenge": challenge,
            "expires_in": expires_in,
        }))
        .into_response(),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct SignInReq {
    email: Option<String>,
    password: Option<String>,
    device: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/signin", tag = "accounts", request_body = SignInReq, responses((status = 200, description = "tokens, or an MFA challenge"), (status = 400, description = "malformed JSON"), (status = 422, description = "validation_failed with fields"), (status = 429, description = "rate_limit_exceeded")))]
async fn sign_in(
    State(a): Svc,
    ClientIp(ip): ClientIp,
    JsonBody(b): JsonBody<SignInReq>,
) -> ApiResult {
    let mut fields = Map::new();
    required(&mut fields, "email", &b.email);
    required(&mut fields, "password", &b.password);
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let (email, password) = (b.email.unwrap_or_default(), b.password.unwrap_or_default());
    let s = a
        .sign_in(&email, &password, &device_name(b.device.as_deref()), ip)
        .await?;
    Ok(sign_in_response(s))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct MfaReq {
    challenge: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
    device: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/mfa", tag = "accounts", request_body = MfaReq, responses((status = 200, description = "tokens"), (status = 400, description = "malformed JSON"), (status = 422, description = "validation_failed with fields"), (status = 429, description = "rate_limit_exceeded")))]
async fn sign_in_mfa(
    State(a): Svc,
    ClientIp(ip): ClientIp,
    JsonBody(b): JsonBody<MfaReq>,
) -> ApiResult {
    let mut fields = Map::new();
    required(&mut fields, "challenge", &b.challenge);
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let device = device_name(b.device.as_deref());
    let t = a
        .sign_in_second_factor(
            b.challenge.as_deref().unwrap_or_default(),
            b.code.as_deref(),
            b.recovery_code.as_deref(),
            &device,
            ip,
        )
        .await?;
    Ok(axum::Json(t).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RefreshReq {
    refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "accounts", request_body = RefreshReq, responses((status = 200, description = "rotated tokens"), (status = 400, description = "malformed JSON"), (status = 422, description = "validation_failed with fields"), (status = 429, description = "rate_limit_exceeded")))]
async fn refresh(State(a): Svc, JsonBody(b): JsonBody<RefreshReq>) -> ApiResult {
    let Some(t) = b.refresh_token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::invalid_field("refresh_token", "required"));
    };
    Ok(axum::Json(a.refresh(&t).await?).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", responses((status = 204, description = "session revoked"), (status = 401, description = "unauthorized"), (status = 403, description = "mfa_required")), security(("bearer" = [])))]
async fn logout(State(a): Svc, headers: HeaderMap) -> ApiResult {
    let c = authenticate_allowing_mfa_enrollment(a.auth(), &headers).await?;
    if let Some(sid) = &c.sid {
        a.revoke(&c.sub, sid).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ExternalReq {
    id_token: Option<String>,
    device: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/external", tag = "accounts", request_body = ExternalReq, responses((status = 200, description = "tokens for the mapped account"), (status = 400, description = "malformed JSON"), (status = 422, description = "validation_failed with fields"), (status = 429, description = "rate_limit_exceeded")))]
async fn external(State(a): Svc, JsonBody(b): JsonBody<ExternalReq>) -> ApiResult {
    let Some(t) = b.id_token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::invalid_field("id_token", "required"));
    };
    let s = a.external(&t, &device_name(b.device.as_deref())).await?;
    Ok(sign_in_response(s))
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", responses((status = 200, description = "your account"), (status = 401, description = "unauthorized"), (status = 403, description = "mfa_required")), security(("bearer" = [])))]
async fn me(State(a): Svc, headers: HeaderMap) -> ApiResult {
    let c = authenticate_allowing_mfa_enrollment(a.auth(), &headers).await?;
    let acc = a.account(&c.sub).await?.account;
    let required = super::service::requires_mfa(acc.role);
    Ok(axum::Json(json!({
        "id": acc.id,
        "email": acc.email,
        "role": acc.role,
        "plan": acc.plan(),
        "subscription": acc.subscription,
        "tier": acc.tier,
        "created_ms": acc.created_ms,
        "external": acc.external.is_some(),
        "mfa": {
            "enabled": acc.totp_secret.is_some(),
            "required": required,
            "pending": c.mfa_pending(),
            "recovery_codes_left": acc.recovery_hashes.len(),
        },
        "session": c.sid,
    }))
    .into_response())
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "accounts", responses((status = 200, description = "your sessions (devices)"), (status = 401, description = "unauthorized"), (status = 403, description = "mfa_required")), security(("bearer" = [])))]
async fn sessions(State(a): Svc, headers: HeaderMap) -> ApiResult {
    let c = authenticate(a.auth(), &headers).await?;
    let list: Vec<Value> = a
        .sessions(&c.sub)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "sid": s.sid,
                "device": s.device,
                "created_ms": s.created_ms,
                "last_used_ms": s.last_used_ms,
                "current": c.sid.as_deref() == Some(s.sid.as_str()),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "sessions": list })).into_response())
}

#[utoipa::path(delete, path = "/api/v1/sessions/{sid}", tag = "accounts", params(("sid" = String, Path, description = "session id")), responses((status = 204, description = "revoked"), (status = 401, description = "unauthorized"), (status = 403, description = "mfa_required")), security(("bearer" = [])))]
async fn revoke_session(State(a): Svc, headers: HeaderMap, Path(sid): Path<String>) -> ApiResult {
    let c = authenticate(a.auth(), &headers).await?;
    if sid.len() > 64 || !a.revoke(&c.sub, &sid).await? {
        return Err(ApiError::not_found("no such session"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/mfa/totp/enroll", tag = "accounts", responses((status = 200, description = "secret and otpauth URL"), (status = 401, description = "unauthorized"), (status = 403, description = "mfa_required")), security(("bearer" = [])))]
async fn totp_enroll(State(a): Svc, headers: HeaderMap) -> ApiResult {
    let c = authenticate_allowing_mfa_enrollment(a.auth(), &headers).await?;
    Ok(axum::Json(a.totp_enroll(&c).await?).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ConfirmReq {
    code: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/mfa/totp/confirm", tag = "accounts", request_body = ConfirmReq, responses((status = 200, description = "recovery codes"), (status = 401, description = "unauthorized"), (status = 403, description = "mfa_required")), security(("bearer" = [])))]
async fn totp_confirm(
    State(a): Svc,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ConfirmReq>,
) -> ApiResult {
    let c = authenticate_allowing_mfa_enrollment(a.auth(), &headers).await?;
    let Some(code) = b.code.filter(|c| !c.is_empty()) else {
        return Err(ApiError::invalid_field("code", "required"));
    };
    Ok(axum::Json(a.totp_confirm(&c, &code).await?).into_response())
}

/// The OpenAPI description of these routes (merged into /api/openapi.json).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    register,
    sign_in,
    sign_in_mfa,
    refresh,
    logout,
    external,
    me,
    sessions,
    revoke_session,
    totp_enroll,
    totp_confirm
))]
pub struct AccountsApi;

/// The account routes, state applied (merge into the gateway's router).
pub fn routes(svc: Arc<Accounts>) -> Router {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/signin", post(sign_in))
        .route("/api/v1/auth/mfa", post(sign_in_mfa))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/external", post(external))
        .route("/api/v1/me", get(me))
        .route("/api/v1/sessions", get(sessions))
        .route("/api/v1/sessions/{sid}", delete(revoke_session))
        .route("/api/v1/mfa/totp/enroll", post(totp_enroll))
        .route("/api/v1/mfa/totp/confirm", post(totp_confirm))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .with_state(svc)
}
