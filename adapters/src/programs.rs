//! The training-program port ([`ProgramStore`], issue 12): programs a coach
//! sells or gives away, who may open them ([`Entitlement`]), what each
//! athlete finished ([`ItemProgress`]), checkout [`Order`]s and the
//! payment provider's webhook [`Receipt`]s. Adapters: the embedded store
//! (`crate::embedded::programs`), PostgreSQL (`crate::postgres`,
//! `sql/006_programs.sql`) and ScyllaDB (`crate::scylla`,
//! `cql/009_programs.cql`; like the rest of that adapter, not run against
//! a ScyllaDB server here); each runs `crate::conformance::programs`.
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
}

impl ProgramItem {
    pub fn id(&self) -> &str {
        match self {
            ProgramItem::Video { id, .. } | ProgramItem::Drill { id, .. } => id,
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
    /// The video asset ids the program shows.
    pub fn videos(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|i| match i {
            ProgramItem::Video { asset, .. } => Some(asset.as_str()),
            ProgramItem::Drill { .. } => None,
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
/// id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub user: String,
    pub program: String,
    pub amount: u64,
    pub currency: String,
    pub status: OrderStatus,
    /// The provider's payment (PaymentIntent id) once known: refunds name
    /// it.
    pub payment: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Incremented by every write; [`ProgramStore::put_order`] stores an
    /// order only over the version before it.
    pub version: u64,
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

    /// Stores a receipt unless one with its id exists: `Ok(true)` when new.
    async fn add_receipt(&self, r: &Receipt) -> Result<bool, StoreError>;
    /// Replaces a stored receipt (marking it applied, or noting why not).
    async fn update_receipt(&self, r: &Receipt) -> Result<(), StoreError>;
    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, StoreError>;
    /// Receipts not applied yet, oldest received first (ties by id).
    async fn pending_receipts(&self, limit: usize) -> Result<Vec<Receipt>, StoreError>;
}
