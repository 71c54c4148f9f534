//! REST helpers shared by the tests: JSON requests over the raw HTTP client
//! (bearer token and extra headers), and the account shortcuts every suite
//! needs (register, sign in, a signed-in athlete).

use std::net::SocketAddr;

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
}
