//! [`BillingStore`] for [`PgStore`], laid out like `sql/007_billing.sql`:
//! one statement per write on a pooled connection; the version condition
//! of `put_subscription` is in its statement, so two nodes racing cannot
//! both win.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;

use super::{PgStore, bodies, clamp, first, to_db};
use crate::billing::{AuditEntry, BillingStore, PayoutAccount, PlanOverride, Subscription};
use crate::embedded::encode;

#[async_trait]
impl BillingStore for PgStore {
    async fn put_subscription(&self, s: &Subscription) -> Result<bool, StoreError> {
        let body = encode("subscription", s)?;
        let version = to_db("subscription version", s.version)?;
        let rows = if s.version == 1 {
            self.query(
                "INSERT INTO billing_subscriptions (id, user_id, version, body) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING 1",
                &[&s.id, &s.user, &version, &body],
            )
            .await?
        } else {
            self.query(
                "UPDATE billing_subscriptions SET user_id = $2, version = $3, body = $4 \
                 WHERE id = $1 AND version = $5 RETURNING 1",
                &[&s.id, &s.user, &version, &body, &(version - 1)],
            )
            .await?
        };
        Ok(!rows.is_empty())
    }

    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let rows = self
            .query(
                "SELECT body FROM billing_subscriptions WHERE id = $1",
                &[&id],
            )
            .await?;
        first("subscription", id, &rows)
    }

    async fn subscriptions_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT id, body FROM billing_subscriptions WHERE user_id = $1 \
                 ORDER BY id LIMIT $2",
                &[&user, &limit],
            )
            .await?;
        bodies("subscription", &rows)
    }

    async fn subscriptions_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        let limit = clamp(limit as u64);
        let rows = match after {
            Some(after) => {
                self.query(
                    "SELECT id, body FROM billing_subscriptions WHERE id > $1 \
                     ORDER BY id LIMIT $2",
                    &[&after, &limit],
                )
                .await?
            }
            None => {
                self.query(
                    "SELECT id, body FROM billing_subscriptions ORDER BY id LIMIT $1",
                    &[&limit],
                )
                .await?
            }
        };
        bodies("subscription", &rows)
    }

    async fn set_plan_override(
        &self,
        user: &str,
        o: Option<&PlanOverride>,
    ) -> Result<(), StoreError> {
        match o {
            Some(o) => {
                let body = encode("plan override", o)?;
                self.query(
                    "INSERT INTO plan_overrides (user_id, body) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET body = excluded.body",
                    &[&user, &body],
                )
                .await?;
            }
            None => {
                self.query("DELETE FROM plan_overrides WHERE user_id = $1", &[&user])
                    .await?;
            }
        }
        Ok(())
    }

    async fn plan_override(&self, user: &str) -> Result<Option<PlanOverride>, StoreError> {
        let rows = self
            .query(
                "SELECT body FROM plan_overrides WHERE user_id = $1",
                &[&user],
            )
            .await?;
        first("plan override", user, &rows)
    }

    async fn add_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let body = encode("audit entry", e)?;
        let at = clamp(e.at_ms);
        self.query(
            "INSERT INTO billing_audit (subject, at_ms, id, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject, at_ms, id) DO UPDATE SET body = excluded.body",
            &[&e.subject, &at, &e.id, &body],
        )
        .await
        .map(drop)
    }

    async fn audit_of(&self, subject: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT id, body FROM billing_audit WHERE subject = $1 \
                 ORDER BY at_ms, id LIMIT $2",
                &[&subject, &limit],
            )
            .await?;
        bodies("audit entry", &rows)
    }

    async fn put_payout_account(&self, a: &PayoutAccount) -> Result<(), StoreError> {
        let body = encode("payout account", a)?;
        self.query(
            "INSERT INTO payout_accounts (coach, account_id, body) VALUES ($1, $2, $3) \
             ON CONFLICT (coach) DO UPDATE SET account_id = excluded.account_id, body = excluded.body",
            &[&a.coach, &a.account, &body],
        )
        .await
        .map(drop)
    }

    async fn payout_account(&self, coach: &str) -> Result<Option<PayoutAccount>, StoreError> {
        let rows = self
            .query(
                "SELECT body FROM payout_accounts WHERE coach = $1",
                &[&coach],
            )
            .await?;
        first("payout account", coach, &rows)
    }

    async fn payout_account_by_id(
        &self,
        account: &str,
    ) -> Result<Option<PayoutAccount>, StoreError> {
        let rows = self
            .query(
                "SELECT body FROM payout_accounts WHERE account_id = $1",
                &[&account],
            )
            .await?;
        first("payout account", account, &rows)
    }
}
