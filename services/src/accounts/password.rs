//! Passwords and emails: argon2id hashing with the OWASP parameters
//! (19 MiB, 2 passes, 1 lane), a dummy verification for unknown emails so
//! sign-in takes as long whether or not the account exists, the password
//! rules and email normalisation. Hashing runs on the blocking pool, at
//! most `MAX_CONCURRENT` at once (each takes 19 MiB).

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Hashes computed at once by one node.
const MAX_CONCURRENT: usize = 4;

/// Why hashing failed (never the user's fault).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("no randomness: {0}")]
    Random(String),
}

/// argon2id hashing and verification with fixed parameters.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against for unknown emails.
    dummy: Arc<String>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Hasher(argon2id m={} t={})",
            self.params.m_cost(),
            self.params.t_cost()
        )
    }
}

impl Hasher {
    /// OWASP: argon2id, m = 19456 KiB, t = 2, p = 1.
    pub fn owasp() -> Result<Hasher, HashError> {
        Hasher::with_params(19 * 1024, 2)
    }

    /// Custom memory (KiB) and passes, one lane.
    pub fn with_params(m_kib: u32, t: u32) -> Result<Hasher, HashError> {
        let params = Params::new(m_kib, t, 1, None).map_err(|e| HashError::Hash(e.to_string()))?;
        let mut h = Hasher {
            params,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
            dummy: Arc::default(),
        };
        let mut pw = [0u8; 24];
        getrandom::fill(&mut pw).map_err(|e| HashError::Random(e.to_string()))?;
        h.dummy = Arc::new(h.hash_now(&hex(&pw))?);
        Ok(h)
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_now(&self, password: &str) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| HashError::Random(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Hash(e.to_string()))?;
        self.argon()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Hash(e.to_string()))
    }

    fn verify_now(&self, password: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            // The parameters come from the stored string; the comparison is
            // constant-time (argon2 uses `subtle`).
            Ok(parsed) => self
                .argon()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self.permits.acquire().await;
        let (me, pw) = (self.clone(), password.to_string());
        tokio::task::spawn_blocking(move || me.hash_now(&pw))
            .await
            .map_err(|e| HashError::Hash(e.to_string()))?
    }

    /// True if `password` matches `phc`. With `phc = None` (unknown email,
    /// or an account without a password) the dummy hash is verified and the
    /// answer is false: the same work either way.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> bool {
        let _permit = self.permits.acquire().await;
        let real = phc.filter(|p| !p.is_empty()).map(str::to_string);
        let (me, pw) = (self.clone(), password.to_string());
        tokio::task::spawn_blocking(move || match real {
            Some(phc) => me.verify_now(&pw, &phc),
            None => {
                let _ = me.verify_now(&pw, &me.dummy);
                false
            }
        })
        .await
        .unwrap_or(false)
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Trimmed and lowercased, or why it is not an email address.
pub fn normalise_email(raw: &str) -> Result<String, &'static str> {
    let e = raw.trim().to_lowercase();
    if e.is_empty() {
        return Err("required");
    }
    if e.len() > 254 {
        return Err("at most 254 characters");
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err("not an email address");
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local.chars().any(bad_char)
        || !labels_ok
    {
        return Err("not an email address");
    }
    Ok(e)
}

/// Minimum and maximum password length, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=128;

/// Why a password is refused (the rules: 12..=128 characters, not one
/// character repeated, not the email address).
pub fn check_password(password: &str, email: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !PASSWORD_CHARS.contains(&n) {
        return Err(format!(
            "must be {} to {} characters",
            PASSWORD_CHARS.start(),
            PASSWORD_CHARS.end()
        ));
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err("must not be one character repeated".into());
    }
    let p = password.trim().to_lowercase();
    if !email.is_empty() && (p == email || email.split('@').next() == Some(p.as_str())) {
        return Err("must not be your email address".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalise_email("  Ann.Lee@Example.COM ").unwrap(),
            "ann.lee@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "a b@x.com",
            "ann@x",
            "ann@-x.com",
            "a..b@x.com",
            "a@x..com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password("correct horse battery", "a@x.com").is_ok());
        assert!(check_password("short", "a@x.com").is_err());
        assert!(check_password(&"x".repeat(129), "a@x.com").is_err());
        assert!(check_password(&"a".repeat(20), "a@x.com").is_err());
        assert!(check_password("ANNLEE@EXAMPLE.COM", "annlee@example.com").is_err());
        assert!(check_password("ünïcødé-pässwörd", "a@x.com").is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::with_params(1024, 1).unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        assert!(h.verify("correct horse battery", Some(&phc)).await);
        assert!(!h.verify("wrong horse battery", Some(&phc)).await);
        assert!(!h.verify("correct horse battery", None).await);
        assert!(!h.verify("x", Some("not a phc")).await);
        assert!(
            Hasher::owasp()
                .unwrap()
                .dummy
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
    }
}
