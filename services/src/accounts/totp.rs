//! TOTP second factor (RFC 6238 over RFC 4226): HMAC-SHA1, 6 digits,
//! 30-second steps, one step of drift either way. The caller keeps the last
//! step used and refuses codes of that step or earlier, so a code works
//! once. Also the base32 secret, the `otpauth://` URI authenticator apps
//! scan, and single-use recovery codes (stored as sha256 hex).

use hmac::{Hmac, Mac};
use sha2::Digest;

/// Step length in seconds.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Secret length in bytes (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes handed out at enrollment.
pub const RECOVERY_CODES: usize = 10;

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(B32[((n >> (35 - 5 * i)) & 31) as usize] as char);
        }
    }
    out
}

/// The HOTP value of `counter` (RFC 4226, dynamic truncation).
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return 0; // HMAC takes keys of any length; unreachable.
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    bin % 10u32.pow(DIGITS)
}

/// The step of a Unix time in seconds.
pub fn step_of(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The step (within ±1 of `now_step`) whose code is `code`, if any and if
/// it is later than `last_used` (a code works once).
pub fn verify(secret: &[u8], code: &str, now_step: u64, last_used: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut found = None;
    // Every candidate is computed and compared, whichever matches.
    for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
        let want = format!("{:0width$}", hotp(secret, step), width = DIGITS as usize);
        if ct_eq(want.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found.filter(|s| last_used.is_none_or(|l| *s > l))
}

/// `otpauth://totp/chalktalk:{account}?secret=...&issuer=chalktalk&...`
pub fn otpauth_uri(secret: &[u8], account: &str) -> String {
    let label: String = format!("chalktalk:{account}")
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "otpauth://totp/{label}?secret={}&issuer=chalktalk&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        base32(secret)
    )
}

/// A new random secret.
pub fn new_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut s = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut s)?;
    Ok(s)
}

/// Ten recovery codes (`xxxxx-xxxxx`, 50 random bits each) and their hashes.
pub fn new_recovery_codes() -> Result<(Vec<String>, Vec<String>), getrandom::Error> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut b = [0u8; 10];
        getrandom::fill(&mut b)?;
        let s: String = b.iter().map(|x| B32[(x & 31) as usize] as char).collect();
        codes.push(format!("{}-{}", &s[..5], &s[5..]).to_lowercase());
    }
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    Ok((codes, hashes))
}

/// sha256 hex of a recovery code, normalised (case, dashes, spaces).
pub fn recovery_hash(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let mut h = sha2::Sha256::new();
    h.update(b"chalktalk recovery\0");
    h.update(norm.as_bytes());
    super::password::hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1, truncated to 6 digits.
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(hotp(secret, step_of(t)), code % 1_000_000, "t={t}");
        }
    }

    #[test]
    fn window_and_reuse() {
        let s = b"12345678901234567890";
        let now = step_of(1_111_111_111);
        let code = |st| format!("{:06}", hotp(s, st));
        assert_eq!(verify(s, &code(now), now, None), Some(now));
        assert_eq!(verify(s, &code(now - 1), now, None), Some(now - 1));
        assert_eq!(verify(s, &code(now + 1), now, None), Some(now + 1));
        assert_eq!(verify(s, &code(now - 2), now, None), None);
        assert_eq!(verify(s, &code(now), now, Some(now)), None, "no reuse");
        assert_eq!(verify(s, "12345", now, None), None);
        assert_eq!(verify(s, "abcdef", now, None), None);
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        let u = otpauth_uri(b"12345678901234567890", "ann lee@x.com");
        assert!(
            u.starts_with("otpauth://totp/chalktalk:ann%20lee@x.com?secret=GEZDG"),
            "{u}"
        );
    }

    #[test]
    fn recovery() {
        let (codes, hashes) = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), 10);
        assert_eq!(
            recovery_hash(&codes[0].to_uppercase().replace('-', " ")),
            hashes[0]
        );
        assert_ne!(hashes[0], hashes[1]);
    }
}
