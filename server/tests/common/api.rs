//! REST helpers and the one set of account helpers of the tests: JSON
//! requests over the raw HTTP client (bearer token and extra headers), the
//! account shortcuts every suite needs (register, sign in, a signed-in
//! athlete, the tokens of a sign-in), and WebSocket hellos with a token.

use std::net::SocketAddr;

use chalktalk_protocol::ErrorCode;
use chalktalk_protocol::client::{Client, ClientError, ClientOptions};
use serde_json::{Value, json};

use super::client::{Resp, send};

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery staple";

/// The REST API of a node at `addr`.
#[derive(Debug, Clone, Copy)]
pub struct Api(pub SocketAddr);

impl Api {
    /// `method path` with an optional bearer token, extra headers and a
    /// body (sent as `application/json`).
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if let Some(t) = token {
            headers.push(("Authorization", format!("Bearer {t}")));
        }
        headers.extend(extra.iter().cloned());
        send(self.0, method, path, &headers, body.unwrap_or_default()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.req("GET", path, token, &[], None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.req(
            "POST",
            path,
            token,
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.req("DELETE", path, token, &[], None).await
    }

    /// `POST /api/v1/auth/register` with [`PASSWORD`].
    pub async fn register(&self, email: &str, role: &str) -> Resp {
        self.post(
            "/api/v1/auth/register",
            None,
            json!({"email": email, "password": PASSWORD, "role": role}),
        )
        .await
    }

    /// `POST /api/v1/auth/signin`.
    pub async fn sign_in(&self, email: &str, password: &str, device: &str) -> Resp {
        self.post(
            "/api/v1/auth/signin",
            None,
            json!({"email": email, "password": password, "device": device}),
        )
        .await
    }

    /// Registers an athlete and signs in from `device`: the token answer
    /// (`access_token`, `refresh_token`, ...).
    pub async fn athlete(&self, email: &str, device: &str) -> Value {
        let r = self.register(email, "athlete").await;
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        let r = self.sign_in(email, PASSWORD, device).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// [`Api::athlete`] as [`Tokens`].
    pub async fn athlete_tokens(&self, email: &str, device: &str) -> Tokens {
        Tokens::of(&self.athlete(email, device).await)
    }

    /// Signs in with [`PASSWORD`] from `device`: the tokens.
    pub async fn sign_in_tokens(&self, email: &str, device: &str) -> Tokens {
        let r = self.sign_in(email, PASSWORD, device).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        Tokens::of(&r.json())
    }
}

/// What a sign-in answers.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub sid: String,
}

impl Tokens {
    pub fn of(v: &Value) -> Tokens {
        Tokens {
            access: s(v, "access_token"),
            refresh: s(v, "refresh_token"),
            sid: s(v, "session"),
        }
    }
}

/// The string `key` of a JSON answer (panics when it is missing).
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
