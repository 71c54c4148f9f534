//! `MediaStore` (assets and encoder jobs, `chalktalk_actors::encoder`) for
//! the embedded store, laid out like `cql/004_media.cql`:
//!
//! - `media_assets`: asset id -> `Asset`;
//! - `media_jobs`: job id -> (created_ms, `JobRecord`); the creation time
//!   beside the value lets a write find the job's old index entry without
//!   decoding it;
//! - `media_jobs_unfinished`: (created_ms, job id) -> (), one entry per job
//!   not in a final state. `unfinished_jobs` walks this index (oldest first,
//!   ties by id) instead of scanning every job ever run; `put_job` moves or
//!   removes the entry in the same transaction as the record.
//!
//! - `media_assets_by_owner`: (owner, asset id) -> (), written with the
//!   asset (`assets_of`: the videos a user can list).
//!
//! Values are MessagePack with named fields. Writes go through the store's
//! writer thread like every other write (group commit, durable when the
//! future resolves); reads are read transactions on the blocking pool.

use async_trait::async_trait;
use chalktalk_actors::encoder::{JobRecord, MediaStore};
use chalktalk_actors::store::StoreError;
use chalktalk_protocol::Asset;
use redb::{
    ReadTransaction, ReadableTable, StorageError, Table, TableDefinition, WriteTransaction,
};

use super::EmbeddedStore;
use super::{decode, encode, unavailable};

/// Asset id -> `Asset`.
pub(super) const ASSETS: TableDefinition<&str, &[u8]> = TableDefinition::new("media_assets");
/// (owner, asset id) -> ().
const BY_OWNER: TableDefinition<(&str, &str), ()> = TableDefinition::new("media_assets_by_owner");
/// Job id -> (created_ms, `JobRecord`).
pub(super) const JOBS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("media_jobs");
/// (created_ms, job id) -> () for every job not in a final state.
const UNFINISHED: TableDefinition<(u64, &str), ()> = TableDefinition::new("media_jobs_unfinished");

/// A media write, encoded by the caller; the writer thread applies it.
pub(crate) enum MediaOp {
    PutAsset {
        id: String,
        owner: String,
        asset: Vec<u8>,
    },
    DeleteAsset {
        id: String,
        owner: String,
    },
    PutJob {
        id: String,
        created_ms: u64,
        unfinished: bool,
        record: Vec<u8>,
    },
}

/// The media tables of one write transaction.
pub(super) struct MediaTables<'txn> {
    assets: Table<'txn, &'static str, &'static [u8]>,
    by_owner: Table<'txn, (&'static str, &'static str), ()>,
    jobs: Table<'txn, &'static str, (u64, &'static [u8])>,
    unfinished: Table<'txn, (u64, &'static str), ()>,
}

/// Opens (creating on first use) the media tables in a write transaction.
pub(super) fn open_tables(txn: &WriteTransaction) -> Result<MediaTables<'_>, StoreError> {
    Ok(MediaTables {
        assets: txn.open_table(ASSETS).map_err(unavailable)?,
        by_owner: txn.open_table(BY_OWNER).map_err(unavailable)?,
        jobs: txn.open_table(JOBS).map_err(unavailable)?,
        unfinished: txn.open_table(UNFINISHED).map_err(unavailable)?,
    })
}

/// Applies one media write (the writer thread's `apply` for media ops).
pub(super) fn apply(
    t: &mut MediaTables<'_>,
    op: &MediaOp,
) -> Result<Result<bool, StoreError>, StorageError> {
    match op {
        MediaOp::PutAsset { id, owner, asset } => {
            t.assets.insert(id.as_str(), asset.as_slice())?;
            t.by_owner.insert((owner.as_str(), id.as_str()), ())?;
        }
        MediaOp::DeleteAsset { id, owner } => {
            t.assets.remove(id.as_str())?;
            t.by_owner.remove((owner.as_str(), id.as_str()))?;
        }
        MediaOp::PutJob {
            id,
            created_ms,
            unfinished,
            record,
        } => {
            let old = t.jobs.get(id.as_str())?.map(|g| g.value().0);
            if let Some(old_created) = old {
                t.unfinished.remove((old_created, id.as_str()))?;
            }
            t.jobs
                .insert(id.as_str(), (*created_ms, record.as_slice()))?;
            if *unfinished {
                t.unfinished.insert((*created_ms, id.as_str()), ())?;
            }
        }
    }
    Ok(Ok(true))
}

fn read_job(txn: &ReadTransaction, id: &str) -> Result<Option<JobRecord>, StoreError> {
    let table = txn.open_table(JOBS).map_err(unavailable)?;
    let guard = table.get(id).map_err(unavailable)?;
    guard.map(|g| decode("job", id, g.value().1)).transpose()
}

#[async_trait]
impl MediaStore for EmbeddedStore {
    async fn put_asset(&self, asset: &Asset) -> Result<(), StoreError> {
        let bytes = encode("asset", asset)?;
        self.write_media(MediaOp::PutAsset {
            id: asset.id.clone(),
            owner: asset.owner.clone(),
            asset: bytes,
        })
        .await
        .map(drop)
    }

    async fn delete_asset(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        self.write_media(MediaOp::DeleteAsset {
            id: id.to_owned(),
            owner: owner.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn asset(&self, id: &str) -> Result<Option<Asset>, StoreError> {
        let id = id.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(ASSETS).map_err(unavailable)?;
            let guard = table.get(id.as_str()).map_err(unavailable)?;
            guard.map(|g| decode("asset", &id, g.value())).transpose()
        })
        .await
    }

    async fn assets_of(&self, owner: &str, limit: usize) -> Result<Vec<Asset>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |txn| {
            let index = match txn.open_table(BY_OWNER) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
                Err(e) => return Err(unavailable(e)),
            };
            let assets = txn.open_table(ASSETS).map_err(unavailable)?;
            let mut out = Vec::new();
            let range = index.range((owner.as_str(), "")..).map_err(unavailable)?;
            for entry in range {
                let (key, _) = entry.map_err(unavailable)?;
                let (o, id) = key.value();
                if o != owner || out.len() >= limit {
                    break;
                }
                if let Some(g) = assets.get(id).map_err(unavailable)? {
                    out.push(decode("asset", id, g.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let bytes = encode("job", job)?;
        self.write_media(MediaOp::PutJob {
            id: job.spec.id.clone(),
            created_ms: job.spec.created_ms,
            unfinished: !job.state.is_final(),
            record: bytes,
        })
        .await
        .map(drop)
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |txn| read_job(txn, &id)).await
    }

    async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.read(|txn| {
            let index = txn.open_table(UNFINISHED).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in index.iter().map_err(unavailable)? {
                let (key, _) = entry.map_err(unavailable)?;
                let (_, id) = key.value();
                // The index and the records are written in one transaction;
                // a missing or final record is skipped all the same.
                if let Some(job) = read_job(txn, id)?
                    && !job.state.is_final()
                {
                    out.push(job);
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chalktalk_actors::encoder::{JobKind, JobSpec, JobState};

    use super::*;
    use crate::conformance::media as conformance;

    fn open(dir: &tempfile::TempDir) -> Arc<EmbeddedStore> {
        EmbeddedStore::open(dir.path()).expect("open store")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_media_conformance() {
        let dir = tempfile::TempDir::new().unwrap();
        conformance::run_all(open(&dir)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_reopen() {
        let dir = tempfile::TempDir::new().unwrap();
        let asset = conformance::asset("v-reopen");
        let job = |id: &str, created_ms, state| JobRecord {
            spec: JobSpec {
                id: id.into(),
                owner: "coach".into(),
                kind: JobKind::Video,
                source_key: format!("uploads/{id}"),
                timeout_ms: 60_000,
                max_attempts: 3,
                created_ms,
            },
            state,
            attempts: 1,
            updated_ms: created_ms + 1,
        };
        let running = job("j-running", 20, JobState::Running);
        let queued = job("j-queued", 10, JobState::Queued);
        let done = job("j-done", 5, JobState::Done);
        {
            let store = open(&dir);
            store.put_asset(&asset).await.unwrap();
            for j in [&running, &queued, &done] {
                store.put_job(j).await.unwrap();
            }
        }
        let store = open(&dir);
        assert_eq!(store.asset("v-reopen").await.unwrap(), Some(asset));
        assert_eq!(store.job("j-done").await.unwrap(), Some(done));
        assert_eq!(
            store.unfinished_jobs().await.unwrap(),
            vec![queued, running.clone()]
        );
        // Moving the job's creation time moves its index entry.
        let mut moved = running;
        moved.spec.created_ms = 1;
        store.put_job(&moved).await.unwrap();
        let ids: Vec<String> = store
            .unfinished_jobs()
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.spec.id)
            .collect();
        assert_eq!(ids, ["j-running", "j-queued"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_job_is_reported() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = open(&dir);
        store
            .write_media(MediaOp::PutJob {
                id: "bad".into(),
                created_ms: 1,
                unfinished: true,
                record: vec![0xc1], // never valid MessagePack
            })
            .await
            .unwrap();
        let err = store.job("bad").await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        let err = store.unfinished_jobs().await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
