//! chalktalk: the server crate. Configuration, the node's shared state
//! ([`app`]), the WebSocket gateway, every HTTP route (accounts,
//! permissions, uploads and media links, programs and payments) with the one API error type
//! (`http::ApiError`), the OpenAPI document and the pieces the command-line
//! entry points (src/main.rs) call. The business logic behind them
//! (accounts, auth, permissions, the media service) is the
//! chalktalk-services crate.

pub mod account_cli;
pub mod accounts;
pub mod app;
pub mod config;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod migrate;
pub mod openapi;
pub mod ops;
pub mod payments_cli;
pub mod permissions;
pub mod programs;
pub mod ratelimit;
pub mod server;
pub mod store_copy;
pub mod webapp;
