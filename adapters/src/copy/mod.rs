//! Moving a deployment between stores (`chalktalk store copy`): the
//! [`Export`] port that lists what a store holds, [`copy`] that moves all
//! of it through the ordinary ports of the target, and [`Summary`] that
//! counts both sides to verify the result.
//!
//! The copy writes only through the target's ports (`create_room`,
//! `append_room_events`, `put_cursor`, `Kv::apply`, `put_program`,
//! `put_order`, `add_receipt`, `put_subscription`, ...), so it gets the
//! target's own checks and durability. It is resumable: rooms, threads and
//! inboxes continue after the target's head, memberships and cursors are
//! idempotent, key-value rows, assets and jobs are overwritten with the
//! source's, and the records of the program and billing ports
//! (`records.rs`) are written where the target's differ (versioned ones,
//! orders and subscriptions, by stepping the target's version up to the
//! source's). Run it with the source node stopped.

mod records;
mod run;
mod summary;
mod verify;

use async_trait::async_trait;
use chalktalk_actors::encoder::MediaStore;
use chalktalk_actors::store::{Store, StoreError};

use crate::kv::Kv;
use crate::programs::ProgramStore;

pub use run::{CopyError, Progress, copy};

pub use summary::{Summary, summarize};

/// What a store holds ids of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// Review rooms.
    Rooms,
    /// Chat threads.
    Threads,
    /// Users with at least one inbox event.
    Inboxes,
    /// Users with at least one membership.
    Members,
    /// Media assets.
    Assets,
    /// Media jobs.
    Jobs,
    /// Training programs (with their items).
    Programs,
    /// Entitlements, as [`pair`]s (user, program).
    Entitlements,
    /// The (user, program) [`pair`]s with at least one item done.
    Progress,
    /// Checkout orders.
    Orders,
    /// Payment webhook receipts (event ids).
    Receipts,
    /// Billing subscriptions.
    Subscriptions,
    /// Users with an admin's plan override.
    PlanOverrides,
    /// Users with at least one billing audit entry about them.
    Audits,
    /// Coaches with a payout (Stripe Connect) account.
    PayoutAccounts,
}

impl Listing {
    pub const ALL: [Listing; 15] = [
        Listing::Rooms,
        Listing::Threads,
        Listing::Inboxes,
        Listing::Members,
        Listing::Assets,
        Listing::Jobs,
        Listing::Programs,
        Listing::Entitlements,
        Listing::Progress,
        Listing::Orders,
        Listing::Receipts,
        Listing::Subscriptions,
        Listing::PlanOverrides,
        Listing::Audits,
        Listing::PayoutAccounts,
    ];
}

/// Separates the two parts of a [`pair`] id. Ids never hold it
/// (PostgreSQL text cannot), and it sorts before every other character,
/// so pair ids sort as the pairs do (by the first part, then the second).
pub const PAIR_SEP: char = '\0';

/// The id of the pair (`a`, `b`) in a listing of pairs
/// ([`Listing::Entitlements`], [`Listing::Progress`]).
pub fn pair(a: &str, b: &str) -> String {
    format!("{a}{PAIR_SEP}{b}")
}

/// The parts of a [`pair`] id; `(id, None)` for an id without the
/// separator (a listing cursor: every pair whose first part is at least
/// `id`).
pub fn unpair(id: &str) -> (&str, Option<&str>) {
    match id.split_once(PAIR_SEP) {
        Some((a, b)) => (a, Some(b)),
        None => (id, None),
    }
}

/// A key-value row: namespace, key, value.
pub type KvRow = (String, String, Vec<u8>);

/// Lists everything a store holds, in pages (byte order of ids).
#[async_trait]
pub trait Export: Send + Sync + 'static {
    /// Ids of `what` greater than `after` (`""`: from the start),
    /// ascending, at most `limit`.
    async fn list(
        &self,
        what: Listing,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Key-value rows after `(ns, key)` (`("", "")`: from the start), in
    /// (namespace, key) order, at most `limit`.
    async fn kv_rows(&self, after: (&str, &str), limit: usize) -> Result<Vec<KvRow>, StoreError>;
}

/// Every port a deployment's data lives behind: what a copy writes to.
/// (A [`ProgramStore`] is a [`crate::billing::BillingStore`] too.)
pub trait Target: Store + MediaStore + Kv + ProgramStore {}
impl<T: Store + MediaStore + Kv + ProgramStore> Target for T {}

/// A [`Target`] that can also list what it holds: what a copy reads from.
pub trait Backend: Target + Export {}
impl<T: Target + Export> Backend for T {}

#[cfg(test)]
mod tests {
    use crate::EmbeddedStore;
    use crate::conformance::copy::copies_everything;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_to_embedded() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = EmbeddedStore::open(a.path()).unwrap();
        let to = EmbeddedStore::open(b.path()).unwrap();
        copies_everything(&*from, &*to).await;
    }
}
