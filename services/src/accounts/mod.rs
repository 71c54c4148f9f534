//! Accounts, sign-in, sessions and tokens (issue 4). See [`model`] for the
//! stored record shared with the permission checks.
//!
//! Module map: [`password`] (argon2id, email and password rules), [`totp`]
//! (RFC 6238, recovery codes), `store` (account records in the key-value
//! port), [`sessions`] (sign-in sessions and rotating refresh tokens),
//! [`revocations`] (closing the WebSockets of revoked sessions; the list
//! itself is `chalktalk_adapters::revocations`),
//! `throttle` (brute-force locks), [`oidc`]
//! (an external identity provider's tokens via its JWKS), [`service`] (the
//! operations) and [`error`] (what they answer on failure: [`AccountError`]).
//! The REST routes and the guard that authenticates a route's caller are
//! the server's (its `accounts` module).
//! The wire contract is docs/PROTOCOL.md, "Accounts and sessions".

pub mod error;
mod external;
pub mod mfa;
pub mod model;
pub mod oidc;
pub mod password;
pub mod revocations;
pub mod service;
pub mod sessions;
mod store;
#[cfg(test)]
mod store_tests;
mod throttle;
pub mod totp;

use std::time::Duration;

pub use chalktalk_adapters::revocations::{
    EmbeddedRevocations, RedisRevocations, RevocationError, Revocations,
};
pub use error::AccountError;
pub use mfa::{Confirmed, Enrollment};
pub use model::{Account, Plan, Subscription, Tier};
pub use oidc::OidcConfig;
pub use revocations::{SidIndex, spawn_closer};
pub use service::{Accounts, SignIn, Tokens, device_name, requires_mfa};

/// Settings of accounts and sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountsConfig {
    /// Lifetime of access tokens (default 15 min); also how long a
    /// revocation is remembered.
    pub access_ttl: Duration,
    /// A session unused (not refreshed) this long ends (default 30 days).
    pub refresh_ttl: Duration,
    /// Lifetime of the token between password and TOTP code (default 5 min).
    pub challenge_ttl: Duration,
    /// Failed sign-ins of one email (within `failure_window`) that lock it
    /// (default 5).
    pub lock_after: u32,
    /// Failed sign-ins from one IP address that lock it (default 50).
    pub ip_lock_after: u32,
    /// How long a lock lasts (default 15 min).
    pub lock_for: Duration,
    /// Failures older than this are forgotten (default 15 min).
    pub failure_window: Duration,
    /// argon2id memory in KiB and passes (default OWASP: 19456, 2).
    pub argon2_m_kib: u32,
    pub argon2_t: u32,
    /// An external identity provider, if configured.
    pub oidc: Option<OidcConfig>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            challenge_ttl: Duration::from_secs(5 * 60),
            lock_after: 5,
            ip_lock_after: 50,
            lock_for: Duration::from_secs(15 * 60),
            failure_window: Duration::from_secs(15 * 60),
            argon2_m_kib: 19 * 1024,
            argon2_t: 2,
            oidc: None,
        }
    }
}
