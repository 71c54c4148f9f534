//! [`Export`] for [`PgStore`]: ids and key-value rows in the "C"
//! collation's byte order, a page per statement (keyset paging); the
//! (user, program) keys of entitlements and progress as pair ids
//! ([`crate::copy::pair`]).

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;

use super::{PgStore, clamp, column};
use crate::copy::{Export, KvRow, Listing, pair, unpair};

impl PgStore {
    /// The (user, program) keys of `table` after the pair cursor `after`,
    /// distinct, as pair ids.
    async fn pairs(
        &self,
        table: &'static str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (user, program) = unpair(after);
        // Without a second part the cursor admits the first part itself.
        let (cmp, program) = match program {
            Some(p) => (">", p),
            None => (">=", ""),
        };
        let sql = format!(
            "SELECT DISTINCT user_id, program FROM {table} \
             WHERE (user_id, program) {cmp} ($1, $2) ORDER BY user_id, program LIMIT $3"
        );
        let rows = self.query(&sql, &[&user, &program, &limit]).await?;
        rows.iter()
            .map(|row| {
                let (u, p): (String, String) = (column(row, 0)?, column(row, 1)?);
                Ok(pair(&u, &p))
            })
            .collect()
    }
}

#[async_trait]
impl Export for PgStore {
    async fn list(
        &self,
        what: Listing,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let limit = clamp(limit as u64);
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
            Listing::Programs => "SELECT id FROM programs WHERE id > $1 ORDER BY id LIMIT $2",
            Listing::Entitlements => return self.pairs("entitlements", after, limit).await,
            Listing::Progress => return self.pairs("program_progress", after, limit).await,
            Listing::Orders => "SELECT id FROM orders WHERE id > $1 ORDER BY id LIMIT $2",
            Listing::Receipts => {
                "SELECT id FROM payment_receipts WHERE id > $1 ORDER BY id LIMIT $2"
            }
            Listing::Subscriptions => {
                "SELECT id FROM billing_subscriptions WHERE id > $1 ORDER BY id LIMIT $2"
            }
            Listing::PlanOverrides => {
                "SELECT user_id FROM plan_overrides WHERE user_id > $1 ORDER BY user_id LIMIT $2"
            }
            Listing::Audits => {
                "SELECT DISTINCT subject FROM billing_audit WHERE subject > $1 \
                 ORDER BY subject LIMIT $2"
            }
            Listing::PayoutAccounts => {
                "SELECT coach FROM payout_accounts WHERE coach > $1 ORDER BY coach LIMIT $2"
            }
        };
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
