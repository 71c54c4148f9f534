//! [`Export`] for [`PgStore`]: ids and key-value rows in the "C"
//! collation's byte order, a page per statement (keyset paging).

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;

use super::{PgStore, clamp, column};
use crate::copy::{Export, KvRow, Listing};

#[async_trait]
impl Export for PgStore {
    async fn list(
        &self,
        what: Listing,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let sql = match what {
            Listing::Rooms => "SELECT id FROM rooms WHERE id > $1 ORDER BY id LIMIT $2",
            Listing::Threads => "SELECT id FROM threads WHERE id > $1 ORDER BY id LIMIT $2",
            Listing::Inboxes => {
                "SELECT DISTINCT user_id FROM inbox WHERE user_id > $1 ORDER BY user_id LIMIT $2"
            }
            Listing::Members => {
                "SELECT DISTINCT user_id FROM memberships WHERE user_id > $1 \
                 ORDER BY user_id LIMIT $2"
            }
            Listing::Assets => "SELECT id FROM media_assets WHERE id > $1 ORDER BY id LIMIT $2",
            Listing::Jobs => "SELECT id FROM media_jobs WHERE id > $1 ORDER BY id LIMIT $2",
        };
        let limit = clamp(limit as u64);
        let rows = self.query(sql, &[&after, &limit]).await?;
        rows.iter().map(|row| column(row, 0)).collect()
    }

    async fn kv_rows(&self, after: (&str, &str), limit: usize) -> Result<Vec<KvRow>, StoreError> {
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT ns, key, value FROM kv WHERE (ns, key) > ($1, $2) \
                 ORDER BY ns, key LIMIT $3",
                &[&after.0, &after.1, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((column(row, 0)?, column(row, 1)?, column(row, 2)?)))
            .collect()
    }
}
