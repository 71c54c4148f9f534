//! Access tokens: HS256 JWTs (jsonwebtoken) carrying the user id and role.
//! `chalktalk token` mints dev tokens with the same secret the server uses;
//! the secret comes from the configuration or, for local use, from a random
//! secret generated once into the data dir (mode 0600).
//!
//! Tokens of a sign-in session carry its `sid` and are refused once the
//! session is revoked: [`Auth::verify`] consults what this node knows of the
//! revocation list (no I/O), [`Auth::verify_live`] the shared list (Redis
//! when configured). Three audiences keep token kinds apart: `chalktalk`
//! (access tokens, the only ones `verify` accepts), [`AUD_MFA_ENROLL`]
//! (a coach or admin without TOTP yet: only TOTP enrollment is allowed,
//! see [`Claims::mfa_pending`]) and [`AUD_MFA_CHALLENGE`] (between password
//! and code at sign-in).

use std::path::Path;
use std::sync::Arc;

use chalktalk_protocol::{ErrorCode, Role, valid_id};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "chalktalk";
const AUDIENCE: &str = "chalktalk";
/// Audience of the access tokens of a coach or admin who must enable TOTP
/// first: accepted only by the TOTP enrollment routes.
pub const AUD_MFA_ENROLL: &str = "chalktalk:mfa-enroll";
/// Audience of the short-lived token between password and TOTP code.
pub const AUD_MFA_CHALLENGE: &str = "chalktalk:mfa-challenge";

/// A token's audience (its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Access token.
    Access,
    /// Access token that only allows TOTP enrollment.
    MfaEnroll,
    /// Second sign-in step.
    MfaChallenge,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Access => AUDIENCE,
            Audience::MfaEnroll => AUD_MFA_ENROLL,
            Audience::MfaChallenge => AUD_MFA_CHALLENGE,
        }
    }
}

/// Claims of a chalktalk access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: u64,
    pub iat: u64,
    pub iss: String,
    pub aud: String,
    /// The sign-in session (device) the token belongs to; revoking it
    /// revokes the token. Absent on dev tokens from `chalktalk token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's row of the permission matrix when the token was issued.
    /// Absent on dev tokens: derived from `role` (see [`Claims::plan`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::accounts::Plan>,
}

impl Claims {
    /// True for a coach or admin who has not enabled TOTP yet: the token
    /// only allows TOTP enrollment, everything else answers 403
    /// `mfa_required`. [`Auth::verify`] refuses such tokens outright.
    pub fn mfa_pending(&self) -> bool {
        self.aud == AUD_MFA_ENROLL
    }

    /// The permission-matrix row: the token's, else the most capable row of
    /// its role (dev tokens of `chalktalk token`).
    pub fn plan(&self) -> crate::accounts::Plan {
        use crate::accounts::Plan;
        self.plan.unwrap_or(match self.role {
            Role::Admin => Plan::Admin,
            Role::Coach => Plan::CoachPremium,
            Role::Athlete => Plan::AthletePaid,
        })
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AuthError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot use secret file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Signs and verifies tokens.
#[derive(Clone)]
pub struct Auth {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    revocations: Option<Arc<dyn chalktalk_adapters::revocations::Revocations>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(HS256)")
    }
}

impl Auth {
    pub fn new(secret: &[u8]) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 5;
        Auth {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            validation,
            revocations: None,
        }
    }

    /// The same keys, refusing tokens of sessions in `revocations`.
    pub fn with_revocations(
        mut self,
        revocations: Arc<dyn chalktalk_adapters::revocations::Revocations>,
    ) -> Auth {
        self.revocations = Some(revocations);
        self
    }

    /// The revocation list, if any.
    pub fn revocations(&self) -> Option<&Arc<dyn chalktalk_adapters::revocations::Revocations>> {
        self.revocations.as_ref()
    }

    /// Mints a token of sign-in session `sid` with audience `aud`.
    pub fn mint_session(
        &self,
        user: &str,
        plan: crate::accounts::Plan,
        sid: Option<&str>,
        aud: Audience,
        ttl_secs: u64,
    ) -> Result<String, AuthError> {
        let now = chalktalk_actors::now_ms() / 1000;
        let claims = Claims {
            sub: user.into(),
            role: plan.role(),
            iat: now,
            exp: now + ttl_secs,
            iss: ISSUER.into(),
            aud: aud.as_str().into(),
            sid: sid.map(str::to_string),
            plan: Some(plan),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc).map_err(|e| {
            AuthError {
                code: ErrorCode::Internal,
                message: e.to_string(),
            }
        })
    }

    /// Verifies a token of any of `auds` (signature, expiry, issuer) and
    /// what this node knows of revocations.
    pub fn verify_as(&self, token: &str, auds: &[Audience]) -> Result<Claims, AuthError> {
        let mut v = self.validation.clone();
        let names: Vec<&str> = auds.iter().map(|a| a.as_str()).collect();
        v.set_audience(&names);
        let claims = self.decode(token, &v)?;
        if let (Some(sid), Some(r)) = (&claims.sid, &self.revocations)
            && r.is_revoked_locally(sid)
        {
            return Err(revoked());
        }
        Ok(claims)
    }

    /// [`Auth::verify_as`] plus the authoritative revocation list (Redis
    /// when configured).
    pub async fn verify_live_as(
        &self,
        token: &str,
        auds: &[Audience],
    ) -> Result<Claims, AuthError> {
        let claims = self.verify_as(token, auds)?;
        if let (Some(sid), Some(r)) = (&claims.sid, &self.revocations)
            && r.is_revoked(sid).await
        {
            return Err(revoked());
        }
        Ok(claims)
    }

    /// An access token, checked against the shared revocation list.
    pub async fn verify_live(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_live_as(token, &[Audience::Access]).await
    }

    /// The configured secret, or the data dir's generated one.
    pub fn from_config(secret: Option<&str>, data_dir: &Path) -> Result<Auth, SecretError> {
        match secret {
            Some(s) => Ok(Auth::new(s.as_bytes())),
            None => Ok(Auth::new(dev_secret(data_dir)?.as_bytes())),
        }
    }

    /// Mints a token for `user` valid for `ttl_secs`.
    pub fn mint(&self, user: &str, role: Role, ttl_secs: u64) -> Result<String, AuthError> {
        if !valid_id(user) {
            return Err(AuthError {
                code: ErrorCode::Invalid,
                message: "user id must be 1-64 characters of [A-Za-z0-9_.:@-]".into(),
            });
        }
        let now = chalktalk_actors::now_ms() / 1000;
        let claims = Claims {
            sub: user.into(),
            role,
            iat: now,
            exp: now + ttl_secs,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sid: None,
            plan: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc).map_err(|e| {
            AuthError {
                code: ErrorCode::Internal,
                message: e.to_string(),
            }
        })
    }

    /// Verifies an access token: signature, algorithm, expiry, issuer,
    /// audience and what this node knows of revocations.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_as(token, &[Audience::Access])
    }

    fn decode(&self, token: &str, validation: &Validation) -> Result<Claims, AuthError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.dec, validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError {
                        code: ErrorCode::TokenExpired,
                        message: "the token has expired; get a new one".into(),
                    },
                    _ => AuthError {
                        code: ErrorCode::Unauthorized,
                        message: format!("invalid token: {e}"),
                    },
                }
            })?;
        if !valid_id(&data.claims.sub) {
            return Err(AuthError {
                code: ErrorCode::Unauthorized,
                message: "token subject is not a valid user id".into(),
            });
        }
        Ok(data.claims)
    }
}

fn revoked() -> AuthError {
    AuthError {
        code: ErrorCode::Unauthorized,
        message: "the session of this token was revoked; sign in again".into(),
    }
}

/// The key of signed media links, derived from the token secret (so every
/// node sharing the secret verifies every node's links).
pub fn link_key(secret: Option<&str>, data_dir: &Path) -> Result<[u8; 32], SecretError> {
    use sha2::Digest;
    let secret = match secret {
        Some(s) => s.to_string(),
        None => dev_secret(data_dir)?,
    };
    let mut h = sha2::Sha256::new();
    h.update(b"chalktalk media links\0");
    h.update(secret.as_bytes());
    Ok(h.finalize().into())
}

/// Reads (or creates once) the random dev secret in `data_dir`.
fn dev_secret(data_dir: &Path) -> Result<String, SecretError> {
    let path = data_dir.join("jwt-secret");
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim().to_string());
    }
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let secret: String = b.iter().map(|x| format!("{x:02x}")).collect();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    f.write_all(secret.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    tracing::warn!(path = %path.display(), "no jwt_secret configured; generated a dev secret");
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let a = Auth::new(b"0123456789abcdef0123456789abcdef");
        let t = a.mint("coach-1", Role::Coach, 60).unwrap();
        let c = a.verify(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.role), ("coach-1", Role::Coach));

        let other = Auth::new(b"another-secret-another-secret-xx");
        assert_eq!(other.verify(&t).unwrap_err().code, ErrorCode::Unauthorized);

        // Expired beyond the leeway.
        let mut claims = c.clone();
        claims.exp = claims.iat - 60;
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &a.enc).unwrap();
        assert_eq!(a.verify(&old).unwrap_err().code, ErrorCode::TokenExpired);

        // alg "none": header {"alg":"none"} with an empty signature.
        let parts: Vec<&str> = t.split('.').collect();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
        assert_eq!(a.verify(&none).unwrap_err().code, ErrorCode::Unauthorized);

        // Wrong audience.
        let mut claims = c;
        claims.aud = "someone-else".into();
        let aud = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &a.enc).unwrap();
        assert_eq!(a.verify(&aud).unwrap_err().code, ErrorCode::Unauthorized);
        assert_eq!(
            a.verify("garbage").unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn dev_secret_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let s1 = dev_secret(dir.path()).unwrap();
        let s2 = dev_secret(dir.path()).unwrap();
        assert_eq!(s1, s2);
        assert_eq!(s1.len(), 64);
    }
}
