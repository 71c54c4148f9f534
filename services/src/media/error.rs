//! [`MediaError`]: why the media service refused or could not take an
//! upload, each with its stable error code ([`MediaError::code`], the
//! `"error"` of the JSON body) and a human message (its `Display`). The
//! server maps each to its HTTP status (server/src/http/error.rs).

use std::borrow::Cow;

/// A refused or failed upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// `forbidden` (403): e.g. a voice-over for a room the uploader is not
    /// a member of.
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// `too_large` (413): above the size limit of its kind.
    #[error("{0}")]
    TooLarge(String),
    /// `validation_failed` (422) for one field of the upload.
    #[error("invalid fields: {field}")]
    Invalid {
        field: &'static str,
        problem: Cow<'static, str>,
    },
    /// 422 with the code of what is wrong with the file: `infected` (the
    /// malware scanner said so), `corrupt` (the validator crashed or took
    /// too long) or the validator's own code (`too_long`, `no_video`, ...).
    #[error("{message}")]
    Rejected {
        code: Cow<'static, str>,
        message: String,
    },
    /// `not_found` (404): no such asset of yours.
    #[error("{0}")]
    NotFound(String),
    /// `conflict` (409): e.g. deleting an asset that is still processing.
    #[error("{0}")]
    Conflict(String),
    /// `quota_exceeded` (413): the upload would take the user's storage
    /// (bytes) above their quota.
    #[error("{message}")]
    QuotaExceeded {
        used: u64,
        quota: u64,
        message: String,
    },
    /// `internal` (500): a server-side failure.
    #[error("{0}")]
    Internal(String),
    /// `busy` (503): the encoders' queue is full; retry after
    /// `retry_after_secs` (the upload is kept for that retry).
    #[error("{message}")]
    Busy {
        retry_after_secs: u64,
        message: Cow<'static, str>,
    },
    /// `unavailable` (503): storage, the scanner or a worker failed; retry
    /// later.
    #[error("{0}")]
    Unavailable(Cow<'static, str>),
}

impl MediaError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            MediaError::Forbidden(_) => "forbidden",
            MediaError::TooLarge(_) => "too_large",
            MediaError::Invalid { .. } => "validation_failed",
            MediaError::Rejected { code, .. } => code,
            MediaError::NotFound(_) => "not_found",
            MediaError::Conflict(_) => "conflict",
            MediaError::QuotaExceeded { .. } => "quota_exceeded",
            MediaError::Internal(_) => "internal",
            MediaError::Busy { .. } => "busy",
            MediaError::Unavailable(_) => "unavailable",
        }
    }

    /// True for errors after which the same request may succeed later
    /// (`internal`, `busy`, `unavailable`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MediaError::Internal(_) | MediaError::Busy { .. } | MediaError::Unavailable(_)
        )
    }

    /// 503 `busy`: the encoders are busy.
    pub fn busy(retry_after_secs: u64) -> MediaError {
        MediaError::Busy {
            retry_after_secs,
            message: "the encoders are busy; try again later".into(),
        }
    }

    /// 422 with `code`.
    pub fn rejected(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> MediaError {
        MediaError::Rejected {
            code: code.into(),
            message: message.into(),
        }
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> MediaError {
        MediaError::Unavailable(message.into())
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> MediaError {
        MediaError::Internal(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_retries() {
        let e = MediaError::busy(3);
        assert_eq!((e.code(), e.is_retryable()), ("busy", true));
        assert_eq!(e.to_string(), "the encoders are busy; try again later");
        let e = MediaError::rejected("infected", "the malware scanner rejected this file");
        assert_eq!((e.code(), e.is_retryable()), ("infected", false));
        let e = MediaError::Invalid {
            field: "room",
            problem: "missing".into(),
        };
        assert_eq!(e.to_string(), "invalid fields: room");
    }
}
