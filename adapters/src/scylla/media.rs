//! [`MediaStore`] (assets and encoder jobs) for [`ScyllaStore`], laid out
//! like cql/004 and cql/006: an asset row plus its by-owner index row, a
//! job row plus its row in `media_jobs_unfinished` (inserted while the job
//! is queued or running, deleted once final), each pair in one logged batch
//! (both rows are written eventually, even across a coordinator crash).
//! Readers of an index load the rows from the main table and skip the ones
//! that no longer match (an asset of another owner, a job in a final
//! state), so a stale index row is harmless.

use async_trait::async_trait;
use chalktalk_actors::encoder::{JobRecord, JobState, MediaStore};
use chalktalk_actors::store::StoreError;
use chalktalk_protocol::Asset;
use scylla::statement::batch::{Batch, BatchType};

use super::exec::corrupt;
use super::{ScyllaStore, clamp, to_db};
use crate::embedded::{decode, encode};

/// The partition of `media_jobs_unfinished` written today (cql/004).
const UNFINISHED: &str = "unfinished";

/// A serde enum's name for the plain columns (`kind`, `stage`): the
/// variant as text, or "" when it is not a plain string.
fn label<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn job_state(state: &JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Failed { .. } => "failed",
        JobState::Cancelled => "cancelled",
    }
}

impl ScyllaStore {
    /// The `body` of the row of `stmt` keyed by `id`.
    async fn body_of<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        stmt: &scylla::statement::prepared::PreparedStatement,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let rows = self
            .inner
            .run(stmt, (id,))
            .await?
            .into_rows_result()
            .map_err(|e| corrupt(what, e))?;
        match rows
            .maybe_first_row::<(Option<&[u8]>,)>()
            .map_err(|e| corrupt(what, e))?
        {
            Some((Some(body),)) => Ok(Some(decode(what, id, body)?)),
            Some((None,)) => Err(StoreError::Corrupt(format!("{what} {id}: no body"))),
            None => Ok(None),
        }
    }

    /// Ids of an index partition, in clustering order.
    async fn index_ids(
        &self,
        stmt: &scylla::statement::prepared::PreparedStatement,
        partition: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.inner
            .pages(stmt, (partition,), usize::MAX, |rows, out| {
                for row in rows.rows::<(String,)>().map_err(|e| corrupt("index", e))? {
                    out.push(row.map_err(|e| corrupt("index", e))?.0);
                }
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl MediaStore for ScyllaStore {
    #[tracing::instrument(skip_all, fields(asset = %asset.id))]
    async fn put_asset(&self, asset: &Asset) -> Result<(), StoreError> {
        let inner = &self.inner;
        let body = encode("asset", asset)?;
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(inner.st.ASSET_INSERT.clone());
        batch.append_statement(inner.st.ASSET_OWNER_INSERT.clone());
        let values = (
            (
                asset.id.as_str(),
                label(&asset.kind),
                asset.owner.as_str(),
                label(&asset.stage),
                to_db("created_ms", asset.created_ms)?,
                body.as_slice(),
            ),
            (asset.owner.as_str(), asset.id.as_str()),
        );
        inner.run_batch(&batch, values).await
    }

    #[tracing::instrument(skip_all, fields(asset = %id))]
    async fn delete_asset(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let inner = &self.inner;
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(inner.st.ASSET_DELETE.clone());
        batch.append_statement(inner.st.ASSET_OWNER_DELETE.clone());
        inner.run_batch(&batch, ((id,), (owner, id))).await
    }

    async fn asset(&self, id: &str) -> Result<Option<Asset>, StoreError> {
        self.body_of("asset", &self.inner.st.ASSET_GET, id).await
    }

    async fn assets_of(&self, owner: &str, limit: usize) -> Result<Vec<Asset>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for id in self.index_ids(&self.inner.st.ASSETS_OF, owner).await? {
            if let Some(asset) = self.asset(&id).await?
                && asset.owner == owner
            {
                out.push(asset);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(job = %job.spec.id))]
    async fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let inner = &self.inner;
        let body = encode("job", job)?;
        let id = job.spec.id.as_str();
        let created = clamp(job.spec.created_ms);
        let row = (
            id,
            created,
            job_state(&job.state),
            i32::try_from(job.attempts).unwrap_or(i32::MAX),
            clamp(job.updated_ms),
            body.as_slice(),
        );
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(inner.st.JOB_INSERT.clone());
        if job.state.is_final() {
            batch.append_statement(inner.st.JOB_UNFINISHED_DELETE.clone());
        } else {
            batch.append_statement(inner.st.JOB_UNFINISHED_INSERT.clone());
        }
        inner
            .run_batch(&batch, (row, (UNFINISHED, created, id)))
            .await
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.body_of("job", &self.inner.st.JOB_GET, id).await
    }

    async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for id in self
            .index_ids(&self.inner.st.JOBS_UNFINISHED, UNFINISHED)
            .await?
        {
            if let Some(job) = self.job(&id).await?
                && !job.state.is_final()
            {
                out.push(job);
            }
        }
        Ok(out)
    }
}
