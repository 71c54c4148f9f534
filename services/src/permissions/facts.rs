//! The facts decisions depend on, kept in the key-value port
//! (`chalktalk_adapters::kv`), MessagePack (named) values:
//!
//! - [`NS_REL`]: `{coach}/{athlete}` -> [`Relationship`] (the record);
//! - [`NS_REL_ATHLETE`]: `{athlete}/{coach}` -> empty (the athlete's index);
//! - [`NS_ACTIVE_COACH`]: `{coach}/{athlete}` -> `since_ms` (u64 BE) and
//!   [`NS_ACTIVE_ATHLETE`]: `{athlete}/{coach}` -> empty, present exactly
//!   while the pair is ACTIVE (written in the same batch as the record), so
//!   the per-frame questions ("their athletes", "their coaches") read the
//!   active pairs only, however many invitations and past relationships a
//!   user piled up;
//! - [`NS_GRANT`]: `{athlete}/{video}` -> [`Grant`] (purchased videos).
//!
//! User ids never contain `/` (`valid_id`), so prefix scans are exact.
//! State changes are compare-and-set on the stored bytes: two concurrent
//! answers to one invitation cannot both win. A node without a key-value
//! store has no facts: every lookup is empty and changes fail with
//! [`FactsError::Disabled`].

use std::sync::Arc;

use chalktalk_actors::store::StoreError;
use serde::{Deserialize, Serialize};

use super::decide::Active;
use chalktalk_adapters::kv::{Kv, KvBatch};

pub const NS_REL: &str = "rel";
pub const NS_REL_ATHLETE: &str = "rel_athlete";
pub const NS_GRANT: &str = "grant";
pub const NS_ACTIVE_COACH: &str = "rel_active_coach";
pub const NS_ACTIVE_ATHLETE: &str = "rel_active_athlete";

/// Relationships listed per user at most.
const MAX_LIST: usize = 10_000;

/// Where a coach–athlete relationship stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelState {
    Invited,
    Active,
    Declined,
    Ended,
}

/// A coach–athlete relationship (one record per pair; re-inviting after
/// `declined` or `ended` starts it over).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relationship {
    pub coach: String,
    pub athlete: String,
    pub state: RelState,
    pub invited_ms: u64,
    /// When it became active (the basic coach's "longest" order).
    pub since_ms: Option<u64>,
    pub ended_ms: Option<u64>,
}

/// A video granted (purchased) to an athlete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub athlete: String,
    pub video: String,
    pub by: String,
    pub at_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("this node keeps no relationships (no key-value store)")]
    Disabled,
    #[error("no such relationship")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
}

/// Relationships and grants.
#[derive(Clone)]
pub struct Facts {
    kv: Option<Arc<dyn Kv>>,
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(b).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn pair(a: &str, b: &str) -> String {
    format!("{a}/{b}")
}

impl Facts {
    pub fn new(kv: Option<Arc<dyn Kv>>) -> Facts {
        Facts { kv }
    }

    fn kv(&self) -> Result<&Arc<dyn Kv>, FactsError> {
        self.kv.as_ref().ok_or(FactsError::Disabled)
    }

    /// The record of the pair, with its stored bytes (for compare-and-set).
    pub async fn relationship(
        &self,
        coach: &str,
        athlete: &str,
    ) -> Result<Option<(Relationship, Vec<u8>)>, StoreError> {
        let Some(kv) = &self.kv else { return Ok(None) };
        match kv.get(NS_REL, &pair(coach, athlete)).await? {
            Some(b) => Ok(Some((dec(&b)?, b))),
            None => Ok(None),
        }
    }

    /// Writes `new` if the record is still `old` (bytes).
    ///
    /// The condition sits on the coach's partition (the record `coach/athlete`
    /// and the coach-side active index `coach/athlete` live there); the
    /// athlete-side indexes live in the athlete's partition, which one
    /// condition cannot cover (`chalktalk_adapters::kv`). So the entries a
    /// change adds on the athlete's side are written *before* the
    /// conditional batch and the ones it removes *after* it: a crash or a
    /// lost race leaves at most an extra athlete-side entry, and every
    /// reader of that side confirms each entry against the record
    /// ([`Facts::of_athlete`], [`Facts::active_coaches`]).
    async fn swap(&self, old: Option<Vec<u8>>, new: &Relationship) -> Result<bool, FactsError> {
        let key = pair(&new.coach, &new.athlete);
        let back = pair(&new.athlete, &new.coach);
        let active = match (new.state, new.since_ms) {
            (RelState::Active, Some(since)) => Some(since),
            _ => None,
        };
        let mut before = KvBatch::default().put(NS_REL_ATHLETE, back.clone(), Vec::new());
        if active.is_some() {
            before = before.put(NS_ACTIVE_ATHLETE, back.clone(), Vec::new());
        }
        self.kv()?.apply(before).await?;
        let batch = match old {
            Some(b) => KvBatch::default().if_equals(NS_REL, key.clone(), b),
            None => KvBatch::default().if_absent(NS_REL, key.clone()),
        };
        let batch = batch.put(NS_REL, key.clone(), enc(new)?);
        let batch = match active {
            Some(since) => batch.put(NS_ACTIVE_COACH, key, since.to_be_bytes().to_vec()),
            None => batch
                .delete(NS_ACTIVE_COACH, key)
                .delete(NS_ACTIVE_ATHLETE, back),
        };
        Ok(self.kv()?.apply(batch).await?)
    }

    /// Applies `change` to the pair's record, retrying lost races.
    async fn update(
        &self,
        coach: &str,
        athlete: &str,
        change: impl Fn(Option<Relationship>) -> Result<Relationship, FactsError>,
    ) -> Result<Relationship, FactsError> {
        self.kv()?;
        for _ in 0..5 {
            let cur = self.relationship(coach, athlete).await?;
            let (rec, bytes) = match cur {
                Some((r, b)) => (Some(r), Some(b)),
                None => (None, None),
            };
            let new = change(rec)?;
            if self.swap(bytes, &new).await? {
                tracing::info!(coach, athlete, state = ?new.state, "relationship changed");
                return Ok(new);
            }
        }
        Err(FactsError::Conflict(
            "the relationship keeps changing; retry".into(),
        ))
    }

    /// `coach` invites `athlete` (again, after a decline or an end).
    pub async fn invite(&self, coach: &str, athlete: &str) -> Result<Relationship, FactsError> {
        let now = chalktalk_actors::now_ms();
        self.update(coach, athlete, |cur| match cur.map(|r| r.state) {
            Some(RelState::Invited) => Err(FactsError::Conflict("already invited".into())),
            Some(RelState::Active) => Err(FactsError::Conflict("already active".into())),
            _ => Ok(Relationship {
                coach: coach.into(),
                athlete: athlete.into(),
                state: RelState::Invited,
                invited_ms: now,
                since_ms: None,
                ended_ms: None,
            }),
        })
        .await
    }

    /// `athlete` accepts or declines `coach`'s invitation.
    pub async fn respond(
        &self,
        coach: &str,
        athlete: &str,
        accept: bool,
    ) -> Result<Relationship, FactsError> {
        let now = chalktalk_actors::now_ms();
        self.update(coach, athlete, |cur| {
            let r = cur.ok_or(FactsError::NotFound)?;
            if r.state != RelState::Invited {
                return Err(FactsError::Conflict(format!(
                    "the relationship is {:?}, not invited",
                    r.state
                )));
            }
            Ok(if accept {
                Relationship {
                    state: RelState::Active,
                    since_ms: Some(now),
                    ..r
                }
            } else {
                Relationship {
                    state: RelState::Declined,
                    ended_ms: Some(now),
                    ..r
                }
            })
        })
        .await
    }

    /// Either side ends an active relationship (or withdraws an invitation).
    pub async fn end(&self, coach: &str, athlete: &str) -> Result<Relationship, FactsError> {
        let now = chalktalk_actors::now_ms();
        self.update(coach, athlete, |cur| {
            let r = cur.ok_or(FactsError::NotFound)?;
            if !matches!(r.state, RelState::Active | RelState::Invited) {
                return Err(FactsError::Conflict(format!(
                    "the relationship is already {:?}",
                    r.state
                )));
            }
            Ok(Relationship {
                state: RelState::Ended,
                ended_ms: Some(now),
                ..r
            })
        })
        .await
    }

    /// Every relationship of `coach` (as coach), by athlete id.
    pub async fn of_coach(&self, coach: &str) -> Result<Vec<Relationship>, StoreError> {
        let Some(kv) = &self.kv else {
            return Ok(vec![]);
        };
        let rows = kv.scan(NS_REL, &format!("{coach}/"), MAX_LIST).await?;
        rows.iter().map(|(_, b)| dec(b)).collect()
    }

    /// Every relationship of `athlete` (as athlete), by coach id.
    pub async fn of_athlete(&self, athlete: &str) -> Result<Vec<Relationship>, StoreError> {
        let Some(kv) = &self.kv else {
            return Ok(vec![]);
        };
        let prefix = format!("{athlete}/");
        let rows = kv.scan(NS_REL_ATHLETE, &prefix, MAX_LIST).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, _) in rows {
            let coach = k.strip_prefix(&prefix).unwrap_or_default();
            if let Some((r, _)) = self.relationship(coach, athlete).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// ACTIVE athletes of `coach` (one scan of the active index).
    pub async fn active_athletes(&self, coach: &str) -> Result<Vec<Active>, StoreError> {
        let Some(kv) = &self.kv else {
            return Ok(vec![]);
        };
        let prefix = format!("{coach}/");
        let rows = kv.scan(NS_ACTIVE_COACH, &prefix, MAX_LIST).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| {
                let since = <[u8; 8]>::try_from(v.as_slice()).ok()?;
                Some(Active {
                    other: k.strip_prefix(&prefix)?.to_string(),
                    since_ms: u64::from_be_bytes(since),
                })
            })
            .collect())
    }

    /// ACTIVE coaches of `athlete`: one scan of the athlete-side active
    /// index, each entry confirmed against the record it mirrors (an entry
    /// can outlive its relationship, see [`Facts::swap`]).
    pub async fn active_coaches(&self, athlete: &str) -> Result<Vec<String>, StoreError> {
        let Some(kv) = &self.kv else {
            return Ok(vec![]);
        };
        let prefix = format!("{athlete}/");
        let rows = kv.scan(NS_ACTIVE_ATHLETE, &prefix, MAX_LIST).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, _) in rows {
            let Some(coach) = k.strip_prefix(&prefix) else {
                continue;
            };
            if let Some((r, _)) = self.relationship(coach, athlete).await?
                && r.state == RelState::Active
            {
                out.push(coach.to_string());
            }
        }
        Ok(out)
    }

    /// Grants `video` to `athlete` (idempotent).
    pub async fn grant(&self, athlete: &str, video: &str, by: &str) -> Result<Grant, FactsError> {
        let g = Grant {
            athlete: athlete.into(),
            video: video.into(),
            by: by.into(),
            at_ms: chalktalk_actors::now_ms(),
        };
        let batch = KvBatch::default().put(NS_GRANT, pair(athlete, video), enc(&g)?);
        self.kv()?.apply(batch).await?;
        tracing::info!(athlete, video, by, "video granted");
        Ok(g)
    }

    /// Removes a grant; `false` if there was none.
    pub async fn revoke_grant(&self, athlete: &str, video: &str) -> Result<bool, FactsError> {
        let key = pair(athlete, video);
        if self.kv()?.get(NS_GRANT, &key).await?.is_none() {
            return Ok(false);
        }
        self.kv()?
            .apply(KvBatch::default().delete(NS_GRANT, key))
            .await?;
        Ok(true)
    }

    pub async fn granted(&self, athlete: &str, video: &str) -> Result<bool, StoreError> {
        let Some(kv) = &self.kv else {
            return Ok(false);
        };
        Ok(kv.get(NS_GRANT, &pair(athlete, video)).await?.is_some())
    }

    /// Videos granted to `athlete`.
    pub async fn grants_of(&self, athlete: &str) -> Result<Vec<Grant>, StoreError> {
        let Some(kv) = &self.kv else {
            return Ok(vec![]);
        };
        let rows = kv.scan(NS_GRANT, &format!("{athlete}/"), MAX_LIST).await?;
        rows.iter().map(|(_, b)| dec(b)).collect()
    }
}

#[cfg(test)]
#[path = "facts_tests.rs"]
mod tests;
