//! Accounts, sign-in, sessions and tokens (issue 4). See [`model`] for the
//! stored record shared with the permission checks.

pub mod model;

pub use model::{Account, Plan, Subscription, Tier};
