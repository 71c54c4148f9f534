//! Tokens that must be refused (forged, expired, `alg: none`, HS/RS
//! confusion, wrong issuer or audience) on REST and WebSocket alike, and an
//! external identity provider: RS256/ES256 ID tokens verified against a
//! JWKS document served by this test on 127.0.0.1, fetched again when a
//! token names an unknown key id.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::accounts::helpers::{der, pem};
use crate::common::SECRET;
use crate::common::TestServer;
use crate::common::api::{s, ws_refused};

const ISS: &str = "http://idp.test";
const AUD: &str = "chalktalk-web";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn hs(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("encode")
}

fn local_claims(sub: &str, exp: u64, aud: &str) -> Value {
    json!({"sub": sub, "role": "athlete", "iat": now(), "exp": exp,
           "iss": "chalktalk", "aud": aud})
}

/// Every way of presenting a bad access token is 401 on REST and refused at
/// the WebSocket hello.
async fn refused_everywhere(n: &TestServer, token: &str, what: &str) -> Value {
    let r = n.get("/api/v1/me", Some(token)).await;
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    ws_refused(&n.url, token).await;
    r.json()
}

#[tokio::test]
async fn forged_expired_none_confused_and_misaddressed_tokens_are_refused() {
    let n = TestServer::start().await;
    let t = n.athlete("victim@example.com", "phone").await;
    let good = s(&t, "access_token");
    assert_eq!(n.get("/api/v1/me", Some(&good)).await.status, 200);
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&B64.decode(parts[1]).expect("b64")).expect("claims");

    // Forged: another user's id under the original signature.
    claims["sub"] = "someone-else".into();
    claims["plan"] = "admin".into();
    let forged_payload = B64.encode(claims.to_string());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    refused_everywhere(&n, &forged, "forged").await;

    // `alg: none` with no signature.
    let none_header = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    refused_everywhere(&n, &format!("{none_header}.{forged_payload}."), "none").await;
    refused_everywhere(
        &n,
        &format!("{none_header}.{}.", parts[1]),
        "none, real claims",
    )
    .await;

    // Expired (well past the leeway), signed with the real secret.
    let exp = refused_everywhere(
        &n,
        &hs(
            &local_claims("victim", now() - 3600, "chalktalk"),
            SECRET.as_bytes(),
        ),
        "expired",
    )
    .await;
    assert_eq!(exp["error"], "token_expired");

    // Wrong audience and wrong issuer, real secret.
    let aud = hs(
        &local_claims("victim", now() + 600, "another-service"),
        SECRET.as_bytes(),
    );
    refused_everywhere(&n, &aud, "audience").await;
    let mut iss = local_claims("victim", now() + 600, "chalktalk");
    iss["iss"] = "evil".into();
    refused_everywhere(&n, &hs(&iss, SECRET.as_bytes()), "issuer").await;

    // Signed with another secret.
    let other = hs(
        &local_claims("victim", now() + 600, "chalktalk"),
        b"another-secret-another-secret-xx",
    );
    refused_everywhere(&n, &other, "wrong key").await;

    // RS256 with a key of ours the server never trusted for access tokens,
    // and HS256 keyed with a public key (the classic HS/RS confusion).
    let rs = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &local_claims("victim", now() + 600, "chalktalk"),
        &EncodingKey::from_rsa_der(&der("rsa1.pem")),
    )
    .expect("encode");
    refused_everywhere(&n, &rs, "rs256").await;
    let confused = hs(
        &local_claims("victim", now() + 600, "chalktalk"),
        pem("rsa1.pub.pem").as_bytes(),
    );
    refused_everywhere(&n, &confused, "hs keyed by a public key").await;

    // The real token still works: none of this locked anyone out.
    assert_eq!(n.get("/api/v1/me", Some(&good)).await.status, 200);
}

/// A JWKS endpoint on 127.0.0.1 whose key set the test can change, counting
/// fetches.
struct Idp {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

fn key(pem_file: &str, alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_der(&der(pem_file)),
        _ => EncodingKey::from_rsa_der(&der(pem_file)),
    }
}

fn jwk(pem_file: &str, alg: Algorithm, kid: &str) -> Jwk {
    let key = key(pem_file, alg);
    let mut j = Jwk::from_encoding_key(&key, alg).expect("jwk");
    j.common.key_id = Some(kid.into());
    j
}

impl Idp {
    async fn start(keys: Vec<Jwk>) -> Idp {
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (k, f) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (k, f) = (k.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let set = JwkSet {
                        keys: k.lock().expect("keys").clone(),
                    };
                    axum::Json(set)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Idp {
            url: format!("http://{addr}/jwks.json"),
            keys,
            fetches,
        }
    }
}

fn id_token(pem_file: &str, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let key = key(pem_file, alg);
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, &key).expect("encode")
}

fn idc(sub: &str, email: Option<&str>) -> Value {
    let mut c = json!({"iss": ISS, "aud": AUD, "sub": sub, "iat": now(), "exp": now() + 300});
    if let Some(e) = email {
        c["email"] = e.into();
        c["email_verified"] = true.into();
    }
    c
}

async fn external(n: &TestServer, token: &str) -> crate::common::client::Resp {
    n.post(
        "/api/v1/auth/external",
        None,
        json!({"id_token": token, "device": "web"}),
    )
    .await
}

#[tokio::test]
async fn external_identity_provider_tokens_map_to_local_accounts() {
    let idp = Idp::start(vec![
        jwk("rsa1.pem", Algorithm::RS256, "r1"),
        jwk("ec1.pem", Algorithm::ES256, "e1"),
    ])
    .await;
    let url = idp.url.clone();
    let n = TestServer::start_with(move |c| {
        let mut o = chalktalk_services::accounts::OidcConfig::new(ISS, AUD, &url);
        o.min_refresh = Duration::ZERO;
        c.accounts.oidc = Some(o);
    })
    .await;
    // A local account with the email the provider will claim.
    assert_eq!(n.register("taken@example.com", "athlete").await.status, 202);

    // RS256: a new local athlete; the same subject maps to the same account.
    let tok = id_token(
        "rsa1.pem",
        Algorithm::RS256,
        "r1",
        &idc("ext-1", Some("New@Example.com")),
    );
    let r = external(&n, &tok).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let me = n
        .get("/api/v1/me", Some(&s(&r.json(), "access_token")))
        .await
        .json();
    assert_eq!(me["external"], true);
    assert_eq!(me["role"], "athlete");
    assert_eq!(me["email"], "new@example.com");
    let again = external(&n, &tok).await;
    let me2 = n
        .get("/api/v1/me", Some(&s(&again.json(), "access_token")))
        .await
        .json();
    assert_eq!(me2["id"], me["id"]);
    // The provider's token is not one of our access tokens.
    assert_eq!(n.get("/api/v1/me", Some(&tok)).await.status, 401);

    // ES256; an email already registered here is not linked automatically.
    let tok = id_token(
        "ec1.pem",
        Algorithm::ES256,
        "e1",
        &idc("ext-2", Some("taken@example.com")),
    );
    let r = external(&n, &tok).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let me3 = n
        .get("/api/v1/me", Some(&s(&r.json(), "access_token")))
        .await
        .json();
    assert_ne!(me3["email"], "taken@example.com");
    assert_ne!(me3["id"], me["id"]);

    // Refused: wrong issuer, audience, expired, signed by a key not in the
    // set under a known kid, HS256 keyed with the provider's public key,
    // `none`.
    let mut bad_iss = idc("ext-3", None);
    bad_iss["iss"] = "http://evil.test".into();
    let mut bad_aud = idc("ext-3", None);
    bad_aud["aud"] = "someone-else".into();
    let mut expired = idc("ext-3", None);
    expired["exp"] = (now() - 3600).into();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("r1".into());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &idc("ext-3", None),
        &EncodingKey::from_secret(pem("rsa1.pub.pem").as_bytes()),
    )
    .expect("encode");
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","kid":"r1"}"#),
        B64.encode(idc("ext-3", None).to_string())
    );
    let cases = [
        (
            "issuer",
            id_token("rsa1.pem", Algorithm::RS256, "r1", &bad_iss),
        ),
        (
            "audience",
            id_token("rsa1.pem", Algorithm::RS256, "r1", &bad_aud),
        ),
        (
            "expired",
            id_token("rsa1.pem", Algorithm::RS256, "r1", &expired),
        ),
        (
            "other key",
            id_token("rsa2.pem", Algorithm::RS256, "r1", &idc("ext-3", None)),
        ),
        ("hs/rs", confused),
        ("none", none),
        ("garbage", "a.b.c".to_string()),
    ];
    for (what, t) in cases {
        let r = external(&n, &t).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "unauthorized", "{what}");
    }

    // Key rotation: a token with an unknown kid makes the node fetch the
    // set again; once the provider publishes the key, it is accepted.
    let rotated = id_token("rsa2.pem", Algorithm::RS256, "r2", &idc("ext-4", None));
    let before = idp.fetches.load(Ordering::SeqCst);
    assert_eq!(external(&n, &rotated).await.status, 401);
    assert!(
        idp.fetches.load(Ordering::SeqCst) > before,
        "unknown kid refetches"
    );
    idp.keys
        .lock()
        .expect("keys")
        .push(jwk("rsa2.pem", Algorithm::RS256, "r2"));
    let r = external(&n, &rotated).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn external_sign_in_without_a_provider_is_a_clear_error() {
    let n = TestServer::start().await;
    let r = external(&n, "a.b.c").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("identity provider"))
    );
    let r = n.post("/api/v1/auth/external", None, json!({})).await;
    assert_eq!(r.status, 422);
}
