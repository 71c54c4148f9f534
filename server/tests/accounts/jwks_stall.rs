//! A slow identity provider: while one JWKS fetch hangs (a token naming an
//! unknown `kid`, e.g. an attacker's), tokens of keys already cached are
//! still verified; the fetch does not hold the key cache.

use std::time::Duration;

use chalktalk_services::accounts::OidcConfig;
use chalktalk_services::accounts::oidc::Oidc;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::accounts::helpers::der;

/// Reads one HTTP request head.
async fn read_head(s: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_jwks_fetch_does_not_stall_known_keys() {
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&der("rsa1.pem"));
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some("r1".into());
    let body = serde_json::to_vec(&JwkSet { keys: vec![jwk] }).expect("json");
    // First request: the JWKS. Later ones: read, report, never answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (hung_tx, mut hung_rx) = mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        let mut n = 0;
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            n += 1;
            read_head(&mut s).await;
            if n == 1 {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            } else {
                let _ = hung_tx.send(());
                held.push(s);
            }
        }
    });
    let mut cfg = OidcConfig::new("http://idp.test", "aud", &format!("http://{addr}/jwks"));
    cfg.min_refresh = Duration::ZERO;
    let oidc = std::sync::Arc::new(Oidc::new(cfg).expect("oidc"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = json!({"iss": "http://idp.test", "aud": "aud", "sub": "s1", "exp": now + 300});
    let token = |kid: &str| {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, &key).expect("encode")
    };
    let known = token("r1");
    assert_eq!(oidc.verify(&known).await.expect("cached now").sub, "s1");

    // An unknown kid: a fetch that hangs (until its 5 s timeout).
    let o = oidc.clone();
    let unknown = token("nobody");
    let stuck = tokio::spawn(async move { o.verify(&unknown).await });
    tokio::time::timeout(Duration::from_secs(10), hung_rx.recv())
        .await
        .expect("the second fetch reached the provider");
    // The known key answers now, not after the hanging fetch (the bound
    // is well below the 5 s fetch timeout the old cache lock imposed).
    let fast = tokio::time::timeout(Duration::from_secs(2), oidc.verify(&known)).await;
    assert!(
        matches!(fast, Ok(Ok(ref c)) if c.sub == "s1"),
        "known key stalled behind the JWKS fetch: {fast:?}"
    );
    assert!(!stuck.is_finished(), "the fetch is still hanging");
    assert!(stuck.await.expect("join").is_err(), "unknown kid refused");
}
