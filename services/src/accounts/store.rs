//! Account records in the key-value port: [`NS_ACCOUNT`] (id -> account),
//! [`NS_EMAIL`] (normalised email -> id), [`NS_EXTERNAL`] (sha256 of the
//! identity provider's issuer and subject -> id), [`NS_TOTP_PENDING`] (a
//! TOTP secret awaiting confirmation) and [`NS_TOTP_STEP`] (the last TOTP
//! step used, so a code works once). Every change is a conditional batch:
//! two writers never both win.
//!
//! The key-value port makes a condition atomic within one partition only
//! (`chalktalk_adapters::kv`): an account (partition = its id) and its
//! email or external identity (partitions of their own) cannot be claimed
//! in one batch. [`AccountStore::create`] therefore goes in steps, each
//! conditional on one partition, and no crash between them leaves anything
//! a user can see (docs/ARCHITECTURE.md, "Conditions on one partition"):
//! 1. reserve the email and the external identity: a [`Reservation`] of
//!    the new id under each (insert if absent);
//! 2. write the account record (insert if absent). This is the commit
//!    point: a reservation resolves to an account only once its record
//!    exists, so before step 2 nothing is visible and after it all is.
//!
//! A reservation whose account does not exist and that is older than
//! [`RESERVATION_GRACE_MS`] belongs to a creation that died midway. The
//! next sign-up fences it first, writing a [`TOMBSTONE`] under the dead
//! account id (insert if absent, in that account's partition), then takes
//! the reservation over (compare-and-set). A creator that was only slow
//! finds its step 2 refused by the tombstone and gives up; one that got
//! there first keeps its email, because the fence then fails.

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

/// How long a pending reservation protects a creation in flight before a
/// later sign-up may take it over.
pub const RESERVATION_GRACE_MS: u64 = 30_000;

/// What an account id that a failed creation reserved holds once a later
/// sign-up fenced it (MessagePack nil; never a valid account).
pub const TOMBSTONE: &[u8] = &[0xc0];

/// The value under an email or external-identity key: the account it is
/// for and when it was reserved.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reservation {
    pub id: String,
    pub at_ms: u64,
}

impl Reservation {
    /// Decodes a reservation. Records written before reservations existed
    /// hold the bare user id (and were written with their account).
    pub fn decode(bytes: &[u8]) -> Reservation {
        match rmp_serde::from_slice::<Reservation>(bytes) {
            Ok(r) => r,
            Err(_) => Reservation {
                id: String::from_utf8_lossy(bytes).into_owned(),
                at_ms: 0,
            },
        }
    }
}

/// The outcome of reserving a key.
enum Reserve {
    /// Ours now (the stored bytes, to release it by compare-and-set).
    Held(Vec<u8>),
    /// Another account has it, or a creation in flight does.
    Taken,
}

/// Account records.
#[derive(Clone)]
pub struct AccountStore {
    pub kv: Arc<dyn Kv>,
    /// [`RESERVATION_GRACE_MS`] outside tests.
    pub grace_ms: u64,
}

impl AccountStore {
    pub async fn get(&self, id: &str) -> Result<Option<Versioned>, RecordError> {
        match self.kv.get(NS_ACCOUNT, id).await? {
            Some(bytes) if bytes == TOMBSTONE => Ok(None),
            Some(bytes) => Ok(Some(Versioned {
                account: decode(NS_ACCOUNT, id, &bytes)?,
                bytes,
            })),
            None => Ok(None),
        }
    }

    pub fn new(kv: Arc<dyn Kv>) -> AccountStore {
        AccountStore {
            kv,
            grace_ms: RESERVATION_GRACE_MS,
        }
    }

    /// The account a reservation points at, once its record exists.
    async fn via(&self, ns: &'static str, key: &str) -> Result<Option<Versioned>, RecordError> {
        match self.kv.get(ns, key).await? {
            Some(b) => self.get(&Reservation::decode(&b).id).await,
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
    /// the id, email or external identity is taken; `false` if one is. In
    /// steps (module docs): reserve, then write the record.
    pub async fn create(&self, a: &Account) -> Result<bool, RecordError> {
        let mut keys: Vec<(&'static str, String)> = Vec::new();
        if !a.email.is_empty() {
            keys.push((NS_EMAIL, a.email.clone()));
        }
        if let Some((iss, sub)) = &a.external {
            keys.push((NS_EXTERNAL, external_key(iss, sub)));
        }
        let mut held: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
        for (ns, key) in keys {
            let outcome = self.reserve(ns, &key, &a.id).await;
            match outcome {
                Ok(Reserve::Held(bytes)) => held.push((ns, key, bytes)),
                Ok(Reserve::Taken) | Err(_) => {
                    self.release(&held).await;
                    return outcome.map(|_| false);
                }
            }
        }
        let record = KvBatch::default().if_absent(NS_ACCOUNT, a.id.clone()).put(
            NS_ACCOUNT,
            a.id.clone(),
            encode(a)?,
        );
        match self.kv.apply(record).await {
            Ok(true) => Ok(true),
            Ok(false) => {
                // Fenced by a later sign-up, or an id collision.
                self.release(&held).await;
                Ok(false)
            }
            // Unknown outcome: keep the reservations. If the record was
            // written they are its email and identity; if not, a later
            // sign-up fences and takes them over after the grace period.
            Err(e) => Err(e.into()),
        }
    }

    /// Takes `key` in `ns` for account `id`, or takes over one that a dead
    /// creation left behind (fencing its account id first).
    async fn reserve(&self, ns: &'static str, key: &str, id: &str) -> Result<Reserve, RecordError> {
        let now = chalktalk_actors::now_ms();
        let mine = encode(&Reservation {
            id: id.to_string(),
            at_ms: now,
        })?;
        for _ in 0..4 {
            let fresh = KvBatch::default().if_absent(ns, key.to_string()).put(
                ns,
                key.to_string(),
                mine.clone(),
            );
            if self.kv.apply(fresh).await? {
                return Ok(Reserve::Held(mine));
            }
            let Some(cur) = self.kv.get(ns, key).await? else {
                continue; // released meanwhile
            };
            let r = Reservation::decode(&cur);
            if r.id == id {
                return Ok(Reserve::Held(cur));
            }
            let owner = self.kv.get(NS_ACCOUNT, &r.id).await?;
            let fenced = match owner {
                Some(b) if b == TOMBSTONE => true,
                Some(_) => return Ok(Reserve::Taken),
                None if now.saturating_sub(r.at_ms) < self.grace_ms => {
                    return Ok(Reserve::Taken);
                }
                None => false,
            };
            if !fenced {
                let fence = KvBatch::default().if_absent(NS_ACCOUNT, r.id.clone()).put(
                    NS_ACCOUNT,
                    r.id.clone(),
                    TOMBSTONE.to_vec(),
                );
                if !self.kv.apply(fence).await? {
                    continue; // its creator wrote the record first: look again
                }
            }
            let over = KvBatch::default().if_equals(ns, key.to_string(), cur).put(
                ns,
                key.to_string(),
                mine.clone(),
            );
            if self.kv.apply(over).await? {
                tracing::info!(ns, dead = %r.id, "took over a reservation a failed creation left");
                return Ok(Reserve::Held(mine));
            }
        }
        Ok(Reserve::Taken)
    }

    /// Gives reservations back (best effort: one left behind is taken
    /// over after the grace period).
    async fn release(&self, held: &[(&'static str, String, Vec<u8>)]) {
        for (ns, key, bytes) in held {
            let b = KvBatch::default()
                .if_equals(ns, key.clone(), bytes.clone())
                .delete(ns, key.clone());
            if let Err(e) = self.kv.apply(b).await {
                tracing::warn!(ns, error = %e, "could not release a reservation");
            }
        }
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
