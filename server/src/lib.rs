//! chalktalk: the application crate. Configuration, the HTTP/WebSocket
//! gateway, accounts, permissions, the media service, auth and the pieces the
//! command-line entry points (src/main.rs) call.

pub mod account_cli;
pub mod accounts;
pub mod app;
pub mod auth;
pub mod binaries;
pub mod config;
pub mod gateway;
pub mod http;
pub mod media;
pub mod openapi;
pub mod permissions;
pub mod ratelimit;
pub mod server;
