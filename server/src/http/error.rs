//! The JSON error of the HTTP API: `{"error": code, "message": ..., ...extra}`
//! with an HTTP status (and `Retry-After` for `busy` and sign-in locks).
//! Every route answers it; the services' own errors ([`AccountError`],
//! [`PermissionError`], [`MediaError`], [`ProgramError`]) become one through the `From`
//! impls below, which are where their codes get HTTP statuses.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chalktalk_services::{AccountError, MediaError, PermissionError, ProgramError};
use serde_json::{Map, Value};

/// Status for a chunk whose `Upload-Checksum` does not match (tus: 460).
pub const CHECKSUM_MISMATCH: u16 = 460;

/// An API error answered as JSON.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`"error"` in the body).
    pub code: Cow<'static, str>,
    /// Human-readable explanation.
    pub message: String,
    /// More fields merged into the body (`fields`, `offset`, ...).
    pub extra: Map<String, Value>,
    /// Seconds for the `Retry-After` header (also `retry_after` in the body).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// Adds a field to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// 400 `bad_request`: the request cannot be parsed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`: no valid token.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 with a specific code (`offset_mismatch`, `upload_busy`, ...).
    pub fn conflict(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 413 `too_large`.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 422 `validation_failed` with `"fields": {name: problem}`.
    pub fn validation(fields: Map<String, Value>) -> ApiError {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let message = format!("invalid fields: {}", names.join(", "));
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with("fields", Value::Object(fields))
    }

    /// 422 `validation_failed` for one field.
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> ApiError {
        let mut fields = Map::new();
        fields.insert(field.to_string(), Value::String(problem.into()));
        ApiError::validation(fields)
    }

    /// 460 `checksum_mismatch`: the chunk was discarded.
    pub fn checksum_mismatch(message: impl Into<String>) -> ApiError {
        let status = StatusCode::from_u16(CHECKSUM_MISMATCH).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, "checksum_mismatch", message)
    }

    /// 500 `internal`: a server-side failure.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 503 `busy` with `Retry-After: retry_after_secs`.
    pub fn busy(retry_after_secs: u64, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// 503 `unavailable`: a dependency (storage) failed; retry later.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// True for errors after which the same request may succeed later
    /// (5xx, including `busy`).
    pub fn is_retryable(&self) -> bool {
        self.status.is_server_error()
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.code.to_string()));
        body.insert("message".into(), Value::String(self.message.clone()));
        if let Some(secs) = self.retry_after {
            body.insert("retry_after".into(), Value::from(secs));
        }
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        let message = e.to_string();
        match e {
            AccountError::Unauthorized(_) => ApiError::unauthorized(message),
            AccountError::RefreshReused => {
                ApiError::new(StatusCode::UNAUTHORIZED, e.code(), message)
            }
            AccountError::NotFound(_) => ApiError::not_found(message),
            AccountError::MfaAlreadyEnabled
            | AccountError::MfaNotEnrolling
            | AccountError::MfaConflict => ApiError::conflict(e.code(), message),
            AccountError::Invalid { field, problem } => ApiError::invalid_field(field, problem),
            AccountError::Locked { retry_after } => {
                let mut api = ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.code(), message);
                api.retry_after = Some(retry_after);
                api
            }
            AccountError::Internal(_) => ApiError::internal(message),
            AccountError::Unavailable(_) => ApiError::unavailable(message),
        }
    }
}

impl From<PermissionError> for ApiError {
    fn from(e: PermissionError) -> ApiError {
        let message = e.to_string();
        match e {
            PermissionError::Denied(_) => ApiError::forbidden(message),
            PermissionError::NoRelationship => ApiError::not_found(message),
            PermissionError::Conflict(_) => ApiError::conflict(e.code(), message),
            PermissionError::Disabled | PermissionError::Storage(_) => {
                ApiError::unavailable(message)
            }
        }
    }
}

impl From<ProgramError> for ApiError {
    fn from(e: ProgramError) -> ApiError {
        let message = e.to_string();
        let status = match &e {
            ProgramError::Invalid { field, problem } => {
                return ApiError::invalid_field(field, problem.clone());
            }
            ProgramError::NotFound(_)
            | ProgramError::NoSuchItem(_)
            | ProgramError::NotAReview(_)
            | ProgramError::NoOverride => StatusCode::NOT_FOUND,
            ProgramError::Forbidden(_) | ProgramError::NotEntitled => StatusCode::FORBIDDEN,
            ProgramError::NotFree => StatusCode::PAYMENT_REQUIRED,
            ProgramError::UnsupportedPrice(_)
            | ProgramError::NotPublished
            | ProgramError::AlreadyEntitled
            | ProgramError::NotRefundable
            | ProgramError::PlanUnavailable
            | ProgramError::AlreadySubscribed
            | ProgramError::NotPayable
            | ProgramError::NoPayoutAccount => StatusCode::CONFLICT,
            ProgramError::BadSignature(_)
            | ProgramError::BadEvent(_)
            | ProgramError::BadPeriod(_) => StatusCode::BAD_REQUEST,
            ProgramError::PaymentRefused(_) => StatusCode::BAD_GATEWAY,
            ProgramError::PaymentsDisabled | ProgramError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError::new(status, e.code(), message)
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> ApiError {
        let message = e.to_string();
        match e {
            MediaError::Forbidden(_) => ApiError::forbidden(message),
            MediaError::TooLarge(_) => ApiError::too_large(message),
            MediaError::Invalid { field, problem } => ApiError::invalid_field(field, problem),
            MediaError::Rejected { code, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            MediaError::NotFound(_) => ApiError::not_found(message),
            MediaError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            MediaError::QuotaExceeded { used, quota, .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", message)
                    .with("used_bytes", used)
                    .with("quota_bytes", quota)
            }
            MediaError::Internal(_) => ApiError::internal(message),
            MediaError::Busy {
                retry_after_secs, ..
            } => ApiError::busy(retry_after_secs, message),
            MediaError::Unavailable(_) => ApiError::unavailable(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_headers() {
        let e = ApiError::busy(7, "queue full").with("queue", 12);
        assert_eq!(
            e.body(),
            serde_json::json!({"error": "busy", "message": "queue full", "retry_after": 7, "queue": 12})
        );
        assert!(e.is_retryable());
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "7");

        let v = ApiError::invalid_field("filename", "empty");
        assert_eq!(v.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v.body()["fields"]["filename"], "empty");
        assert_eq!(ApiError::checksum_mismatch("x").status.as_u16(), 460);
        assert!(!ApiError::not_found("x").is_retryable());
    }

    #[test]
    fn service_errors() {
        let e = ApiError::from(AccountError::Locked { retry_after: 30 });
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            e.body(),
            serde_json::json!({"error": "rate_limit_exceeded", "message": "too many failed sign-ins; try again later", "retry_after": 30})
        );
        let e = ApiError::from(AccountError::invalid("email", "empty"));
        assert_eq!(e, ApiError::invalid_field("email", "empty"));
        let e = ApiError::from(AccountError::RefreshReused);
        assert_eq!(
            (e.status.as_u16(), e.code.as_ref()),
            (401, "refresh_reused")
        );
        let e = ApiError::from(AccountError::MfaNotEnrolling);
        assert_eq!(
            (e.status.as_u16(), e.code.as_ref()),
            (409, "mfa_not_enrolling")
        );

        let e = ApiError::from(MediaError::busy(4));
        assert_eq!((e.status.as_u16(), e.retry_after), (503, Some(4)));
        assert!(e.is_retryable());
        let e = ApiError::from(MediaError::rejected("infected", "no"));
        assert_eq!(
            (e.status.as_u16(), e.code.as_ref(), e.message.as_str()),
            (422, "infected", "no")
        );
        assert!(!e.is_retryable());

        let e = ApiError::from(PermissionError::NoRelationship);
        assert_eq!(e, ApiError::not_found("no such relationship of yours"));
        let e = ApiError::from(PermissionError::Conflict("already".into()));
        assert_eq!(e, ApiError::conflict("conflict", "already"));
    }
}
