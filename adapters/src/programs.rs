//! The training-program port ([`ProgramStore`], issue 12): programs a coach
//! sells or gives away, who may open them ([`Entitlement`]), what each
//! athlete finished ([`ItemProgress`]), checkout [`Order`]s and the
//! payment provider's webhook [`Receipt`]s. Adapters: the embedded store
//! (`crate::embedded::programs`), PostgreSQL (`crate::postgres`,
//! `sql/006_programs.sql`) and ScyllaDB (`crate::scylla`,
//! `cql/009_programs.cql`; like the rest of that adapter, not run against
//! a ScyllaDB server here); each runs `crate::conformance::programs`.
//!
//! Orders are listed by coach and by creation time
//! ([`ProgramStore::orders_of_coach`], [`ProgramStore::orders_created`];
//! `sql/008_revenue.sql`, `cql/011_revenue.cql`) for the revenue figures.
//!
//! Amounts are integer minor units (cents) with an ISO 4217 currency in
//! lower case, as Stripe writes them.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use serde::{Deserialize, Serialize};

/// Draft programs are seen by their coach only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramStatus {
    Draft,
    Published,
}

/// How often a subscription is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Monthly,
    Yearly,
}

/// What a program costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Price {
    Free,
    OneTime {
        amount: u64,
        currency: String,
    },
    Subscription {
        interval: Interval,
        amount: u64,
        currency: String,
    },
}

/// One entry of a program, in the coach's order. `id` is stable across
/// edits (progress refers to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProgramItem {
    /// A video asset of the coach's library.
    Video {
        id: String,
        title: String,
        asset: String,
    },
    /// A drill described in text.
    Drill {
        id: String,
        title: String,
        text: String,
    },
    /// A review room of the coach: its video with the annotations and
    /// voice-overs drawn on it, read as the room holds them (later edits
    /// show). `video` is the room's video asset (fixed with the room),
    /// recorded so the entitlement opens it like a `Video` item.
    Review {
        id: String,
        title: String,
        room: String,
        video: String,
    },
    /// A document of the coach (a PDF, an image) handed out as it is.
    Attachment {
        id: String,
        title: String,
        asset: String,
    },
}

impl ProgramItem {
    pub fn id(&self) -> &str {
        match self {
            ProgramItem::Video { id, .. }
            | ProgramItem::Drill { id, .. }
            | ProgramItem::Review { id, .. }
            | ProgramItem::Attachment { id, .. } => id,
        }
    }
}

/// A training program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub id: String,
    pub coach: String,
    pub title: String,
    pub description: String,
    pub sport: String,
    /// An image or video asset id shown as the cover.
    pub cover: Option<String>,
    pub items: Vec<ProgramItem>,
    pub status: ProgramStatus,
    pub price: Price,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub published_ms: Option<u64>,
}

impl Program {
    /// The video asset ids the program shows (its videos and the videos
    /// of its reviews).
    pub fn videos(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|i| match i {
            ProgramItem::Video { asset, .. } => Some(asset.as_str()),
            ProgramItem::Review { video, .. } => Some(video.as_str()),
            ProgramItem::Drill { .. } | ProgramItem::Attachment { .. } => None,
        })
    }

    /// The documents the program attaches.
    pub fn attachments(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|i| match i {
            ProgramItem::Attachment { asset, .. } => Some(asset.as_str()),
            _ => None,
        })
    }

    /// The review rooms the program shows.
    pub fn review_rooms(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|i| match i {
            ProgramItem::Review { room, .. } => Some(room.as_str()),
            _ => None,
        })
    }
}

/// Why a user may open a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Free,
    Purchase,
    Subscription,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntitlementStatus {
    Active,
    Revoked,
}

/// A user's enrollment in a program (one record per user and program; a
/// later grant replaces a revoked one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    pub user: String,
    pub program: String,
    pub source: Source,
    pub status: EntitlementStatus,
    pub granted_ms: u64,
    pub revoked_ms: Option<u64>,
    /// What granted it: the order id of a purchase.
    pub reference: Option<String>,
}

/// An item a user marked done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemProgress {
    pub user: String,
    pub program: String,
    pub item: String,
    pub done_ms: u64,
}

/// Where a checkout stands. Only moves forward: open → paid → disputed
/// → refunded (open → refunded when the refund's event came first), or
/// open → expired. Disputed (a chargeback opened) and refunded both
/// revoke what the order granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    Expired,
    Paid,
    Refunded,
    /// A chargeback (dispute) was opened on its payment.
    Disputed,
}

/// A checkout of a one-time program (id: the provider's checkout session
/// id). `user` is the buyer. The fields marked "since revenue analytics"
/// decode as their defaults from orders stored before them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The Checkout Session's id, or the invoice's.
    pub id: String,
    pub user: String,
    pub program: String,
    /// The program's coach (who is paid); empty when unknown (an order
    /// stored before revenue analytics). Never changes once stored:
    /// [`ProgramStore::orders_of_coach`] indexes it.
    #[serde(default)]
    pub coach: String,
    pub amount: u64,
    pub currency: String,
    /// The platform's fee taken from `amount` (the destination charge's
    /// application fee), same currency (since revenue analytics; 0
    /// before).
    #[serde(default)]
    pub fee: u64,
    pub status: OrderStatus,
    /// The provider's payment (PaymentIntent id) once known: refunds name
    /// it.
    pub payment: Option<String>,
    /// When it was first seen paid (since revenue analytics).
    #[serde(default)]
    pub paid_ms: Option<u64>,
    /// Never changes once stored: [`ProgramStore::orders_created`] and
    /// [`ProgramStore::orders_of_coach`] read by it.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Incremented by every write; [`ProgramStore::put_order`] stores an
    /// order only over the version before it.
    pub version: u64,
    /// A checkout or a subscription's invoice (orders stored before
    /// invoices were recorded are checkouts).
    #[serde(default)]
    pub kind: OrderKind,
}

/// What an order is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// A Checkout Session of a one-time price: its status opens and closes
    /// the program.
    #[default]
    Checkout,
    /// A paid invoice of a program's own subscription: money for the
    /// revenue figures; the subscription's state, not the invoice, opens
    /// and closes the program.
    Invoice,
}

/// One page of orders by creation time: those with `from_ms <=
/// created_ms < to_ms`, ordered by (`created_ms`, `id`), strictly after
/// `after` (the (`created_ms`, `id`) of the last order of the previous
/// page), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRange {
    pub from_ms: u64,
    pub to_ms: u64,
    pub after: Option<(u64, String)>,
    pub limit: usize,
}

impl OrderRange {
    /// The first page of `[from_ms, to_ms)`.
    pub fn new(from_ms: u64, to_ms: u64, limit: usize) -> OrderRange {
        OrderRange {
            from_ms,
            to_ms,
            after: None,
            limit,
        }
    }

    /// Does `o` belong to this page's range (past the cursor)? Adapters
    /// filter with it after reading an index.
    pub fn admits(&self, o: &Order) -> bool {
        o.created_ms >= self.from_ms
            && o.created_ms < self.to_ms
            && self
                .after
                .as_ref()
                .is_none_or(|(ms, id)| (o.created_ms, o.id.as_str()) > (*ms, id.as_str()))
    }

    /// The range of the page after `page` (`None` when `page` was the
    /// last: shorter than the limit).
    pub fn next(&self, page: &[Order]) -> Option<OrderRange> {
        let last = page.last().filter(|_| page.len() >= self.limit)?;
        Some(OrderRange {
            after: Some((last.created_ms, last.id.clone())),
            ..self.clone()
        })
    }
}

/// The UTC calendar month (year, month 1-12) of `ms` since the epoch
/// (the proleptic Gregorian calendar; days from civil, H. Hinnant).
pub fn month_of_ms(ms: u64) -> (i64, u32) {
    let days = (ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Milliseconds since the epoch at the start (00:00 UTC on the 1st) of
/// `month` (1-12) of `year`; `None` before 1970.
pub fn month_start_ms(year: i64, month: u32) -> Option<u64> {
    if !(1..=12).contains(&month) || year < 1970 {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok()?.checked_mul(86_400_000)
}

/// A webhook event as received: stored (by its id, once) before anything
/// is applied, then marked applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
    pub kind: String,
    /// The event's `created` (seconds).
    pub created: i64,
    /// The raw body, exactly as signed.
    pub body: Vec<u8>,
    pub received_ms: u64,
    pub applied_ms: Option<u64>,
    /// Why it was not applied yet (e.g. waiting for an earlier event).
    pub note: Option<String>,
}

/// Programs, entitlements, progress, orders and webhook receipts; and,
/// as every program store is one, the billing records
/// ([`crate::billing::BillingStore`]).
#[async_trait]
pub trait ProgramStore: crate::billing::BillingStore + Send + Sync + 'static {
    /// Creates or replaces a program.
    async fn put_program(&self, p: &Program) -> Result<(), StoreError>;
    async fn program(&self, id: &str) -> Result<Option<Program>, StoreError>;
    /// A coach's programs (drafts too) by id, at most `limit`.
    async fn programs_of(&self, coach: &str, limit: usize) -> Result<Vec<Program>, StoreError>;

    /// Creates or replaces the entitlement of (user, program).
    async fn put_entitlement(&self, e: &Entitlement) -> Result<(), StoreError>;
    async fn entitlement(
        &self,
        user: &str,
        program: &str,
    ) -> Result<Option<Entitlement>, StoreError>;
    /// A user's entitlements (revoked ones too) by program id.
    async fn entitlements_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError>;
    /// A program's entitlements (revoked ones too) by user id.
    async fn entitlements_to(
        &self,
        program: &str,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError>;

    /// Records an item as done (again: the later time wins).
    async fn put_progress(&self, p: &ItemProgress) -> Result<(), StoreError>;
    /// A user's done items of a program, by item id.
    async fn progress(&self, user: &str, program: &str) -> Result<Vec<ItemProgress>, StoreError>;

    /// Stores `o` if the stored order has version `o.version - 1` (none
    /// stored for version 1); `Ok(false)` otherwise, nothing written.
    async fn put_order(&self, o: &Order) -> Result<bool, StoreError>;
    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError>;
    /// The order paid by the provider's payment `payment`.
    async fn order_by_payment(&self, payment: &str) -> Result<Option<Order>, StoreError>;
    /// One page (see [`OrderRange`]) of the orders whose `coach` is
    /// `coach`, oldest created first.
    async fn orders_of_coach(
        &self,
        coach: &str,
        range: &OrderRange,
    ) -> Result<Vec<Order>, StoreError>;
    /// One page (see [`OrderRange`]) of every coach's orders, oldest
    /// created first.
    async fn orders_created(&self, range: &OrderRange) -> Result<Vec<Order>, StoreError>;

    /// Stores a receipt unless one with its id exists: `Ok(true)` when new.
    async fn add_receipt(&self, r: &Receipt) -> Result<bool, StoreError>;
    /// Replaces a stored receipt (marking it applied, or noting why not).
    async fn update_receipt(&self, r: &Receipt) -> Result<(), StoreError>;
    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, StoreError>;
    /// Receipts not applied yet, oldest received first (ties by id).
    async fn pending_receipts(&self, limit: usize) -> Result<Vec<Receipt>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_round_trip_over_the_calendar() {
        assert_eq!(month_of_ms(0), (1970, 1));
        assert_eq!(month_start_ms(1970, 1), Some(0));
        // 2024-02-29T23:59:59.999Z and the next millisecond.
        let march = month_start_ms(2024, 3).unwrap();
        assert_eq!(march, 1_709_251_200_000);
        assert_eq!(month_of_ms(march - 1), (2024, 2));
        assert_eq!(month_of_ms(march), (2024, 3));
        assert_eq!(month_start_ms(2026, 12).unwrap(), 1_796_083_200_000);
        assert_eq!(month_of_ms(1_796_083_200_000 - 1), (2026, 11));
        for year in [1970, 1999, 2000, 2024, 2100] {
            for month in 1..=12 {
                let ms = month_start_ms(year, month).unwrap();
                assert_eq!(month_of_ms(ms), (year, month));
                assert_eq!(month_of_ms(ms + 86_400_000 * 27), (year, month));
            }
        }
        assert_eq!(month_start_ms(1969, 12), None);
        assert_eq!(month_start_ms(2024, 13), None);
    }

    #[test]
    fn a_range_admits_past_its_cursor_only() {
        let o = |ms: u64, id: &str| Order {
            id: id.into(),
            user: "u".into(),
            program: "p".into(),
            coach: "c".into(),
            amount: 1,
            currency: "eur".into(),
            fee: 0,
            status: OrderStatus::Paid,
            payment: None,
            paid_ms: None,
            created_ms: ms,
            updated_ms: ms,
            version: 1,
            kind: OrderKind::Checkout,
        };
        let mut r = OrderRange::new(10, 20, 2);
        assert!(r.admits(&o(10, "a")) && !r.admits(&o(20, "a")) && !r.admits(&o(9, "a")));
        let page = [o(10, "a"), o(10, "b")];
        r = r.next(&page).unwrap();
        assert!(!r.admits(&o(10, "a")) && !r.admits(&o(10, "b")));
        assert!(r.admits(&o(10, "c")) && r.admits(&o(11, "a")));
        assert_eq!(r.next(&page[..1]), None);
    }
}
