//! [`PermissionError`]: why a permission question or a change of the
//! facts (relationships, grants, profiles) was refused or failed, each with
//! its stable error code ([`PermissionError::code`], the `"error"` of the
//! JSON body) and a human message (its `Display`). The server maps each to
//! its HTTP status (server/src/http/error.rs).

use chalktalk_actors::store::StoreError;

use super::decide::{Decision, Why};
use super::facts::FactsError;

/// A refused or failed permission operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PermissionError {
    /// `forbidden` (403): the matrix says no; the message is the reason.
    #[error("{}", .0.message())]
    Denied(Why),
    /// `not_found` (404): no such relationship of the caller's.
    #[error("no such relationship of yours")]
    NoRelationship,
    /// `conflict` (409): the relationship is not in a state that allows
    /// this (already invited, not pending, ...).
    #[error("{0}")]
    Conflict(String),
    /// `unavailable` (503): the node keeps no relationships (no key-value
    /// store).
    #[error("this node keeps no relationships (no key-value store)")]
    Disabled,
    /// `unavailable` (503): storage failed; retry later.
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
}

impl PermissionError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PermissionError::Denied(_) => "forbidden",
            PermissionError::NoRelationship => "not_found",
            PermissionError::Conflict(_) => "conflict",
            PermissionError::Disabled | PermissionError::Storage(_) => "unavailable",
        }
    }
}

impl From<FactsError> for PermissionError {
    fn from(e: FactsError) -> PermissionError {
        match e {
            FactsError::Store(e) => PermissionError::Storage(e),
            FactsError::Disabled => PermissionError::Disabled,
            FactsError::NotFound => PermissionError::NoRelationship,
            FactsError::Conflict(m) => PermissionError::Conflict(m),
        }
    }
}

impl Decision {
    /// `Ok` if allowed, else [`PermissionError::Denied`] with the reason.
    pub fn require(self) -> Result<(), PermissionError> {
        if self.allowed() {
            Ok(())
        } else {
            Err(PermissionError::Denied(self.why()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = PermissionError::from(FactsError::NotFound);
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("not_found", "no such relationship of yours")
        );
        let e = PermissionError::from(FactsError::Disabled);
        assert_eq!(e.code(), "unavailable");
        assert_eq!(e.to_string(), FactsError::Disabled.to_string());
        assert!(Decision::Allow(Why::Owner).require().is_ok());
        let e = Decision::Deny(Why::Owner).require().unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("forbidden", Why::Owner.message())
        );
    }
}
