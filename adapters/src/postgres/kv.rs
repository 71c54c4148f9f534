//! The key-value port ([`Kv`]) for [`PgStore`]: table `kv` (ns, key,
//! value). Batches go through the writer task, which locks every key a
//! batch names before checking its conditions (`writer.rs`); reads are
//! plain statements. Prefix scans use the "C" collation's byte order.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;

use super::writer::Op;
use super::{PgStore, clamp, column};
use crate::kv::{Kv, KvBatch};

#[async_trait]
impl Kv for PgStore {
    async fn get(&self, ns: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .query(
                "SELECT value FROM kv WHERE ns = $1 AND key = $2",
                &[&ns, &key],
            )
            .await?;
        rows.first().map(|row| column(row, 0)).transpose()
    }

    async fn scan(
        &self,
        ns: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT key, value FROM kv WHERE ns = $1 AND key >= $2 \
                 AND starts_with(key, $2) ORDER BY key LIMIT $3",
                &[&ns, &prefix, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((column(row, 0)?, column(row, 1)?)))
            .collect()
    }

    async fn apply(&self, batch: KvBatch) -> Result<bool, StoreError> {
        if batch.writes.is_empty() && batch.conds.is_empty() {
            return Ok(true);
        }
        self.write(Op::Kv(batch)).await
    }
}
