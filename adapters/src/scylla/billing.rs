//! [`BillingStore`] for [`ScyllaStore`], laid out like cql/010: a
//! subscription by lightweight transaction (`IF NOT EXISTS`,
//! `IF version = ?`), its index row written BEFORE the LWT (readers load
//! the truth by id and skip rows of another user; `billing_subscriptions_all`
//! of cql/011 lists every one for the platform's figures); overrides and audit
//! entries are plain writes. A timed-out LWT is settled by a serial read.
//!
//! Like the rest of this adapter, never run against a ScyllaDB server here:
//! its statements are checked against cql/ by `schema_check.rs`, and the
//! conformance suite runs on it when `CHALKTALK_TEST_SCYLLA` is set.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use scylla::statement::batch::{Batch, BatchType};

use super::exec::Lwt;
use super::{ScyllaStore, clamp, to_db};
use crate::billing::{AuditEntry, BillingStore, PayoutAccount, PlanOverride, Subscription};
use crate::embedded::encode;

/// The one partition of `billing_subscriptions_all` (cql/011).
const SUBS_ALL: &str = "all";

impl ScyllaStore {
    async fn subscription_at(
        &self,
        id: &str,
        serial: bool,
    ) -> Result<Option<Subscription>, StoreError> {
        let st = &self.inner.st.SUB_GET;
        self.one_body("subscription", id, st, (id,), serial).await
    }
}

#[async_trait]
impl BillingStore for ScyllaStore {
    async fn put_subscription(&self, s: &Subscription) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let body = encode("subscription", s)?;
        let version = to_db("subscription version", s.version)?;
        inner
            .run(&inner.st.SUB_USER_INSERT, (s.user.as_str(), s.id.as_str()))
            .await?;
        inner
            .run(&inner.st.SUB_ALL_INSERT, (SUBS_ALL, s.id.as_str()))
            .await?;
        let outcome = if s.version == 1 {
            let values = (s.id.as_str(), s.user.as_str(), version, body.as_slice());
            inner.lwt(&inner.st.SUB_INSERT, values).await
        } else {
            let values = (
                s.user.as_str(),
                version,
                body.as_slice(),
                s.id.as_str(),
                version - 1,
            );
            inner.lwt(&inner.st.SUB_UPDATE, values).await
        };
        match outcome {
            Lwt::Applied => Ok(true),
            Lwt::NotApplied => Ok(false),
            Lwt::Failed(e) => Err(e),
            Lwt::Unknown(e) => match self.subscription_at(&s.id, true).await? {
                Some(stored) => Ok(stored == *s),
                None => Err(e),
            },
        }
    }

    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        self.subscription_at(id, false).await
    }

    async fn subscriptions_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut out = Vec::new();
        for id in self
            .ids(&self.inner.st.SUBS_OF, (user,), usize::MAX)
            .await?
        {
            if out.len() >= limit {
                break;
            }
            if let Some(s) = self.subscription(&id).await?
                && s.user == user
            {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn subscriptions_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        // "" sorts before every id: no cursor reads from the start.
        let after = after.unwrap_or("");
        let st = &self.inner.st.SUBS_ALL_AFTER;
        let mut out = Vec::new();
        for id in self.ids(st, (SUBS_ALL, after), usize::MAX).await? {
            if out.len() >= limit {
                break;
            }
            out.extend(self.subscription(&id).await?);
        }
        Ok(out)
    }

    async fn set_plan_override(
        &self,
        user: &str,
        o: Option<&PlanOverride>,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        match o {
            Some(o) => {
                let body = encode("plan override", o)?;
                inner
                    .run(&inner.st.OVERRIDE_PUT, (user, body.as_slice()))
                    .await?;
            }
            None => {
                inner.run(&inner.st.OVERRIDE_DELETE, (user,)).await?;
            }
        }
        Ok(())
    }

    async fn plan_override(&self, user: &str) -> Result<Option<PlanOverride>, StoreError> {
        let st = &self.inner.st.OVERRIDE_GET;
        self.one_body("plan override", user, st, (user,), false)
            .await
    }

    async fn add_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let inner = &self.inner;
        let body = encode("audit entry", e)?;
        let values = (
            e.subject.as_str(),
            clamp(e.at_ms),
            e.id.as_str(),
            body.as_slice(),
        );
        inner.run(&inner.st.AUDIT_PUT, values).await.map(drop)
    }

    async fn audit_of(&self, subject: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let st = &self.inner.st.AUDIT_OF;
        self.bodies("audit entry", st, (subject,), limit).await
    }

    async fn put_payout_account(&self, a: &PayoutAccount) -> Result<(), StoreError> {
        let inner = &self.inner;
        let body = encode("payout account", a)?;
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(inner.st.PAYOUT_PUT.clone());
        batch.append_statement(inner.st.PAYOUT_ID_PUT.clone());
        let values = (
            (a.coach.as_str(), body.as_slice()),
            (a.account.as_str(), a.coach.as_str()),
        );
        inner.run_batch(&batch, values).await
    }

    async fn payout_account(&self, coach: &str) -> Result<Option<PayoutAccount>, StoreError> {
        let st = &self.inner.st.PAYOUT_GET;
        self.one_body("payout account", coach, st, (coach,), false)
            .await
    }

    async fn payout_account_by_id(
        &self,
        account: &str,
    ) -> Result<Option<PayoutAccount>, StoreError> {
        for coach in self.ids(&self.inner.st.PAYOUT_BY_ID, (account,), 1).await? {
            if let Some(a) = self.payout_account(&coach).await?
                && a.account == account
            {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }
}
