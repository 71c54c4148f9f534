//! [`MediaStore`] (assets and encoder jobs) for [`PgStore`], laid out like
//! `sql/002_media.sql`: a job row carries `unfinished` and a partial index
//! on (created_ms, id) serves `unfinished_jobs`, oldest first.

use async_trait::async_trait;
use chalktalk_actors::encoder::{JobRecord, MediaStore};
use chalktalk_actors::store::StoreError;
use chalktalk_protocol::Asset;

use super::writer::Op;
use super::{PgStore, clamp, column};
use crate::embedded::{decode, encode};

#[async_trait]
impl MediaStore for PgStore {
    async fn put_asset(&self, asset: &Asset) -> Result<(), StoreError> {
        let body = encode("asset", asset)?;
        self.write(Op::PutAsset {
            id: asset.id.clone(),
            owner: asset.owner.clone(),
            body,
        })
        .await
        .map(drop)
    }

    async fn delete_asset(&self, id: &str, _owner: &str) -> Result<(), StoreError> {
        self.write(Op::DeleteAsset { id: id.to_owned() })
            .await
            .map(drop)
    }

    async fn asset(&self, id: &str) -> Result<Option<Asset>, StoreError> {
        let rows = self
            .query("SELECT body FROM media_assets WHERE id = $1", &[&id])
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(decode("asset", id, column::<&[u8]>(row, 0)?)?)),
            None => Ok(None),
        }
    }

    async fn assets_of(&self, owner: &str, limit: usize) -> Result<Vec<Asset>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT id, body FROM media_assets WHERE owner = $1 ORDER BY id LIMIT $2",
                &[&owner, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let id: &str = column(row, 0)?;
                decode("asset", id, column::<&[u8]>(row, 1)?)
            })
            .collect()
    }

    async fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let body = encode("job", job)?;
        self.write(Op::PutJob {
            id: job.spec.id.clone(),
            created_ms: clamp(job.spec.created_ms),
            unfinished: !job.state.is_final(),
            body,
        })
        .await
        .map(drop)
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let rows = self
            .query("SELECT body FROM media_jobs WHERE id = $1", &[&id])
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(decode("job", id, column::<&[u8]>(row, 0)?)?)),
            None => Ok(None),
        }
    }

    async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, body FROM media_jobs WHERE unfinished ORDER BY created_ms, id",
                &[],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: &str = column(row, 0)?;
            let job: JobRecord = decode("job", id, column::<&[u8]>(row, 1)?)?;
            if !job.state.is_final() {
                out.push(job);
            }
        }
        Ok(out)
    }
}
