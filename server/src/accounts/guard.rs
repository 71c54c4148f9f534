//! How a REST route authenticates its caller: the bearer token's signature,
//! expiry, issuer and audience, and its session checked against the shared
//! revocation list. A coach or admin who has not enabled TOTP yet gets 403
//! `mfa_required` everywhere except the routes that call
//! [`authenticate_allowing_mfa_enrollment`].
//!
//! Use [`authenticate`] with the node's [`Auth`] (it carries the revocation
//! list), or the [`Caller`] extractor with any router state `S` where
//! `Auth: FromRef<S>`.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{HeaderMap, StatusCode, request::Parts};
use chalktalk_protocol::ErrorCode;

use crate::http::ApiError;
use chalktalk_services::auth::{Audience, Auth, AuthError, Claims};

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
    value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))
}

fn refused(e: AuthError) -> ApiError {
    let code = if e.code == ErrorCode::TokenExpired {
        "token_expired"
    } else {
        "unauthorized"
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, e.message)
}

/// 403 `mfa_required`.
pub fn mfa_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "mfa_required",
        "enable two-factor authentication first (POST /api/v1/mfa/totp/enroll, then /confirm)",
    )
}

/// The caller of a request: 401 without a valid, unrevoked access token;
/// 403 `mfa_required` for a coach or admin without TOTP.
pub async fn authenticate(auth: &Auth, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let claims = authenticate_allowing_mfa_enrollment(auth, headers).await?;
    if claims.mfa_pending() {
        return Err(mfa_required());
    }
    Ok(claims)
}

/// Like [`authenticate`], but also accepts the enrollment-only tokens of a
/// coach or admin without TOTP (check [`Claims::mfa_pending`]).
pub async fn authenticate_allowing_mfa_enrollment(
    auth: &Auth,
    headers: &HeaderMap,
) -> Result<Claims, ApiError> {
    let token = bearer(headers)?;
    auth.verify_live_as(token, &[Audience::Access, Audience::MfaEnroll])
        .await
        .map_err(refused)
}

/// Extractor: the authenticated caller (see [`authenticate`]).
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl<S> FromRequestParts<S> for Caller
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        authenticate(&auth, &parts.headers).await.map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chalktalk_adapters::EmbeddedStore;
    use chalktalk_services::accounts::{EmbeddedRevocations, Plan, Revocations};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn revoked_and_pending_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let revs: Arc<dyn Revocations> = Arc::new(
            EmbeddedRevocations::open(
                EmbeddedStore::open(dir.path()).unwrap(),
                Duration::from_secs(60),
            )
            .await
            .unwrap(),
        );
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef").with_revocations(revs.clone());
        let headers = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", format!("Bearer {t}").parse().unwrap());
            h
        };
        let t = auth
            .mint_session("u-1", Plan::AthleteFree, Some("s1"), Audience::Access, 60)
            .unwrap();
        assert_eq!(
            authenticate(&auth, &headers(&t))
                .await
                .unwrap()
                .sid
                .as_deref(),
            Some("s1")
        );
        let p = auth
            .mint_session(
                "u-2",
                Plan::CoachPremium,
                Some("s2"),
                Audience::MfaEnroll,
                60,
            )
            .unwrap();
        assert_eq!(
            authenticate(&auth, &headers(&p)).await.unwrap_err().code,
            "mfa_required"
        );
        assert!(
            authenticate_allowing_mfa_enrollment(&auth, &headers(&p))
                .await
                .unwrap()
                .mfa_pending()
        );
        assert!(
            auth.verify(&p).is_err(),
            "plain verify refuses enrollment-only tokens"
        );
        let c = auth
            .mint_session("u-2", Plan::CoachPremium, None, Audience::MfaChallenge, 60)
            .unwrap();
        assert_eq!(
            authenticate(&auth, &headers(&c)).await.unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        revs.revoke("s1").await.unwrap();
        assert_eq!(
            authenticate(&auth, &headers(&t)).await.unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert!(auth.verify(&t).is_err());
        let dev = auth
            .mint("coach", chalktalk_protocol::Role::Coach, 60)
            .unwrap();
        assert!(
            authenticate(&auth, &headers(&dev)).await.is_ok(),
            "dev tokens have no session"
        );
    }
}
