//! Helpers only the account tests need: TOTP codes of the current step and
//! test signing keys (tests/accounts/keys: throwaway keys made for these
//! tests with openssl, never used anywhere else). The server is the one
//! [`crate::common::TestServer`]; the account helpers every suite shares
//! (sign-up, sign-in, tokens, WebSocket hellos) are in tests/common/api.rs.
#![allow(dead_code)]

use base64::Engine;

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
