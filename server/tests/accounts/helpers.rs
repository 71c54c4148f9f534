//! Helpers of the account tests: a node with accounts (`Node`), JSON
//! requests over the raw HTTP client, sign-up/sign-in shortcuts, TOTP codes
//! of the current step, WebSocket connections with a given token, and test
//! signing keys (tests/accounts/keys: throwaway keys made for these tests
//! with openssl, never used anywhere else).
#![allow(dead_code)]

use std::net::SocketAddr;

use base64::Engine;
use chalktalk::config::Config;
use chalktalk_protocol::ErrorCode;
use chalktalk_protocol::client::{Client, ClientError, ClientOptions};
use serde_json::Value;

use crate::common::TestServer;
use crate::common::api::Api;
pub use crate::common::api::PASSWORD;
use crate::common::client::Resp;

/// A node with accounts.
pub struct Node {
    pub s: TestServer,
    pub addr: SocketAddr,
}

impl Node {
    pub async fn start() -> Node {
        Node::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Node {
        let s = TestServer::start_with(tweak).await;
        let addr = s.running.as_ref().expect("running").addr;
        Node { s, addr }
    }

    /// Stops the node and starts a new one on the same data directory.
    pub async fn restart(&mut self) {
        self.s.restart().await;
        self.addr = self.s.running.as_ref().expect("running").addr;
    }

    /// The node's REST API (tests/common/api.rs).
    pub fn api(&self) -> Api {
        Api(self.addr)
    }

    pub async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        self.api().req(method, path, token, &[], body).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.api().post(path, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.api().get(path, Some(token)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.api().delete(path, Some(token)).await
    }

    pub async fn register(&self, email: &str, role: &str) -> Resp {
        self.api().register(email, role).await
    }

    pub async fn sign_in(&self, email: &str, password: &str, device: &str) -> Resp {
        self.api().sign_in(email, password, device).await
    }

    /// Registers an athlete and signs in: the token answer.
    pub async fn athlete(&self, email: &str, device: &str) -> Value {
        self.api().athlete(email, device).await
    }

    pub fn ws_url(&self) -> String {
        self.s.url.clone()
    }
}

pub fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
        .to_string()
}

/// Connects a WebSocket with `token`.
pub async fn ws(url: &str, token: &str, device: &str) -> Result<Client, ClientError> {
    Client::connect(url, ClientOptions::new(token, device)).await
}

/// Asserts a WebSocket hello with `token` is refused as unauthorized.
pub async fn ws_refused(url: &str, token: &str) {
    match ws(url, token, "dev").await {
        Err(ClientError::Server { code, .. }) => assert!(
            matches!(code, ErrorCode::Unauthorized | ErrorCode::TokenExpired),
            "{code:?}"
        ),
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, Some(4001)),
        Err(e) => panic!("unexpected {e:?}"),
        Ok(_) => panic!("hello accepted"),
    }
}

/// RFC 4648 base32 decoding (the TOTP secret).
pub fn unbase32(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u64, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {c}"),
        };
        buf = (buf << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// The TOTP code of `secret` (base32) for the step `offset` steps from now.
pub fn code(secret_b32: &str, offset: i64) -> String {
    let secret = unbase32(secret_b32);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let step = (now / 30) as i64 + offset;
    format!(
        "{:06}",
        chalktalk_services::accounts::totp::hotp(&secret, step as u64)
    )
}

/// The DER inside a PEM file of tests/accounts/keys.
pub fn der(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/accounts/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("pem base64")
}

pub fn pem(name: &str) -> String {
    let path = format!("{}/tests/accounts/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
