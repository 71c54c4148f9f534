//! Sign-in sessions (devices) and their rotating refresh tokens.
//!
//! A refresh token is `{sid}.{secret}`: the session id and 256 random
//! bits, both base64url; clients treat it as opaque. The session record
//! keeps only sha256 of the current secret and of up to [`HISTORY`]
//! rotated ones. Every refresh replaces the current secret with a
//! compare-and-set on the record, so of two refreshes with the same token
//! exactly one wins; presenting a rotated secret (including the loser of
//! such a race) is reuse, and the caller revokes the whole session.
//!
//! Records: [`NS_SESSION`] key `{user}/{sid}` (listing a user's devices
//! is one prefix scan) and [`NS_SID`] key `sid` -> user id.

use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::password::hex;
use super::store::{RecordError, decode, encode};
use super::totp::ct_eq;
use chalktalk_adapters::kv::{Kv, KvBatch};

pub const NS_SESSION: &str = "session";
pub const NS_SID: &str = "session_sid";
/// Rotated secrets remembered per session for reuse detection.
pub const HISTORY: usize = 64;
/// Most sessions listed per user.
pub const MAX_LISTED: usize = 1000;

/// A stored sign-in session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub sid: String,
    pub user: String,
    pub device: String,
    pub created_ms: u64,
    /// Sign-in or last refresh.
    pub last_used_ms: u64,
    /// The session ends if not refreshed by then.
    pub expires_ms: u64,
    /// sha256 hex of the current refresh secret.
    pub refresh_hash: String,
    /// sha256 hex of rotated secrets, oldest first.
    pub previous: Vec<String>,
    /// A coach or admin who has not enabled TOTP yet.
    pub mfa_pending: bool,
}

/// What a refresh came to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefreshError {
    #[error("unknown or expired refresh token")]
    Unknown,
    /// A rotated token was presented again: revoke session `0`.
    #[error("refresh token reused")]
    Reused(String),
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random(n: usize) -> Result<Vec<u8>, RecordError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| RecordError::Encode(format!("no randomness: {e}")))?;
    Ok(b)
}

fn secret_hash(secret: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"chalktalk refresh\0");
    h.update(secret.as_bytes());
    hex(&h.finalize())
}

fn key(user: &str, sid: &str) -> String {
    format!("{user}/{sid}")
}

/// Session records.
#[derive(Clone)]
pub struct Sessions {
    pub kv: Arc<dyn Kv>,
    pub refresh_ttl_ms: u64,
}

impl Sessions {
    /// A new session of `user`; returns it and its first refresh token.
    pub async fn create(
        &self,
        user: &str,
        device: &str,
        mfa_pending: bool,
    ) -> Result<(SessionRecord, String), RecordError> {
        let sid = b64(&random(16)?);
        let secret = b64(&random(32)?);
        let now = chalktalk_actors::now_ms();
        let rec = SessionRecord {
            sid: sid.clone(),
            user: user.to_string(),
            device: device.to_string(),
            created_ms: now,
            last_used_ms: now,
            expires_ms: now + self.refresh_ttl_ms,
            refresh_hash: secret_hash(&secret),
            previous: Vec::new(),
            mfa_pending,
        };
        let b = KvBatch::default()
            .if_absent(NS_SID, sid.clone())
            .put(NS_SID, sid.clone(), user.as_bytes().to_vec())
            .put(NS_SESSION, key(user, &sid), encode(&rec)?);
        if !self.kv.apply(b).await? {
            return Err(RecordError::Encode("session id collision".into()));
        }
        Ok((rec, format!("{sid}.{secret}")))
    }

    /// The session `sid` of `user`, with its stored bytes.
    pub async fn get(
        &self,
        user: &str,
        sid: &str,
    ) -> Result<Option<(SessionRecord, Vec<u8>)>, RecordError> {
        let k = key(user, sid);
        match self.kv.get(NS_SESSION, &k).await? {
            Some(bytes) => Ok(Some((decode(NS_SESSION, &k, &bytes)?, bytes))),
            None => Ok(None),
        }
    }

    /// Rotates the refresh token: the session and a new token, or why not.
    pub async fn refresh(
        &self,
        token: &str,
    ) -> Result<Result<(SessionRecord, String), RefreshError>, RecordError> {
        let Some((sid, secret)) = token.trim().split_once('.') else {
            return Ok(Err(RefreshError::Unknown));
        };
        if sid.is_empty() || sid.len() > 64 || secret.len() > 128 {
            return Ok(Err(RefreshError::Unknown));
        }
        let Some(user) = self.kv.get(NS_SID, sid).await? else {
            return Ok(Err(RefreshError::Unknown));
        };
        let user = String::from_utf8_lossy(&user).into_owned();
        let hash = secret_hash(secret);
        // Two rounds: a lost compare-and-set re-reads and then sees reuse.
        for _ in 0..2 {
            let Some((rec, bytes)) = self.get(&user, sid).await? else {
                return Ok(Err(RefreshError::Unknown));
            };
            if !ct_eq(hash.as_bytes(), rec.refresh_hash.as_bytes()) {
                if rec
                    .previous
                    .iter()
                    .any(|p| ct_eq(p.as_bytes(), hash.as_bytes()))
                {
                    return Ok(Err(RefreshError::Reused(rec.sid)));
                }
                return Ok(Err(RefreshError::Unknown));
            }
            let now = chalktalk_actors::now_ms();
            if rec.expires_ms <= now {
                self.delete(&user, sid).await?;
                return Ok(Err(RefreshError::Unknown));
            }
            if let Some(out) = self.rotate(rec, bytes, None).await? {
                return Ok(Ok(out));
            }
        }
        Ok(Err(RefreshError::Reused(sid.to_string())))
    }

    /// Replaces the refresh secret of `rec` (stored as `bytes`) unless the
    /// record changed meanwhile (`None`); `mfa_pending` changes the flag.
    pub async fn rotate(
        &self,
        mut rec: SessionRecord,
        bytes: Vec<u8>,
        mfa_pending: Option<bool>,
    ) -> Result<Option<(SessionRecord, String)>, RecordError> {
        let secret = b64(&random(32)?);
        let now = chalktalk_actors::now_ms();
        let old = std::mem::replace(&mut rec.refresh_hash, secret_hash(&secret));
        rec.previous.push(old);
        if rec.previous.len() > HISTORY {
            rec.previous.remove(0);
        }
        rec.last_used_ms = now;
        rec.expires_ms = now + self.refresh_ttl_ms;
        if let Some(m) = mfa_pending {
            rec.mfa_pending = m;
        }
        let k = key(&rec.user, &rec.sid);
        let b = KvBatch::default()
            .if_equals(NS_SESSION, k.clone(), bytes)
            .put(NS_SESSION, k, encode(&rec)?);
        if !self.kv.apply(b).await? {
            return Ok(None);
        }
        let token = format!("{}.{secret}", rec.sid);
        Ok(Some((rec, token)))
    }

    /// Deletes session `sid` of `user`; `false` if there was none.
    pub async fn delete(&self, user: &str, sid: &str) -> Result<bool, RecordError> {
        if self.kv.get(NS_SESSION, &key(user, sid)).await?.is_none() {
            return Ok(false);
        }
        let b = KvBatch::default()
            .delete(NS_SESSION, key(user, sid))
            .delete(NS_SID, sid);
        self.kv.apply(b).await?;
        Ok(true)
    }

    /// The live sessions of `user`, oldest first (expired ones are removed).
    pub async fn list(&self, user: &str) -> Result<Vec<SessionRecord>, RecordError> {
        let now = chalktalk_actors::now_ms();
        let mut out = Vec::new();
        for (k, v) in self
            .kv
            .scan(NS_SESSION, &format!("{user}/"), MAX_LISTED)
            .await?
        {
            let rec: SessionRecord = decode(NS_SESSION, &k, &v)?;
            if rec.expires_ms <= now {
                self.delete(user, &rec.sid).await?;
            } else {
                out.push(rec);
            }
        }
        out.sort_by_key(|r| (r.created_ms, r.sid.clone()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chalktalk_adapters::EmbeddedStore;

    #[tokio::test]
    async fn rotation_reuse_and_races() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sessions {
            kv: EmbeddedStore::open(dir.path()).unwrap(),
            refresh_ttl_ms: 60_000,
        };
        let (rec, t1) = s.create("u-1", "phone", false).await.unwrap();
        let (_, t2) = s.refresh(&t1).await.unwrap().unwrap();
        assert_eq!(
            s.refresh(&t1).await.unwrap(),
            Err(RefreshError::Reused(rec.sid.clone()))
        );
        let forged = format!("{}.AAAA", rec.sid);
        assert_eq!(
            s.refresh(&forged).await.unwrap(),
            Err(RefreshError::Unknown)
        );
        assert_eq!(
            s.refresh("nonsense").await.unwrap(),
            Err(RefreshError::Unknown)
        );
        // Concurrent refreshes of one token: exactly one wins.
        let (a, b) = tokio::join!(s.refresh(&t2), s.refresh(&t2));
        let wins = [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(wins, 1);
        assert_eq!(s.list("u-1").await.unwrap().len(), 1);
        assert!(s.delete("u-1", &rec.sid).await.unwrap());
        assert!(!s.delete("u-1", &rec.sid).await.unwrap());
        assert!(s.list("u-1").await.unwrap().is_empty());
    }
}
