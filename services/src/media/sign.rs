//! Signed media links: `/media/{token}/{asset}/{path}` where
//! `token = {exp}.{base64url_nopad(HMAC-SHA256(key, "{asset}\n{exp}"))}` and
//! `exp` is a unix time in seconds. The token covers the whole asset (not one
//! path), so the relative URLs inside an HLS playlist (segment names, variant
//! playlists) resolve to links that carry the same valid token.
//!
//! Also the blob-key layout of published assets, [`asset_key`], and the
//! content type each file is published and served with, [`content_type_for`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chalktalk_adapters::blob::{MAX_SEGMENT_BYTES, validate_key};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a link token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The signature is right but the expiry has passed.
    #[error("the link has expired")]
    Expired,
    /// Malformed token or wrong signature (forged, or for another asset).
    #[error("invalid link")]
    Invalid,
}

/// Signs and verifies media links (HMAC-SHA256).
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(HMAC-SHA256)")
    }
}

/// Seconds since the unix epoch.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl UrlSigner {
    /// A signer with this secret key (32 random bytes recommended; every
    /// node serving the same links needs the same key).
    pub fn new(key: &[u8]) -> UrlSigner {
        UrlSigner { key: key.to_vec() }
    }

    /// A signer with a fresh random key: links die with the process.
    pub fn random() -> UrlSigner {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No OS randomness: fall back to something unpredictable enough
            // for a process-local key rather than refusing to start.
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            key[..16].copy_from_slice(&nanos.to_le_bytes());
            key[16..24].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
        }
        UrlSigner::new(&key)
    }

    fn mac(&self, asset: &str, exp: u64) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(asset.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    /// The token for `asset` valid until `exp` (unix seconds).
    pub fn token(&self, asset: &str, exp: u64) -> String {
        let sig = self.mac(asset, exp).finalize().into_bytes();
        format!("{exp}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// `/media/{token}/{asset}/{path}`, valid for `ttl` from now. `asset` and
    /// `path` follow the blob-key rules (`[A-Za-z0-9_.-]` segments), so they
    /// need no escaping.
    pub fn link(&self, asset: &str, path: &str, ttl: Duration) -> String {
        let exp = unix_secs(SystemTime::now()).saturating_add(ttl.as_secs());
        format!("/media/{}/{asset}/{path}", self.token(asset, exp))
    }

    /// Checks `token` for `asset` at unix time `now` (seconds); returns the
    /// expiry. The signature is compared in constant time and checked before
    /// the expiry, so a forged token is `Invalid`, never `Expired`.
    pub fn verify(&self, token: &str, asset: &str, now: u64) -> Result<u64, LinkError> {
        let (exp, sig) = token.split_once('.').ok_or(LinkError::Invalid)?;
        if exp.is_empty() || exp.len() > 20 || !exp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LinkError::Invalid);
        }
        let exp: u64 = exp.parse().map_err(|_| LinkError::Invalid)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::Invalid)?;
        self.mac(asset, exp)
            .verify_slice(&sig)
            .map_err(|_| LinkError::Invalid)?;
        if now > exp {
            return Err(LinkError::Expired);
        }
        Ok(exp)
    }
}

/// The blob key of file `path` of published asset `asset`:
/// `media/{asset}/{path}`.
pub fn asset_key(asset: &str, path: &str) -> String {
    format!("media/{asset}/{path}")
}

/// [`asset_key`] when `asset` is one key segment and `path` a relative key
/// (no `..`, `.`, empty segment or leading `/`), else `None`.
pub fn checked_asset_key(asset: &str, path: &str) -> Option<String> {
    if asset.is_empty() || asset.len() > MAX_SEGMENT_BYTES || asset.contains('/') {
        return None;
    }
    let key = asset_key(asset, path);
    validate_key(&key).ok().map(|()| key)
}

/// The `Content-Type` served for a path, by its extension.
pub fn content_type_for(path: &str) -> &'static str {
    let ext = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match ext.as_deref() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("m4a") => "audio/mp4",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("vtt") => "text/vtt",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = UrlSigner::new(&[7u8; 32]);
        let link = s.link("a1", "hls/master.m3u8", Duration::from_secs(60));
        let parts: Vec<&str> = link.split('/').collect();
        assert_eq!(parts[..2], ["", "media"]);
        assert_eq!(parts[3..], ["a1", "hls", "master.m3u8"]);
        let token = parts[2];
        let now = unix_secs(SystemTime::now());
        let exp = s.verify(token, "a1", now).unwrap();
        assert!(exp >= now + 59 && exp <= now + 61);
        assert_eq!(s.verify(token, "a1", exp), Ok(exp));
        assert_eq!(s.verify(token, "a1", exp + 1), Err(LinkError::Expired));
        assert_eq!(s.verify(token, "a2", now), Err(LinkError::Invalid));
        assert_eq!(
            UrlSigner::new(&[8u8; 32]).verify(token, "a1", now),
            Err(LinkError::Invalid)
        );
        // A forged expiry with the old signature.
        let sig = token.split_once('.').unwrap().1;
        let forged = format!("{}.{sig}", exp + 1000);
        assert_eq!(s.verify(&forged, "a1", now), Err(LinkError::Invalid));
        // A forged old token is invalid, not expired.
        assert_eq!(
            s.verify(&format!("1.{sig}"), "a1", now),
            Err(LinkError::Invalid)
        );
        for bad in ["", ".", "x.y", "12", "12.", "-1.abc", "+5.abc", "1.!!"] {
            assert_eq!(s.verify(bad, "a1", now), Err(LinkError::Invalid), "{bad}");
        }
        let expired = s.token("a1", 1000);
        assert_eq!(s.verify(&expired, "a1", 1001), Err(LinkError::Expired));
        assert!(format!("{:?}", UrlSigner::random()).contains("HMAC"));
    }

    #[test]
    fn types() {
        assert_eq!(
            content_type_for("hls/master.m3u8"),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type_for("hls/720p/seg_001.ts"), "video/mp2t");
        assert_eq!(content_type_for("a/POSTER.JPG"), "image/jpeg");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
        assert_eq!(content_type_for("dir.mp4/file"), "application/octet-stream");
    }

    #[test]
    fn keys() {
        assert_eq!(asset_key("a1", "hls/0/seg1.ts"), "media/a1/hls/0/seg1.ts");
        assert_eq!(
            checked_asset_key("a1", "poster.jpg").as_deref(),
            Some("media/a1/poster.jpg")
        );
        for (asset, path) in [
            ("a1", "../x"),
            ("a1", "a/../../x"),
            ("a1", "/etc/passwd"),
            ("a1", "a//b"),
            ("a1", ""),
            ("a1", "./x"),
            ("..", "x"),
            ("a/b", "x"),
            ("", "x"),
            ("a1", "x y"),
        ] {
            assert_eq!(checked_asset_key(asset, path), None, "{asset} {path}");
        }
    }
}
