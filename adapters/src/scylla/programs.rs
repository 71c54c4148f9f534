//! [`ProgramStore`] for [`ScyllaStore`], laid out like cql/009 (and
//! cql/011: orders listed by coach and by creation month, rows written
//! with an order's first version, before its LWT): a row and
//! its index row in one logged batch (programs, entitlements); progress
//! rows in one partition per (user, program); orders and receipts by
//! lightweight transaction (`IF NOT EXISTS`, `IF version = ?`), each index
//! row (`orders_by_payment`, `payment_receipts_pending`) written BEFORE
//! the LWT so that a crash never leaves a stored order or receipt
//! unindexed; readers load the truth by id and skip stale index rows. A
//! timed-out LWT is settled by a read at the serial consistency.
//!
//! Written like the rest of this adapter but, as the rest, never run
//! against a ScyllaDB server here (none can run on this machine): its
//! statements are checked against cql/ by `schema_check.rs`, and the
//! conformance suite runs on it when `CHALKTALK_TEST_SCYLLA` is set.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use serde::de::DeserializeOwned;

use super::exec::{Lwt, corrupt};
use super::{ScyllaStore, clamp, to_db};
use crate::embedded::{decode, encode};
use crate::programs::{
    Entitlement, ItemProgress, Order, OrderRange, Program, ProgramStore, Receipt, month_of_ms,
    month_start_ms,
};

/// The partition of `payment_receipts_pending` (cql/008).
const PENDING: &str = "pending";

/// The `orders_by_month` partition (cql/011) of an order created at `ms`.
fn bucket(ms: u64) -> String {
    let (year, month) = month_of_ms(ms);
    format!("{year:04}-{month:02}")
}

/// The created_ms bounds of a page: from the cursor's time when it is
/// later than the range's start (rows at that time before the cursor are
/// skipped by `OrderRange::admits`).
fn bounds(range: &OrderRange) -> (i64, i64) {
    let from = match &range.after {
        Some((ms, _)) => range.from_ms.max(*ms),
        None => range.from_ms,
    };
    (clamp(from), clamp(range.to_ms))
}

impl ScyllaStore {
    /// The `body` of the one row `stmt` selects.
    pub(super) async fn one_body<T: DeserializeOwned>(
        &self,
        what: &str,
        key: &str,
        stmt: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        serial: bool,
    ) -> Result<Option<T>, StoreError> {
        let inner = &self.inner;
        let result = if serial {
            inner.run_serial(stmt, values).await?
        } else {
            inner.run(stmt, values).await?
        };
        let rows = result.into_rows_result().map_err(|e| corrupt(what, e))?;
        match rows
            .maybe_first_row::<(Option<&[u8]>,)>()
            .map_err(|e| corrupt(what, e))?
        {
            Some((Some(body),)) => Ok(Some(decode(what, key, body)?)),
            Some((None,)) => Err(StoreError::Corrupt(format!("{what} {key}: no body"))),
            None => Ok(None),
        }
    }

    /// Every `body` (or id, as text) of a paged read, in clustering order.
    pub(super) async fn bodies<T: DeserializeOwned>(
        &self,
        what: &'static str,
        stmt: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        self.inner
            .pages(stmt, values, limit, |rows, out| {
                for row in rows
                    .rows::<(Option<&[u8]>,)>()
                    .map_err(|e| corrupt(what, e))?
                {
                    if let (Some(body),) = row.map_err(|e| corrupt(what, e))? {
                        out.push(decode(what, "", body)?);
                    }
                }
                Ok(())
            })
            .await
    }

    pub(super) async fn ids(
        &self,
        stmt: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.inner
            .pages(stmt, values, limit, |rows, out| {
                for row in rows.rows::<(String,)>().map_err(|e| corrupt("index", e))? {
                    out.push(row.map_err(|e| corrupt("index", e))?.0);
                }
                Ok(())
            })
            .await
    }

    async fn receipt_at(&self, id: &str, serial: bool) -> Result<Option<Receipt>, StoreError> {
        let st = &self.inner.st.RECEIPT_GET;
        self.one_body("receipt", id, st, (id,), serial).await
    }

    /// The orders of index rows `ids` (in index order) that `range`
    /// admits and `keep` accepts, at most `range.limit`; stale rows are
    /// skipped.
    async fn orders_in(
        &self,
        ids: Vec<String>,
        range: &OrderRange,
        keep: impl Fn(&Order) -> bool,
    ) -> Result<Vec<Order>, StoreError> {
        let mut out: Vec<Order> = Vec::new();
        for id in ids {
            if out.len() >= range.limit {
                break;
            }
            if let Some(o) = self.order(&id).await?
                && range.admits(&o)
                && keep(&o)
                && !out.iter().any(|x| x.id == o.id)
            {
                out.push(o);
            }
        }
        Ok(out)
    }

    async fn order_at(&self, id: &str, serial: bool) -> Result<Option<Order>, StoreError> {
        let st = &self.inner.st.ORDER_GET;
        self.one_body("order", id, st, (id,), serial).await
    }
}

#[async_trait]
impl ProgramStore for ScyllaStore {
    async fn put_program(&self, p: &Program) -> Result<(), StoreError> {
        let inner = &self.inner;
        let body = encode("program", p)?;
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(inner.st.PROGRAM_INSERT.clone());
        batch.append_statement(inner.st.PROGRAM_COACH_INSERT.clone());
        let values = (
            (p.id.as_str(), p.coach.as_str(), body.as_slice()),
            (p.coach.as_str(), p.id.as_str()),
        );
        inner.run_batch(&batch, values).await
    }

    async fn program(&self, id: &str) -> Result<Option<Program>, StoreError> {
        let st = &self.inner.st.PROGRAM_GET;
        self.one_body("program", id, st, (id,), false).await
    }

    async fn programs_of(&self, coach: &str, limit: usize) -> Result<Vec<Program>, StoreError> {
        let mut out = Vec::new();
        for id in self
            .ids(&self.inner.st.PROGRAMS_OF, (coach,), usize::MAX)
            .await?
        {
            if out.len() >= limit {
                break;
            }
            if let Some(p) = self.program(&id).await?
                && p.coach == coach
            {
                out.push(p);
            }
        }
        Ok(out)
    }

    async fn put_entitlement(&self, e: &Entitlement) -> Result<(), StoreError> {
        let inner = &self.inner;
        let body = encode("entitlement", e)?;
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(inner.st.ENTITLEMENT_INSERT.clone());
        batch.append_statement(inner.st.ENTITLEMENT_PROGRAM_INSERT.clone());
        let values = (
            (e.user.as_str(), e.program.as_str(), body.as_slice()),
            (e.program.as_str(), e.user.as_str()),
        );
        inner.run_batch(&batch, values).await
    }

    async fn entitlement(
        &self,
        user: &str,
        program: &str,
    ) -> Result<Option<Entitlement>, StoreError> {
        let st = &self.inner.st.ENTITLEMENT_GET;
        let key = format!("{user}/{program}");
        self.one_body("entitlement", &key, st, (user, program), false)
            .await
    }

    async fn entitlements_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let st = &self.inner.st.ENTITLEMENTS_OF;
        self.bodies("entitlement", st, (user,), limit).await
    }

    async fn entitlements_to(
        &self,
        program: &str,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let mut out = Vec::new();
        for user in self
            .ids(&self.inner.st.ENTITLED_USERS, (program,), limit)
            .await?
        {
            out.extend(self.entitlement(&user, program).await?);
        }
        Ok(out)
    }

    async fn put_progress(&self, p: &ItemProgress) -> Result<(), StoreError> {
        let body = encode("progress", p)?;
        let values = (
            p.user.as_str(),
            p.program.as_str(),
            p.item.as_str(),
            body.as_slice(),
        );
        self.inner
            .run(&self.inner.st.PROGRESS_INSERT, values)
            .await
            .map(drop)
    }

    async fn progress(&self, user: &str, program: &str) -> Result<Vec<ItemProgress>, StoreError> {
        let st = &self.inner.st.PROGRESS_OF;
        self.bodies("progress", st, (user, program), usize::MAX)
            .await
    }

    async fn put_order(&self, o: &Order) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let body = encode("order", o)?;
        let version = to_db("order version", o.version)?;
        if let Some(p) = &o.payment {
            inner
                .run(&inner.st.ORDER_PAYMENT_INSERT, (p.as_str(), o.id.as_str()))
                .await?;
        }
        if o.version == 1 {
            // The listings of cql/011 (coach and created_ms never change).
            let created = clamp(o.created_ms);
            if !o.coach.is_empty() {
                let values = (o.coach.as_str(), created, o.id.as_str());
                inner.run(&inner.st.ORDER_COACH_INSERT, values).await?;
            }
            let values = (bucket(o.created_ms), created, o.id.as_str());
            inner.run(&inner.st.ORDER_MONTH_INSERT, values).await?;
        }
        let payment = o.payment.as_deref();
        let outcome = if o.version == 1 {
            let values = (o.id.as_str(), version, payment, body.as_slice());
            inner.lwt(&inner.st.ORDER_INSERT, values).await
        } else {
            let values = (
                version,
                payment,
                body.as_slice(),
                o.id.as_str(),
                version - 1,
            );
            inner.lwt(&inner.st.ORDER_UPDATE, values).await
        };
        match outcome {
            Lwt::Applied => Ok(true),
            Lwt::NotApplied => Ok(false),
            Lwt::Failed(e) => Err(e),
            Lwt::Unknown(e) => match self.order_at(&o.id, true).await? {
                Some(stored) if stored == *o => Ok(true),
                Some(_) => Ok(false),
                None => Err(e),
            },
        }
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.order_at(id, false).await
    }

    async fn order_by_payment(&self, payment: &str) -> Result<Option<Order>, StoreError> {
        let st = &self.inner.st.ORDER_BY_PAYMENT;
        for id in self.ids(st, (payment,), 1).await? {
            if let Some(o) = self.order(&id).await?
                && o.payment.as_deref() == Some(payment)
            {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    async fn orders_of_coach(
        &self,
        coach: &str,
        range: &OrderRange,
    ) -> Result<Vec<Order>, StoreError> {
        let (from, to) = bounds(range);
        let st = &self.inner.st.ORDERS_OF_COACH;
        let ids = self.ids(st, (coach, from, to), usize::MAX).await?;
        self.orders_in(ids, range, |o| o.coach == coach).await
    }

    async fn orders_created(&self, range: &OrderRange) -> Result<Vec<Order>, StoreError> {
        let (from, to) = bounds(range);
        let mut out = Vec::new();
        let (mut year, mut month) = month_of_ms(u64::try_from(from).unwrap_or(0));
        while out.len() < range.limit {
            let Some(start) = month_start_ms(year, month) else {
                break;
            };
            if clamp(start) >= to {
                break;
            }
            let label = format!("{year:04}-{month:02}");
            let st = &self.inner.st.ORDERS_OF_MONTH;
            let ids = self.ids(st, (label.as_str(), from, to), usize::MAX).await?;
            let mut page = range.clone();
            page.limit = range.limit - out.len();
            out.extend(self.orders_in(ids, &page, |_| true).await?);
            (year, month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
        }
        Ok(out)
    }

    async fn add_receipt(&self, r: &Receipt) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let body = encode("receipt", r)?;
        let received = clamp(r.received_ms);
        if r.applied_ms.is_none() {
            let values = (PENDING, received, r.id.as_str());
            inner.run(&inner.st.RECEIPT_PENDING_INSERT, values).await?;
        }
        let values = (r.id.as_str(), received, body.as_slice());
        match inner.lwt(&inner.st.RECEIPT_INSERT, values).await {
            Lwt::Applied => Ok(true),
            Lwt::NotApplied => Ok(false),
            Lwt::Failed(e) => Err(e),
            Lwt::Unknown(e) => match self.receipt_at(&r.id, true).await? {
                Some(stored) => Ok(stored == *r),
                None => Err(e),
            },
        }
    }

    async fn update_receipt(&self, r: &Receipt) -> Result<(), StoreError> {
        let inner = &self.inner;
        let body = encode("receipt", r)?;
        let received = clamp(r.received_ms);
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(inner.st.RECEIPT_PUT.clone());
        if r.applied_ms.is_none() {
            batch.append_statement(inner.st.RECEIPT_PENDING_INSERT.clone());
        } else {
            batch.append_statement(inner.st.RECEIPT_PENDING_DELETE.clone());
        }
        let values = (
            (r.id.as_str(), received, body.as_slice()),
            (PENDING, received, r.id.as_str()),
        );
        inner.run_batch(&batch, values).await
    }

    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, StoreError> {
        self.receipt_at(id, false).await
    }

    async fn pending_receipts(&self, limit: usize) -> Result<Vec<Receipt>, StoreError> {
        let mut out = Vec::new();
        let st = &self.inner.st.RECEIPTS_PENDING;
        for id in self.ids(st, (PENDING,), usize::MAX).await? {
            if out.len() >= limit {
                break;
            }
            // Stale rows (a duplicate's, an applied one's) are skipped.
            if let Some(r) = self.receipt(&id).await?
                && r.applied_ms.is_none()
                && !out.iter().any(|x: &Receipt| x.id == r.id)
            {
                out.push(r);
            }
        }
        Ok(out)
    }
}
