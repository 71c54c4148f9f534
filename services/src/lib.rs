//! chalktalk-services: the business logic behind the server's routes and
//! gateway, without HTTP. [`accounts`] (sign-in, sessions, TOTP, external
//! identities), [`auth`] (the tokens every request and connection
//! carries), [`permissions`] (who may do what), [`media`] (uploads,
//! encoding jobs, signed links) and [`programs`] (training programs,
//! entitlements, Stripe checkout and webhooks). Each service answers with
//! its own error type ([`AccountError`], [`PermissionError`],
//! [`MediaError`], [`ProgramError`]), carrying a
//! stable error code and a human message; the server maps them to HTTP
//! statuses. [`binaries`] is how a deployment's binaries find each other.

pub mod accounts;
pub mod auth;
pub mod binaries;
pub mod media;
pub mod permissions;
pub mod programs;

pub use accounts::AccountError;
pub use media::MediaError;
pub use permissions::PermissionError;
pub use programs::ProgramError;
