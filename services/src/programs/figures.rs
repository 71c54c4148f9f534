//! The arithmetic of the revenue figures (`super::revenue`), pure and
//! unit-tested: the reporting [`Period`] (whole UTC calendar months),
//! per-currency [`Money`] sums of orders (different currencies are never
//! added), and the subscriber [`Churn`] of entitlements.
//!
//! Definitions (docs/PROTOCOL.md, "Revenue analytics"):
//! - a *sale* is an order that was paid: status `paid`, `refunded` or
//!   `disputed`; it counts in the month of its payment (`paid_ms`, else
//!   its creation), and so do its refund or dispute;
//! - `gross`: the amounts of the sales; `refunded` / `disputed`: the
//!   amounts of the sales now refunded / disputed; `fees`: the platform's
//!   fee of the sales that stand (status `paid`); `net` = gross − fees −
//!   refunded − disputed (what the coaches keep);
//! - churn over [from, to): of the entitlements active at `from`, the
//!   share revoked before `to`, in basis points (1/100 of a percent);
//!   none when nothing was active at `from`.

use std::collections::BTreeMap;

use chalktalk_adapters::programs::{Entitlement, Order, OrderStatus, month_of_ms, month_start_ms};
use serde::Serialize;

use super::ProgramError;

/// The longest period one request may ask for, in months.
pub const MAX_MONTHS: u32 = 120;

/// Whole UTC months `from` ..= `to` (`YYYY-MM`), i.e. the instants
/// `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Period {
    /// The first month, `YYYY-MM`.
    pub from: String,
    /// The last month (included), `YYYY-MM`.
    pub to: String,
    pub from_ms: u64,
    /// The start of the month after `to`.
    pub to_ms: u64,
}

/// Parses `YYYY-MM` (1970 or later).
pub fn parse_month(s: &str) -> Option<(i64, u32)> {
    let (y, m) = s.split_once('-')?;
    let digits = |v: &str, n: usize| v.len() == n && v.bytes().all(|b| b.is_ascii_digit());
    if !digits(y, 4) || !digits(m, 2) {
        return None;
    }
    let (y, m) = (y.parse().ok()?, m.parse().ok()?);
    month_start_ms(y, m).map(|_| (y, m))
}

fn label((y, m): (i64, u32)) -> String {
    format!("{y:04}-{m:02}")
}

fn add_months((y, m): (i64, u32), n: i64) -> (i64, u32) {
    let i = y * 12 + i64::from(m) - 1 + n;
    (i.div_euclid(12), (i.rem_euclid(12) + 1) as u32)
}

/// The `YYYY-MM` of `ms`.
pub fn month_label(ms: u64) -> String {
    label(month_of_ms(ms))
}

impl Period {
    /// The period of the query `from` / `to` (`YYYY-MM`, both included):
    /// by default the 12 months up to the current one (`now_ms`); one
    /// bound alone spans 12 months from or up to it. `bad_period` for a
    /// malformed month, `from` after `to`, or more than [`MAX_MONTHS`].
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now_ms: u64,
    ) -> Result<Period, ProgramError> {
        let month = |field: &'static str, v: &str| {
            parse_month(v).ok_or_else(|| {
                ProgramError::BadPeriod(format!(
                    "{field}: a month YYYY-MM from 1970-01 on, got {v:?}"
                ))
            })
        };
        let from = from.map(|v| month("from", v)).transpose()?;
        let to = to.map(|v| month("to", v)).transpose()?;
        let (from, to) = match (from, to) {
            (Some(f), Some(t)) => (f, t),
            (Some(f), None) => (f, add_months(f, 11)),
            (None, Some(t)) => (add_months(t, -11).max((1970, 1)), t),
            (None, None) => {
                let t = month_of_ms(now_ms);
                (add_months(t, -11).max((1970, 1)), t)
            }
        };
        if from > to {
            return Err(ProgramError::BadPeriod(format!(
                "from ({}) is after to ({})",
                label(from),
                label(to)
            )));
        }
        let months = (to.0 * 12 + i64::from(to.1)) - (from.0 * 12 + i64::from(from.1)) + 1;
        if months > i64::from(MAX_MONTHS) {
            return Err(ProgramError::BadPeriod(format!(
                "at most {MAX_MONTHS} months at once, asked for {months}"
            )));
        }
        let start = |m: (i64, u32)| {
            month_start_ms(m.0, m.1)
                .ok_or_else(|| ProgramError::BadPeriod(format!("{} is out of range", label(m))))
        };
        Ok(Period {
            from: label(from),
            to: label(to),
            from_ms: start(from)?,
            to_ms: start(add_months(to, 1))?,
        })
    }

    /// Every month of the period, `YYYY-MM`, oldest first.
    pub fn months(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut m = month_of_ms(self.from_ms);
        while month_start_ms(m.0, m.1).is_some_and(|ms| ms < self.to_ms) {
            out.push(label(m));
            m = add_months(m, 1);
        }
        out
    }

    pub fn contains(&self, ms: u64) -> bool {
        ms >= self.from_ms && ms < self.to_ms
    }
}

/// The sums of one currency (integer minor units).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Money {
    /// ISO 4217, lower case.
    pub currency: String,
    /// Amounts of every sale.
    pub gross: u64,
    /// The platform's fees of the sales that stand.
    pub fees: u64,
    /// Amounts of the sales refunded.
    pub refunded: u64,
    /// Amounts of the sales disputed (chargebacks).
    pub disputed: u64,
    /// gross − fees − refunded − disputed.
    pub net: i64,
    /// Sales, refunded ones and disputed ones included.
    pub sales: u64,
    pub refunds: u64,
    pub disputes: u64,
}

/// When an order was sold, if it is a sale.
pub fn sold_ms(o: &Order) -> Option<u64> {
    match o.status {
        OrderStatus::Paid | OrderStatus::Refunded | OrderStatus::Disputed => {
            Some(o.paid_ms.unwrap_or(o.created_ms))
        }
        OrderStatus::Open | OrderStatus::Expired => None,
    }
}

/// Sums per currency, currencies in alphabetical order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(BTreeMap<String, Money>);

impl Tally {
    /// Adds the sale `o` (callers pass sales only: see [`sold_ms`]).
    pub fn add(&mut self, o: &Order) {
        let m = self.0.entry(o.currency.clone()).or_insert_with(|| Money {
            currency: o.currency.clone(),
            ..Money::default()
        });
        m.gross = m.gross.saturating_add(o.amount);
        m.sales += 1;
        match o.status {
            OrderStatus::Refunded => {
                m.refunded = m.refunded.saturating_add(o.amount);
                m.refunds += 1;
            }
            OrderStatus::Disputed => {
                m.disputed = m.disputed.saturating_add(o.amount);
                m.disputes += 1;
            }
            _ => m.fees = m.fees.saturating_add(o.fee.min(o.amount)),
        }
        let wide = |v: u64| i128::from(v);
        let net = wide(m.gross) - wide(m.fees) - wide(m.refunded) - wide(m.disputed);
        m.net = i64::try_from(net).unwrap_or(if net < 0 { i64::MIN } else { i64::MAX });
    }

    /// One [`Money`] per currency.
    pub fn into_vec(self) -> Vec<Money> {
        self.0.into_values().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Subscribers of a coach's paid programs and their churn over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Churn {
    /// Active now.
    pub active: u64,
    /// Active at the period's start.
    pub active_at_start: u64,
    /// Of those, revoked (refund, dispute, cancellation) before its end.
    pub ended: u64,
    /// ended / active_at_start in basis points (10000 = everyone); null
    /// when nobody was active at the start.
    pub churn_bps: Option<u64>,
}

/// Counts `ents` (the paid entitlements of a coach's programs) over
/// `period`.
pub fn churn<'a>(ents: impl IntoIterator<Item = &'a Entitlement>, period: &Period) -> Churn {
    use chalktalk_adapters::programs::EntitlementStatus;
    let mut c = Churn::default();
    for e in ents {
        if e.status == EntitlementStatus::Active {
            c.active += 1;
        }
        let ended = match e.status {
            EntitlementStatus::Revoked => Some(e.revoked_ms.unwrap_or(e.granted_ms)),
            EntitlementStatus::Active => None,
        };
        let at_start = e.granted_ms < period.from_ms && ended.is_none_or(|t| t >= period.from_ms);
        if at_start {
            c.active_at_start += 1;
            if ended.is_some_and(|t| t < period.to_ms) {
                c.ended += 1;
            }
        }
    }
    c.churn_bps = (c.active_at_start > 0).then(|| c.ended * 10_000 / c.active_at_start);
    c
}

#[cfg(test)]
#[path = "figures_tests.rs"]
mod tests;
