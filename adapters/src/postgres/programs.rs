//! [`ProgramStore`] for [`PgStore`], laid out like `sql/006_programs.sql`
//! (and `sql/008_revenue.sql`: an order's coach and creation time in
//! columns, for the revenue listings).
//! Programs are cold data next to rooms: every write is one statement on a
//! pooled connection (atomic on its own) instead of the group-commit writer.
//! The conditions (`put_order` over the version before it, `add_receipt` if
//! absent) are in the statement, so two nodes racing cannot both win.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;

use super::{PgStore, bodies, clamp, first, to_db};
use crate::embedded::encode;
use crate::programs::{
    Entitlement, ItemProgress, Order, OrderRange, Program, ProgramStore, Receipt,
};

/// The bind values of a page: from, to, the cursor (the range's start
/// with an empty id, which no order has, when there is none) and the
/// limit.
fn bounds(range: &OrderRange) -> (i64, i64, i64, &str, i64) {
    let (after_ms, after_id) = match &range.after {
        Some((ms, id)) => (clamp(*ms), id.as_str()),
        None => (clamp(range.from_ms), ""),
    };
    (
        clamp(range.from_ms),
        clamp(range.to_ms),
        after_ms,
        after_id,
        clamp(range.limit as u64),
    )
}

#[async_trait]
impl ProgramStore for PgStore {
    async fn put_program(&self, p: &Program) -> Result<(), StoreError> {
        let body = encode("program", p)?;
        self.query(
            "INSERT INTO programs (id, coach, body) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET coach = excluded.coach, body = excluded.body",
            &[&p.id, &p.coach, &body],
        )
        .await
        .map(drop)
    }

    async fn program(&self, id: &str) -> Result<Option<Program>, StoreError> {
        let rows = self
            .query("SELECT body FROM programs WHERE id = $1", &[&id])
            .await?;
        first("program", id, &rows)
    }

    async fn programs_of(&self, coach: &str, limit: usize) -> Result<Vec<Program>, StoreError> {
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT id, body FROM programs WHERE coach = $1 ORDER BY id LIMIT $2",
                &[&coach, &limit],
            )
            .await?;
        bodies("program", &rows)
    }

    async fn put_entitlement(&self, e: &Entitlement) -> Result<(), StoreError> {
        let body = encode("entitlement", e)?;
        self.query(
            "INSERT INTO entitlements (user_id, program, body) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, program) DO UPDATE SET body = excluded.body",
            &[&e.user, &e.program, &body],
        )
        .await
        .map(drop)
    }

    async fn entitlement(
        &self,
        user: &str,
        program: &str,
    ) -> Result<Option<Entitlement>, StoreError> {
        let rows = self
            .query(
                "SELECT body FROM entitlements WHERE user_id = $1 AND program = $2",
                &[&user, &program],
            )
            .await?;
        first("entitlement", &format!("{user}/{program}"), &rows)
    }

    async fn entitlements_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT program, body FROM entitlements WHERE user_id = $1 \
                 ORDER BY program LIMIT $2",
                &[&user, &limit],
            )
            .await?;
        bodies("entitlement", &rows)
    }

    async fn entitlements_to(
        &self,
        program: &str,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT user_id, body FROM entitlements WHERE program = $1 \
                 ORDER BY user_id LIMIT $2",
                &[&program, &limit],
            )
            .await?;
        bodies("entitlement", &rows)
    }

    async fn put_progress(&self, p: &ItemProgress) -> Result<(), StoreError> {
        let body = encode("progress", p)?;
        self.query(
            "INSERT INTO program_progress (user_id, program, item, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, program, item) DO UPDATE SET body = excluded.body",
            &[&p.user, &p.program, &p.item, &body],
        )
        .await
        .map(drop)
    }

    async fn progress(&self, user: &str, program: &str) -> Result<Vec<ItemProgress>, StoreError> {
        let rows = self
            .query(
                "SELECT item, body FROM program_progress WHERE user_id = $1 AND program = $2 \
                 ORDER BY item",
                &[&user, &program],
            )
            .await?;
        bodies("progress", &rows)
    }

    async fn put_order(&self, o: &Order) -> Result<bool, StoreError> {
        let body = encode("order", o)?;
        let version = to_db("order version", o.version)?;
        let before = version - 1;
        let coach = Some(o.coach.as_str()).filter(|c| !c.is_empty());
        let created = clamp(o.created_ms);
        let rows = if o.version == 1 {
            self.query(
                "INSERT INTO orders (id, version, payment, body, coach, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING 1",
                &[&o.id, &version, &o.payment, &body, &coach, &created],
            )
            .await?
        } else {
            self.query(
                "UPDATE orders SET version = $2, payment = $3, body = $4, coach = $6, \
                 created_ms = $7 WHERE id = $1 AND version = $5 RETURNING 1",
                &[
                    &o.id, &version, &o.payment, &body, &before, &coach, &created,
                ],
            )
            .await?
        };
        Ok(!rows.is_empty())
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let rows = self
            .query("SELECT body FROM orders WHERE id = $1", &[&id])
            .await?;
        first("order", id, &rows)
    }

    async fn order_by_payment(&self, payment: &str) -> Result<Option<Order>, StoreError> {
        let rows = self
            .query("SELECT body FROM orders WHERE payment = $1", &[&payment])
            .await?;
        first("order", payment, &rows)
    }

    async fn orders_of_coach(
        &self,
        coach: &str,
        range: &OrderRange,
    ) -> Result<Vec<Order>, StoreError> {
        let (from, to, after_ms, after_id, limit) = bounds(range);
        let rows = self
            .query(
                "SELECT id, body FROM orders WHERE coach = $1 AND created_ms >= $2 \
                 AND created_ms < $3 AND (created_ms, id) > ($4, $5) \
                 ORDER BY created_ms, id LIMIT $6",
                &[&coach, &from, &to, &after_ms, &after_id, &limit],
            )
            .await?;
        bodies("order", &rows)
    }

    async fn orders_created(&self, range: &OrderRange) -> Result<Vec<Order>, StoreError> {
        let (from, to, after_ms, after_id, limit) = bounds(range);
        let rows = self
            .query(
                "SELECT id, body FROM orders WHERE created_ms >= $1 AND created_ms < $2 \
                 AND (created_ms, id) > ($3, $4) ORDER BY created_ms, id LIMIT $5",
                &[&from, &to, &after_ms, &after_id, &limit],
            )
            .await?;
        bodies("order", &rows)
    }

    async fn add_receipt(&self, r: &Receipt) -> Result<bool, StoreError> {
        let body = encode("receipt", r)?;
        let received = clamp(r.received_ms);
        let rows = self
            .query(
                "INSERT INTO payment_receipts (id, received_ms, pending, body) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING 1",
                &[&r.id, &received, &r.applied_ms.is_none(), &body],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn update_receipt(&self, r: &Receipt) -> Result<(), StoreError> {
        let body = encode("receipt", r)?;
        let received = clamp(r.received_ms);
        self.query(
            "INSERT INTO payment_receipts (id, received_ms, pending, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET received_ms = excluded.received_ms, \
             pending = excluded.pending, body = excluded.body",
            &[&r.id, &received, &r.applied_ms.is_none(), &body],
        )
        .await
        .map(drop)
    }

    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, StoreError> {
        let rows = self
            .query("SELECT body FROM payment_receipts WHERE id = $1", &[&id])
            .await?;
        first("receipt", id, &rows)
    }

    async fn pending_receipts(&self, limit: usize) -> Result<Vec<Receipt>, StoreError> {
        let limit = clamp(limit as u64);
        let rows = self
            .query(
                "SELECT id, body FROM payment_receipts WHERE pending \
                 ORDER BY received_ms, id LIMIT $1",
                &[&limit],
            )
            .await?;
        bodies("receipt", &rows)
    }
}
