//! Request and response bodies of the account routes, with their OpenAPI
//! schemas (`ToSchema`). Request fields are optional on purpose: a missing
//! one is reported in `validation_failed.fields`, not as a parse error.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct RegisterReq {
    /// Trimmed and lower-cased.
    pub email: Option<String>,
    /// 12..=128 characters, not one character repeated, not the email.
    pub password: Option<String>,
    /// `athlete` (default) or `coach`.
    pub role: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SignInReq {
    pub email: Option<String>,
    pub password: Option<String>,
    /// A name for this device in the session list (up to 64 characters).
    pub device: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct MfaReq {
    /// From the first step.
    pub challenge: Option<String>,
    /// The 6-digit TOTP code …
    pub code: Option<String>,
    /// … or one of the recovery codes.
    pub recovery_code: Option<String>,
    pub device: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshReq {
    pub refresh_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ExternalReq {
    /// The identity provider's ID token (RS256 or ES256).
    pub id_token: Option<String>,
    pub device: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmReq {
    /// The current TOTP code of the enrolled secret.
    pub code: Option<String>,
}

/// Registration is accepted (the same answer for a taken email).
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub status: &'static str,
    pub message: &'static str,
}

/// TOTP is on: send a code with this challenge to `/api/v1/auth/mfa`.
#[derive(Serialize, ToSchema)]
pub struct Challenge {
    /// Always `required`.
    pub mfa: &'static str,
    pub challenge: String,
    pub expires_in: u64,
}

/// The answer of a first sign-in step: tokens, or a TOTP challenge.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SignInBody {
    Tokens(chalktalk_services::accounts::Tokens),
    Challenge(Challenge),
}

#[derive(Serialize, ToSchema)]
pub struct MfaState {
    pub enabled: bool,
    /// Coaches and admins must enable TOTP.
    pub required: bool,
    /// This token only allows enrollment.
    pub pending: bool,
    pub recovery_codes_left: usize,
}

/// The caller's account.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: String,
    pub email: String,
    #[schema(value_type = String, example = "coach")]
    pub role: chalktalk_protocol::Role,
    #[schema(value_type = String, example = "coach_premium")]
    pub plan: chalktalk_services::accounts::Plan,
    #[schema(value_type = Option<String>, example = "trial")]
    pub subscription: Option<chalktalk_services::accounts::Subscription>,
    #[schema(value_type = Option<String>, example = "free")]
    pub tier: Option<chalktalk_services::accounts::Tier>,
    pub created_ms: u64,
    /// Signed up through the external identity provider.
    pub external: bool,
    pub mfa: MfaState,
    /// The session of this token (absent on developer tokens).
    pub session: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionItem {
    pub sid: String,
    pub device: String,
    pub created_ms: u64,
    pub last_used_ms: u64,
    /// The session of the token that asked.
    pub current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionItem>,
}
