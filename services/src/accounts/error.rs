//! [`AccountError`]: every failure of an account operation a client may
//! see, each with its stable error code ([`AccountError::code`], the
//! `"error"` of the JSON body) and a human message (its `Display`). The
//! server maps each to its HTTP status (server/src/http/error.rs).

use std::borrow::Cow;

/// A failed account operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// `unauthorized` (401): wrong credentials, an unknown or expired
    /// token or code. Sign-in failures are uniform on purpose.
    #[error("{0}")]
    Unauthorized(Cow<'static, str>),
    /// `refresh_reused` (401): a refresh token was used twice; its session
    /// is revoked.
    #[error("this refresh token was already used; the session is revoked, sign in again")]
    RefreshReused,
    /// `not_found` (404): no such account, or no identity provider.
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// `mfa_already_enabled` (409).
    #[error("TOTP is already enabled")]
    MfaAlreadyEnabled,
    /// `mfa_not_enrolling` (409): confirmation before enrollment.
    #[error("start enrollment first")]
    MfaNotEnrolling,
    /// `mfa_conflict` (409): the enrollment changed meanwhile.
    #[error("enrollment changed meanwhile; retry")]
    MfaConflict,
    /// `validation_failed` (422) for one field of the request.
    #[error("invalid fields: {field}")]
    Invalid {
        field: &'static str,
        problem: Cow<'static, str>,
    },
    /// `rate_limit_exceeded` (429): too many failed sign-ins of this email
    /// or address; retry after `retry_after` seconds.
    #[error("too many failed sign-ins; try again later")]
    Locked { retry_after: u64 },
    /// `internal` (500): a server-side failure.
    #[error("{0}")]
    Internal(String),
    /// `unavailable` (503): storage or the identity provider failed;
    /// retry later.
    #[error("{0}")]
    Unavailable(Cow<'static, str>),
}

impl AccountError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Unauthorized(_) => "unauthorized",
            AccountError::RefreshReused => "refresh_reused",
            AccountError::NotFound(_) => "not_found",
            AccountError::MfaAlreadyEnabled => "mfa_already_enabled",
            AccountError::MfaNotEnrolling => "mfa_not_enrolling",
            AccountError::MfaConflict => "mfa_conflict",
            AccountError::Invalid { .. } => "validation_failed",
            AccountError::Locked { .. } => "rate_limit_exceeded",
            AccountError::Internal(_) => "internal",
            AccountError::Unavailable(_) => "unavailable",
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> AccountError {
        AccountError::Unauthorized(message.into())
    }

    /// 422 `validation_failed` for `field`.
    pub fn invalid(field: &'static str, problem: impl Into<Cow<'static, str>>) -> AccountError {
        AccountError::Invalid {
            field,
            problem: problem.into(),
        }
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> AccountError {
        AccountError::Internal(message.into())
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> AccountError {
        AccountError::Unavailable(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = AccountError::invalid("email", "empty");
        assert_eq!(
            (e.code(), e.to_string()),
            ("validation_failed", "invalid fields: email".into())
        );
        let e = AccountError::Locked { retry_after: 9 };
        assert_eq!(e.code(), "rate_limit_exceeded");
        assert_eq!(e.to_string(), "too many failed sign-ins; try again later");
        assert_eq!(AccountError::unauthorized("x").to_string(), "x");
        assert_eq!(AccountError::RefreshReused.code(), "refresh_reused");
    }
}
