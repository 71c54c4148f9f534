//! Tokens of an external identity provider (OpenID Connect ID tokens):
//! RS256 or ES256 only, verified with the provider's keys from its JWKS
//! document (fetched over plain HTTP by a tiny HTTP/1.1 client, cached,
//! fetched again when a token names an unknown `kid` or the cache is older
//! than `max_age`, at most once per `min_refresh`), issuer, audience and
//! expiry checked. `https://` JWKS URLs are refused at start: serve the
//! document through a local proxy or sidecar.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The provider.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    /// `http://host[:port]/path`.
    pub jwks_url: String,
    /// Least time between two fetches of the JWKS (default 30 s).
    pub min_refresh: Duration,
    /// Keys older than this are fetched again on use (default 1 h).
    pub max_age: Duration,
}

impl OidcConfig {
    pub fn new(issuer: &str, audience: &str, jwks_url: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: jwks_url.into(),
            min_refresh: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
        }
    }
}

/// Why an ID token was refused (the message is for logs and the client).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OidcError {
    #[error("invalid id_token: {0}")]
    Invalid(String),
    #[error("identity provider keys unavailable: {0}")]
    Keys(String),
}

/// The claims of a verified ID token that matter here.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<serde_json::Value>,
}

impl IdClaims {
    /// The email, if the provider says it is verified.
    pub fn verified_email(&self) -> Option<&str> {
        let verified = match &self.email_verified {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        self.email.as_deref().filter(|_| verified)
    }
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// Verifies ID tokens of one provider.
pub struct Oidc {
    cfg: OidcConfig,
    cache: Mutex<Cache>,
    /// Held for the duration of a JWKS fetch (one at a time).
    fetching: Mutex<()>,
}

/// `(host:port, path)` of an `http://` URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// JWKS URLs are supported")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if hostport.is_empty() || hostport.contains('@') {
        return Err("no host in the JWKS URL".into());
    }
    let hostport = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    Ok((hostport, path.to_string()))
}

/// GET over HTTP/1.1 (`Connection: close`), body of a 200 only.
async fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let (hostport, path) = split_url(url)?;
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(&hostport)
            .await
            .map_err(|e| e.to_string())?;
        let host = hostport.trim_end_matches(":80");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.take(MAX_JWKS_BYTES as u64 + 16 * 1024)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    };
    let raw = tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| "timeout".to_string())??;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let body = &raw[end + 4..];
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("HTTP status {status}"));
    }
    if head.contains("transfer-encoding: chunked") {
        return dechunk(body);
    }
    Ok(body.to_vec())
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size_txt = String::from_utf8_lossy(&b[..nl]);
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        b = &b[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        // Checked: a hostile size (up to usize::MAX) must not overflow.
        if size > MAX_JWKS_BYTES - out.len() || b.len() < size.saturating_add(2) {
            return Err("truncated or oversized chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// The usable signing keys of a JWKS document, by kid.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| format!("bad JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            _ => continue,
        };
        if let Some(declared) = jwk.common.key_algorithm
            && Algorithm::try_from(declared).ok() != Some(alg)
        {
            continue;
        }
        match DecodingKey::from_jwk(jwk) {
            Ok(k) => {
                keys.insert(kid.clone(), (k, alg));
            }
            Err(e) => tracing::warn!(%kid, %e, "unusable key in the JWKS"),
        }
    }
    Ok(keys)
}

impl Oidc {
    /// Checks the configuration (the JWKS is fetched on first use).
    pub fn new(cfg: OidcConfig) -> Result<Oidc, OidcError> {
        split_url(&cfg.jwks_url).map_err(OidcError::Keys)?;
        Ok(Oidc {
            cfg,
            cache: Mutex::default(),
            fetching: Mutex::default(),
        })
    }

    /// The key `kid`, fetching the JWKS when it is unknown or stale (and
    /// the last fetch is older than `min_refresh`). The cache lock is never
    /// held across the fetch (up to [`FETCH_TIMEOUT`]): a token naming an
    /// unknown `kid` while the provider is slow does not stall tokens of
    /// known keys. Fetches are one at a time; waiters look again first.
    async fn key(&self, kid: &str) -> Result<Option<(DecodingKey, Algorithm)>, OidcError> {
        let needs_fetch = |c: &Cache| {
            let stale = c.fetched.is_none_or(|t| t.elapsed() >= self.cfg.max_age);
            let may_fetch = c
                .attempted
                .is_none_or(|t| t.elapsed() >= self.cfg.min_refresh);
            (stale || !c.keys.contains_key(kid)) && may_fetch
        };
        {
            let c = self.cache.lock().await;
            if !needs_fetch(&c) {
                return Ok(c.keys.get(kid).cloned());
            }
        }
        let _one_fetch = self.fetching.lock().await;
        {
            let mut c = self.cache.lock().await;
            if !needs_fetch(&c) {
                return Ok(c.keys.get(kid).cloned());
            }
            c.attempted = Some(Instant::now());
        }
        let fetched = http_get(&self.cfg.jwks_url)
            .await
            .and_then(|b| parse_jwks(&b));
        let mut c = self.cache.lock().await;
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched the identity provider's JWKS");
                c.keys = keys;
                c.fetched = Some(Instant::now());
            }
            Err(e) if c.keys.is_empty() => return Err(OidcError::Keys(e)),
            Err(e) => tracing::warn!(%e, "cannot refresh the JWKS; using cached keys"),
        }
        Ok(c.keys.get(kid).cloned())
    }

    /// Verifies `token`: alg RS256/ES256 with a known `kid`, signature,
    /// expiry, issuer and audience.
    pub async fn verify(&self, token: &str) -> Result<IdClaims, OidcError> {
        let bad = |m: &str| OidcError::Invalid(m.to_string());
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OidcError::Invalid(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(bad("only RS256 and ES256 tokens are accepted"));
        }
        let kid = header
            .kid
            .ok_or_else(|| bad("no kid in the token header"))?;
        let (key, alg) = self.key(&kid).await?.ok_or_else(|| bad("unknown key id"))?;
        if alg != header.alg {
            return Err(bad("the token's algorithm does not match its key"));
        }
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 30;
        let data = jsonwebtoken::decode::<IdClaims>(token, &key, &v)
            .map_err(|e| OidcError::Invalid(e.to_string()))?;
        if data.claims.sub.is_empty() || data.claims.sub.len() > 255 {
            return Err(bad("bad subject"));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_chunks() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/jwks").unwrap(),
            ("127.0.0.1:8080".into(), "/jwks".into())
        );
        assert_eq!(
            split_url("http://idp.example").unwrap(),
            ("idp.example:80".into(), "/".into())
        );
        assert!(split_url("https://idp.example/jwks").is_err());
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"9\r\nabc").is_err());
    }

    #[test]
    fn hostile_chunk_sizes_are_refused_not_panics() {
        // First chunk and a later one (out non-empty) of size usize::MAX.
        for body in [
            &b"ffffffffffffffff\r\nab\r\n0\r\n\r\n"[..],
            &b"2\r\nab\r\nffffffffffffffff\r\ncd\r\n0\r\n\r\n"[..],
            &b"2\r\nab\r\nfffffffffffffffe\r\ncd\r\n0\r\n\r\n"[..],
        ] {
            assert!(dechunk(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn jwks_keys() {
        let set = br#"{"keys":[{"kty":"oct","kid":"h","k":"AAAA"},{"kty":"EC","kid":"e","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let keys = parse_jwks(set).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["e"].1, Algorithm::ES256);
    }
}
