//! The HTTP side of accounts (the service itself is
//! `chalktalk_services::accounts`): `routes` (REST under `/api/v1`, with
//! their request and response bodies in `bodies`) and [`guard`] (how any
//! route authenticates its caller, revocation and MFA state included).
//! The wire contract is docs/PROTOCOL.md, "Accounts and sessions".

mod bodies;
pub mod guard;
mod routes;

pub use guard::{Caller, authenticate, authenticate_allowing_mfa_enrollment};
pub use routes::{JsonBody, MAX_JSON_BYTES, routes};
