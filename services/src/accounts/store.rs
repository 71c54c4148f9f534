//! Account records in the key-value port: [`NS_ACCOUNT`] (id -> account),
//! [`NS_EMAIL`] (normalised email -> id), [`NS_EXTERNAL`] (sha256 of the
//! identity provider's issuer and subject -> id), [`NS_TOTP_PENDING`] (a
//! TOTP secret awaiting confirmation) and [`NS_TOTP_STEP`] (the last TOTP
//! step used, so a code works once). Every change is a conditional batch:
//! two writers never both win.

use std::sync::Arc;

use chalktalk_actors::store::StoreError;
use sha2::Digest;

use super::model::{Account, NS_ACCOUNT, NS_EMAIL};
use super::password::hex;
use chalktalk_adapters::kv::{Kv, KvBatch};

pub const NS_EXTERNAL: &str = "external_id";
pub const NS_TOTP_PENDING: &str = "totp_pending";
pub const NS_TOTP_STEP: &str = "totp_step";

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt record {ns}/{key}: {message}")]
    Corrupt {
        ns: &'static str,
        key: String,
        message: String,
    },
    #[error("cannot encode a record: {0}")]
    Encode(String),
}

/// An account with its stored bytes (the expected value of a later
/// compare-and-set).
#[derive(Debug, Clone)]
pub struct Versioned {
    pub account: Account,
    pub bytes: Vec<u8>,
}

pub fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, RecordError> {
    rmp_serde::to_vec_named(v).map_err(|e| RecordError::Encode(e.to_string()))
}

pub fn decode<T: serde::de::DeserializeOwned>(
    ns: &'static str,
    key: &str,
    b: &[u8],
) -> Result<T, RecordError> {
    rmp_serde::from_slice(b).map_err(|e| RecordError::Corrupt {
        ns,
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// The key of an external identity in [`NS_EXTERNAL`].
pub fn external_key(issuer: &str, subject: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(issuer.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    hex(&h.finalize())
}

/// Account records.
#[derive(Clone)]
pub struct AccountStore {
    pub kv: Arc<dyn Kv>,
}

impl AccountStore {
    pub async fn get(&self, id: &str) -> Result<Option<Versioned>, RecordError> {
        match self.kv.get(NS_ACCOUNT, id).await? {
            Some(bytes) => Ok(Some(Versioned {
                account: decode(NS_ACCOUNT, id, &bytes)?,
                bytes,
            })),
            None => Ok(None),
        }
    }

    async fn via(&self, ns: &'static str, key: &str) -> Result<Option<Versioned>, RecordError> {
        match self.kv.get(ns, key).await? {
            Some(id) => self.get(&String::from_utf8_lossy(&id)).await,
            None => Ok(None),
        }
    }

    pub async fn by_email(&self, email: &str) -> Result<Option<Versioned>, RecordError> {
        self.via(NS_EMAIL, email).await
    }

    pub async fn by_external(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<Versioned>, RecordError> {
        self.via(NS_EXTERNAL, &external_key(issuer, subject)).await
    }

    /// Inserts a new account (and its email and external indexes) unless
    /// the id, email or external identity is taken; `false` if one is.
    pub async fn create(&self, a: &Account) -> Result<bool, RecordError> {
        let mut b = KvBatch::default().if_absent(NS_ACCOUNT, a.id.clone()).put(
            NS_ACCOUNT,
            a.id.clone(),
            encode(a)?,
        );
        if !a.email.is_empty() {
            b = b.if_absent(NS_EMAIL, a.email.clone()).put(
                NS_EMAIL,
                a.email.clone(),
                a.id.as_bytes().to_vec(),
            );
        }
        if let Some((iss, sub)) = &a.external {
            let k = external_key(iss, sub);
            b = b
                .if_absent(NS_EXTERNAL, k.clone())
                .put(NS_EXTERNAL, k, a.id.as_bytes().to_vec());
        }
        Ok(self.kv.apply(b).await?)
    }

    /// Replaces `old` with `new` (same id and email) unless it changed
    /// meanwhile; `more` joins the same batch.
    pub async fn update(
        &self,
        old: &Versioned,
        new: &Account,
        more: KvBatch,
    ) -> Result<bool, RecordError> {
        let b = more
            .if_equals(NS_ACCOUNT, old.account.id.clone(), old.bytes.clone())
            .put(NS_ACCOUNT, new.id.clone(), encode(new)?);
        Ok(self.kv.apply(b).await?)
    }
}

/// A fresh user id: `u-` and 24 hex digits (96 random bits).
pub fn new_user_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b)?;
    Ok(format!("u-{}", hex(&b)))
}
