//! [`BillingStore`] for the embedded store, laid out like
//! `sql/007_billing.sql`:
//!
//! - `billing_subscriptions`: id -> (version, `Subscription`);
//!   `billing_subscriptions_by_user`: (user, id) -> ();
//! - `plan_overrides`: user -> `PlanOverride`;
//! - `billing_audit`: (subject, at_ms, id) -> `AuditEntry`;
//! - `payout_accounts`: coach -> `PayoutAccount`;
//!   `payout_accounts_by_id`: Stripe account id -> coach.
//!
//! Writes go through the store's writer thread; the version condition of
//! `put_subscription` is checked inside its transaction.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use redb::{ReadableTable, StorageError, Table, TableDefinition, WriteTransaction};

use super::{EmbeddedStore, decode, encode, unavailable};
use crate::billing::{AuditEntry, BillingStore, PayoutAccount, PlanOverride, Subscription};

pub(super) const SUBS: TableDefinition<&str, (u64, &[u8])> =
    TableDefinition::new("billing_subscriptions");
const SUBS_BY_USER: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("billing_subscriptions_by_user");
pub(super) const OVERRIDES: TableDefinition<&str, &[u8]> = TableDefinition::new("plan_overrides");
pub(super) const AUDIT: TableDefinition<(&str, u64, &str), &[u8]> =
    TableDefinition::new("billing_audit");
pub(super) const PAYOUTS: TableDefinition<&str, &[u8]> = TableDefinition::new("payout_accounts");
const PAYOUTS_BY_ID: TableDefinition<&str, &str> = TableDefinition::new("payout_accounts_by_id");

/// A billing write, encoded by the caller.
pub(crate) enum BillingOp {
    Subscription {
        id: String,
        user: String,
        version: u64,
        body: Vec<u8>,
    },
    Override {
        user: String,
        body: Option<Vec<u8>>,
    },
    Audit {
        subject: String,
        at_ms: u64,
        id: String,
        body: Vec<u8>,
    },
    Payout {
        coach: String,
        account: String,
        body: Vec<u8>,
    },
}

/// The billing tables of one write transaction.
pub(super) struct BillingTables<'txn> {
    subs: Table<'txn, &'static str, (u64, &'static [u8])>,
    by_user: Table<'txn, (&'static str, &'static str), ()>,
    overrides: Table<'txn, &'static str, &'static [u8]>,
    audit: Table<'txn, (&'static str, u64, &'static str), &'static [u8]>,
    payouts: Table<'txn, &'static str, &'static [u8]>,
    payouts_by_id: Table<'txn, &'static str, &'static str>,
}

/// Opens (creating on first use) the billing tables.
pub(super) fn open_tables(txn: &WriteTransaction) -> Result<BillingTables<'_>, StoreError> {
    Ok(BillingTables {
        subs: txn.open_table(SUBS).map_err(unavailable)?,
        by_user: txn.open_table(SUBS_BY_USER).map_err(unavailable)?,
        overrides: txn.open_table(OVERRIDES).map_err(unavailable)?,
        audit: txn.open_table(AUDIT).map_err(unavailable)?,
        payouts: txn.open_table(PAYOUTS).map_err(unavailable)?,
        payouts_by_id: txn.open_table(PAYOUTS_BY_ID).map_err(unavailable)?,
    })
}

/// Applies one billing write; `Ok(Ok(false))` when its condition failed.
pub(super) fn apply(
    t: &mut BillingTables<'_>,
    op: &BillingOp,
) -> Result<Result<bool, StoreError>, StorageError> {
    match op {
        BillingOp::Subscription {
            id,
            user,
            version,
            body,
        } => {
            let stored = t.subs.get(id.as_str())?.map(|g| g.value().0);
            if stored.unwrap_or(0) + 1 != *version {
                return Ok(Ok(false));
            }
            t.subs.insert(id.as_str(), (*version, body.as_slice()))?;
            t.by_user.insert((user.as_str(), id.as_str()), ())?;
        }
        BillingOp::Override { user, body } => match body {
            Some(b) => {
                t.overrides.insert(user.as_str(), b.as_slice())?;
            }
            None => {
                t.overrides.remove(user.as_str())?;
            }
        },
        BillingOp::Audit {
            subject,
            at_ms,
            id,
            body,
        } => {
            t.audit
                .insert((subject.as_str(), *at_ms, id.as_str()), body.as_slice())?;
        }
        BillingOp::Payout {
            coach,
            account,
            body,
        } => {
            t.payouts.insert(coach.as_str(), body.as_slice())?;
            t.payouts_by_id.insert(account.as_str(), coach.as_str())?;
        }
    }
    Ok(Ok(true))
}

fn sub_of(txn: &redb::ReadTransaction, id: &str) -> Result<Option<Subscription>, StoreError> {
    let t = txn.open_table(SUBS).map_err(unavailable)?;
    let g = t.get(id).map_err(unavailable)?;
    g.map(|g| decode("subscription", id, g.value().1))
        .transpose()
}

#[async_trait]
impl BillingStore for EmbeddedStore {
    async fn put_subscription(&self, s: &Subscription) -> Result<bool, StoreError> {
        self.write(super::Op::Billing(BillingOp::Subscription {
            id: s.id.clone(),
            user: s.user.clone(),
            version: s.version,
            body: encode("subscription", s)?,
        }))
        .await
    }

    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let id = id.to_owned();
        self.read(move |txn| sub_of(txn, &id)).await
    }

    async fn subscriptions_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        let user = user.to_owned();
        self.read(move |txn| {
            let t = txn.open_table(SUBS_BY_USER).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in t.range((user.as_str(), "")..).map_err(unavailable)? {
                let (k, _) = entry.map_err(unavailable)?;
                let (u, id) = k.value();
                if u != user || out.len() >= limit {
                    break;
                }
                out.extend(sub_of(txn, id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn subscriptions_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        let after = after.map(str::to_owned);
        self.read(move |txn| {
            use std::ops::Bound;
            let t = txn.open_table(SUBS).map_err(unavailable)?;
            let start = match after.as_deref() {
                Some(a) => Bound::Excluded(a),
                None => Bound::Unbounded,
            };
            let mut out = Vec::new();
            for entry in t
                .range::<&str>((start, Bound::Unbounded))
                .map_err(unavailable)?
            {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = entry.map_err(unavailable)?;
                out.push(decode("subscription", k.value(), v.value().1)?);
            }
            Ok(out)
        })
        .await
    }

    async fn set_plan_override(
        &self,
        user: &str,
        o: Option<&PlanOverride>,
    ) -> Result<(), StoreError> {
        let body = o.map(|o| encode("plan override", o)).transpose()?;
        self.write(super::Op::Billing(BillingOp::Override {
            user: user.to_owned(),
            body,
        }))
        .await
        .map(drop)
    }

    async fn plan_override(&self, user: &str) -> Result<Option<PlanOverride>, StoreError> {
        let user = user.to_owned();
        self.read(move |txn| {
            let t = txn.open_table(OVERRIDES).map_err(unavailable)?;
            let g = t.get(user.as_str()).map_err(unavailable)?;
            g.map(|g| decode("plan override", &user, g.value()))
                .transpose()
        })
        .await
    }

    async fn add_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        self.write(super::Op::Billing(BillingOp::Audit {
            subject: e.subject.clone(),
            at_ms: e.at_ms,
            id: e.id.clone(),
            body: encode("audit entry", e)?,
        }))
        .await
        .map(drop)
    }

    async fn audit_of(&self, subject: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let subject = subject.to_owned();
        self.read(move |txn| {
            let t = txn.open_table(AUDIT).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in t
                .range((subject.as_str(), 0u64, "")..)
                .map_err(unavailable)?
            {
                let (k, v) = entry.map_err(unavailable)?;
                let (s, _, id) = k.value();
                if s != subject || out.len() >= limit {
                    break;
                }
                out.push(decode("audit entry", id, v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn put_payout_account(&self, a: &PayoutAccount) -> Result<(), StoreError> {
        self.write(super::Op::Billing(BillingOp::Payout {
            coach: a.coach.clone(),
            account: a.account.clone(),
            body: encode("payout account", a)?,
        }))
        .await
        .map(drop)
    }

    async fn payout_account(&self, coach: &str) -> Result<Option<PayoutAccount>, StoreError> {
        let coach = coach.to_owned();
        self.read(move |txn| payout_of(txn, &coach)).await
    }

    async fn payout_account_by_id(
        &self,
        account: &str,
    ) -> Result<Option<PayoutAccount>, StoreError> {
        let account = account.to_owned();
        self.read(move |txn| {
            let t = txn.open_table(PAYOUTS_BY_ID).map_err(unavailable)?;
            let coach = t
                .get(account.as_str())
                .map_err(unavailable)?
                .map(|g| g.value().to_owned());
            match coach {
                Some(c) => Ok(payout_of(txn, &c)?.filter(|a| a.account == account)),
                None => Ok(None),
            }
        })
        .await
    }
}

fn payout_of(
    txn: &redb::ReadTransaction,
    coach: &str,
) -> Result<Option<PayoutAccount>, StoreError> {
    let t = txn.open_table(PAYOUTS).map_err(unavailable)?;
    let g = t.get(coach).map_err(unavailable)?;
    g.map(|g| decode("payout account", coach, g.value()))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_billing_conformance() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        crate::conformance::billing::run_all(store).await;
    }
}
