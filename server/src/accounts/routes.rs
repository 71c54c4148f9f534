//! REST routes of accounts and sessions under `/api/v1` (contract:
//! docs/PROTOCOL.md, "Accounts and sessions"). JSON bodies are limited to
//! 64 KiB (413 `too_large`); malformed JSON is 400 `bad_request`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State,
};
use axum::http::{HeaderMap, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use chalktalk_protocol::Role;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::bodies::{
    Accepted, Challenge, ConfirmReq, ExternalReq, Me, MfaReq, MfaState, RefreshReq, RegisterReq,
    SessionItem, SessionList, SignInBody, SignInReq,
};
use super::guard::{authenticate, authenticate_allowing_mfa_enrollment};
use crate::http::ApiError;
use crate::openapi::ErrorBody;
use chalktalk_services::accounts::password::{check_password, normalise_email};
use chalktalk_services::accounts::{
    Accounts, Confirmed, Enrollment, SignIn, Tokens, device_name, requires_mfa,
};
use utoipa_axum::{router::OpenApiRouter, routes};

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

/// Registers an athlete or coach account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterReq,
    responses((status = 202, description = "Accepted (the same answer whether the email was free or taken)", body = Accepted),
        (status = 422, description = "Bad fields", body = ErrorBody), (status = 413, description = "Body over 64 KiB", body = ErrorBody)))]
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
    let body = Accepted {
        status: "accepted",
        message: "if this email address can be used, its account is ready: sign in",
    };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

fn sign_in_response(s: SignIn) -> Response {
    let body = match s {
        SignIn::Tokens(t) => SignInBody::Tokens(t),
        SignIn::Challenge {
            challenge,
            expires_in,
        } => SignInBody::Challenge(Challenge {
            mfa: "required",
            challenge,
            expires_in,
        }),
    };
    axum::Json(body).into_response()
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/signin", tag = "auth", request_body = SignInReq,
    responses((status = 200, description = "Tokens, or a TOTP challenge", body = SignInBody),
        (status = 401, description = "Wrong email or password (the same for an unknown email)", body = ErrorBody),
        (status = 429, description = "Locked after failed sign-ins", body = ErrorBody), (status = 422, description = "Bad fields", body = ErrorBody)))]
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

/// Second sign-in step: a TOTP code or a recovery code.
#[utoipa::path(post, path = "/api/v1/auth/mfa", tag = "auth", request_body = MfaReq,
    responses((status = 200, description = "Tokens", body = Tokens),
        (status = 401, description = "Wrong, reused or missing code; bad challenge", body = ErrorBody)))]
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

/// Rotates a refresh token; a reused one revokes its session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshReq,
    responses((status = 200, description = "New tokens (the old refresh token is dead)", body = Tokens),
        (status = 401, description = "`unauthorized` (unknown, expired) or `refresh_reused`", body = ErrorBody)))]
async fn refresh(State(a): Svc, JsonBody(b): JsonBody<RefreshReq>) -> ApiResult {
    let Some(t) = b.refresh_token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::invalid_field("refresh_token", "required"));
    };
    Ok(axum::Json(a.refresh(&t).await?).into_response())
}

/// Signs this session out (every node closes its WebSockets).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Signed out"), (status = 401, description = "No valid token", body = ErrorBody)))]
async fn logout(State(a): Svc, headers: HeaderMap) -> ApiResult {
    let c = authenticate_allowing_mfa_enrollment(a.auth(), &headers).await?;
    if let Some(sid) = &c.sid {
        a.revoke(&c.sub, sid).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Signs in with an external identity provider's ID token.
#[utoipa::path(post, path = "/api/v1/auth/external", tag = "auth", request_body = ExternalReq,
    responses((status = 200, description = "Tokens, or a TOTP challenge", body = SignInBody),
        (status = 401, description = "Token refused", body = ErrorBody), (status = 404, description = "No provider configured", body = ErrorBody)))]
async fn external(State(a): Svc, JsonBody(b): JsonBody<ExternalReq>) -> ApiResult {
    let Some(t) = b.id_token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::invalid_field("id_token", "required"));
    };
    let s = a.external(&t, &device_name(b.device.as_deref())).await?;
    Ok(sign_in_response(s))
}

/// The caller's account.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "The account", body = Me), (status = 401, description = "No valid token", body = ErrorBody)))]
async fn me(State(a): Svc, headers: HeaderMap) -> ApiResult {
    let c = authenticate_allowing_mfa_enrollment(a.auth(), &headers).await?;
    let acc = a.account_of(&c.sub).await?;
    let required = requires_mfa(acc.role);
    Ok(axum::Json(Me {
        plan: acc.plan(),
        subscription: acc.subscription_at(chalktalk_actors::now_ms()),
        id: acc.id,
        email: acc.email,
        role: acc.role,
        tier: acc.tier,
        created_ms: acc.created_ms,
        external: acc.external.is_some(),
        mfa: MfaState {
            enabled: acc.totp_secret.is_some(),
            required,
            pending: c.mfa_pending(),
            recovery_codes_left: acc.recovery_hashes.len(),
        },
        session: c.sid,
    })
    .into_response())
}

/// The caller's sessions (devices).
#[utoipa::path(get, path = "/api/v1/sessions", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "Sessions", body = SessionList), (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "`mfa_required`", body = ErrorBody)))]
async fn sessions(State(a): Svc, headers: HeaderMap) -> ApiResult {
    let c = authenticate(a.auth(), &headers).await?;
    let sessions = a
        .sessions(&c.sub)
        .await?
        .into_iter()
        .map(|s| SessionItem {
            current: c.sid.as_deref() == Some(s.sid.as_str()),
            sid: s.sid,
            device: s.device,
            created_ms: s.created_ms,
            last_used_ms: s.last_used_ms,
        })
        .collect();
    Ok(axum::Json(SessionList { sessions }).into_response())
}

/// Signs one of the caller's sessions out.
#[utoipa::path(delete, path = "/api/v1/sessions/{sid}", tag = "account", security(("bearer" = [])),
    params(("sid" = String, Path, description = "A session id from the list")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such session of the caller", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody)))]
async fn revoke_session(State(a): Svc, headers: HeaderMap, Path(sid): Path<String>) -> ApiResult {
    let c = authenticate(a.auth(), &headers).await?;
    if sid.len() > 64 || !a.revoke(&c.sub, &sid).await? {
        return Err(ApiError::not_found("no such session"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Starts TOTP enrollment: a new secret (shown once).
#[utoipa::path(post, path = "/api/v1/mfa/totp/enroll", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "Secret and otpauth URI", body = Enrollment), (status = 401, description = "No valid token", body = ErrorBody),
        (status = 409, description = "Already enabled", body = ErrorBody)))]
async fn totp_enroll(State(a): Svc, headers: HeaderMap) -> ApiResult {
    let c = authenticate_allowing_mfa_enrollment(a.auth(), &headers).await?;
    Ok(axum::Json(a.totp_enroll(&c).await?).into_response())
}

/// Confirms TOTP with a current code: recovery codes (shown once).
#[utoipa::path(post, path = "/api/v1/mfa/totp/confirm", tag = "account", security(("bearer" = [])), request_body = ConfirmReq,
    responses((status = 200, description = "Recovery codes and a full access token", body = Confirmed),
        (status = 401, description = "Wrong code or no valid token", body = ErrorBody)))]
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

/// The account routes, state applied (merge into the gateway's router;
/// every handler is also in the OpenAPI document).
pub fn routes(svc: Arc<Accounts>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(sign_in))
        .routes(routes!(sign_in_mfa))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(external))
        .routes(routes!(me))
        .routes(routes!(sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(totp_enroll))
        .routes(routes!(totp_confirm))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .with_state(svc)
}
