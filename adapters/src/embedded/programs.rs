//! [`ProgramStore`] for the embedded store, laid out like
//! `sql/006_programs.sql` (a table per record kind, an index table per
//! other order read):
//!
//! - `programs`: id -> `Program`; `programs_by_coach`: (coach, id) -> ();
//! - `entitlements`: (user, program) -> `Entitlement`;
//!   `entitlements_by_program`: (program, user) -> ();
//! - `program_progress`: (user, program, item) -> `ItemProgress`;
//! - `orders`: id -> (version, `Order`); `orders_by_payment`: payment -> id;
//!   `orders_by_coach`: (coach, created_ms, id) -> ();
//!   `orders_by_created`: (created_ms, id) -> () (both written with every
//!   stored version; an order stored before them is in neither);
//! - `receipts`: id -> (received_ms, `Receipt`); `receipts_pending`:
//!   (received_ms, id) -> () while not applied.
//!
//! Writes go through the store's writer thread (group commit, durable when
//! the future resolves); the conditions of `put_order` and `add_receipt`
//! are checked inside that transaction.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use redb::{
    ReadTransaction, ReadableTable, StorageError, Table, TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;

use super::{EmbeddedStore, decode, encode, unavailable};
use crate::programs::{
    Entitlement, ItemProgress, Order, OrderRange, Program, ProgramStore, Receipt,
};

pub(super) const PROGRAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("programs");
const BY_COACH: TableDefinition<(&str, &str), ()> = TableDefinition::new("programs_by_coach");
pub(super) const ENTITLEMENTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("entitlements");
const BY_PROGRAM: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("entitlements_by_program");
pub(super) const PROGRESS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("program_progress");
pub(super) const ORDERS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("orders");
const BY_PAYMENT: TableDefinition<&str, &str> = TableDefinition::new("orders_by_payment");
const ORDERS_BY_COACH: TableDefinition<(&str, u64, &str), ()> =
    TableDefinition::new("orders_by_coach");
const ORDERS_BY_CREATED: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("orders_by_created");
pub(super) const RECEIPTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("receipts");
const PENDING: TableDefinition<(u64, &str), ()> = TableDefinition::new("receipts_pending");

/// A program write, encoded by the caller.
pub(crate) enum ProgramOp {
    Program {
        id: String,
        coach: String,
        body: Vec<u8>,
    },
    Entitlement {
        user: String,
        program: String,
        body: Vec<u8>,
    },
    Progress {
        user: String,
        program: String,
        item: String,
        body: Vec<u8>,
    },
    Order {
        id: String,
        version: u64,
        payment: Option<String>,
        coach: String,
        created_ms: u64,
        body: Vec<u8>,
    },
    Receipt {
        id: String,
        received_ms: u64,
        pending: bool,
        /// Insert only if absent (`add_receipt`).
        new: bool,
        body: Vec<u8>,
    },
}

/// The program tables of one write transaction.
pub(super) struct ProgramTables<'txn> {
    programs: Table<'txn, &'static str, &'static [u8]>,
    by_coach: Table<'txn, (&'static str, &'static str), ()>,
    entitlements: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    by_program: Table<'txn, (&'static str, &'static str), ()>,
    progress: Table<'txn, (&'static str, &'static str, &'static str), &'static [u8]>,
    orders: Table<'txn, &'static str, (u64, &'static [u8])>,
    by_payment: Table<'txn, &'static str, &'static str>,
    orders_by_coach: Table<'txn, (&'static str, u64, &'static str), ()>,
    orders_by_created: Table<'txn, (u64, &'static str), ()>,
    receipts: Table<'txn, &'static str, (u64, &'static [u8])>,
    pending: Table<'txn, (u64, &'static str), ()>,
}

/// Opens (creating on first use) the program tables.
pub(super) fn open_tables(txn: &WriteTransaction) -> Result<ProgramTables<'_>, StoreError> {
    Ok(ProgramTables {
        programs: txn.open_table(PROGRAMS).map_err(unavailable)?,
        by_coach: txn.open_table(BY_COACH).map_err(unavailable)?,
        entitlements: txn.open_table(ENTITLEMENTS).map_err(unavailable)?,
        by_program: txn.open_table(BY_PROGRAM).map_err(unavailable)?,
        progress: txn.open_table(PROGRESS).map_err(unavailable)?,
        orders: txn.open_table(ORDERS).map_err(unavailable)?,
        by_payment: txn.open_table(BY_PAYMENT).map_err(unavailable)?,
        orders_by_coach: txn.open_table(ORDERS_BY_COACH).map_err(unavailable)?,
        orders_by_created: txn.open_table(ORDERS_BY_CREATED).map_err(unavailable)?,
        receipts: txn.open_table(RECEIPTS).map_err(unavailable)?,
        pending: txn.open_table(PENDING).map_err(unavailable)?,
    })
}

/// Applies one program write; `Ok(Ok(false))` when its condition failed.
pub(super) fn apply(
    t: &mut ProgramTables<'_>,
    op: &ProgramOp,
) -> Result<Result<bool, StoreError>, StorageError> {
    match op {
        ProgramOp::Program { id, coach, body } => {
            t.programs.insert(id.as_str(), body.as_slice())?;
            t.by_coach.insert((coach.as_str(), id.as_str()), ())?;
        }
        ProgramOp::Entitlement {
            user,
            program,
            body,
        } => {
            t.entitlements
                .insert((user.as_str(), program.as_str()), body.as_slice())?;
            t.by_program.insert((program.as_str(), user.as_str()), ())?;
        }
        ProgramOp::Progress {
            user,
            program,
            item,
            body,
        } => {
            t.progress.insert(
                (user.as_str(), program.as_str(), item.as_str()),
                body.as_slice(),
            )?;
        }
        ProgramOp::Order {
            id,
            version,
            payment,
            coach,
            created_ms,
            body,
        } => {
            let stored = t.orders.get(id.as_str())?.map(|g| g.value().0);
            if stored.unwrap_or(0) + 1 != *version {
                return Ok(Ok(false));
            }
            t.orders.insert(id.as_str(), (*version, body.as_slice()))?;
            if let Some(p) = payment {
                t.by_payment.insert(p.as_str(), id.as_str())?;
            }
            if !coach.is_empty() {
                t.orders_by_coach
                    .insert((coach.as_str(), *created_ms, id.as_str()), ())?;
            }
            t.orders_by_created.insert((*created_ms, id.as_str()), ())?;
        }
        ProgramOp::Receipt {
            id,
            received_ms,
            pending,
            new,
            body,
        } => {
            if *new && t.receipts.get(id.as_str())?.is_some() {
                return Ok(Ok(false));
            }
            t.receipts
                .insert(id.as_str(), (*received_ms, body.as_slice()))?;
            if *pending {
                t.pending.insert((*received_ms, id.as_str()), ())?;
            } else {
                t.pending.remove((*received_ms, id.as_str()))?;
            }
        }
    }
    Ok(Ok(true))
}

/// Values of `table` under the keys an index gives, in index order.
fn get<V: DeserializeOwned>(
    txn: &ReadTransaction,
    def: TableDefinition<&str, &[u8]>,
    what: &str,
    id: &str,
) -> Result<Option<V>, StoreError> {
    let t = txn.open_table(def).map_err(unavailable)?;
    let g = t.get(id).map_err(unavailable)?;
    g.map(|g| decode(what, id, g.value())).transpose()
}

fn get_pair<V: DeserializeOwned>(
    txn: &ReadTransaction,
    def: TableDefinition<(&str, &str), &[u8]>,
    what: &str,
    a: &str,
    b: &str,
) -> Result<Option<V>, StoreError> {
    let t = txn.open_table(def).map_err(unavailable)?;
    let g = t.get((a, b)).map_err(unavailable)?;
    g.map(|g| decode(what, &format!("{a}/{b}"), g.value()))
        .transpose()
}

/// The second parts of the keys of index `def` whose first part is `first`.
fn seconds(
    txn: &ReadTransaction,
    def: TableDefinition<(&str, &str), ()>,
    first: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let t = txn.open_table(def).map_err(unavailable)?;
    let mut out = Vec::new();
    for entry in t.range((first, "")..).map_err(unavailable)? {
        let (k, _) = entry.map_err(unavailable)?;
        let (f, s) = k.value();
        if f != first || out.len() >= limit {
            break;
        }
        out.push(s.to_owned());
    }
    Ok(out)
}

fn order_of(txn: &ReadTransaction, id: &str) -> Result<Option<Order>, StoreError> {
    let t = txn.open_table(ORDERS).map_err(unavailable)?;
    let g = t.get(id).map_err(unavailable)?;
    g.map(|g| decode("order", id, g.value().1)).transpose()
}

/// The first index key a page may hold: its cursor (skipped by
/// `OrderRange::admits`) or the start of its range.
fn start_of(range: &OrderRange) -> (u64, &str) {
    match &range.after {
        Some((ms, id)) if *ms >= range.from_ms => (*ms, id.as_str()),
        _ => (range.from_ms, ""),
    }
}

fn receipt_of(txn: &ReadTransaction, id: &str) -> Result<Option<Receipt>, StoreError> {
    let t = txn.open_table(RECEIPTS).map_err(unavailable)?;
    let g = t.get(id).map_err(unavailable)?;
    g.map(|g| decode("receipt", id, g.value().1)).transpose()
}

impl EmbeddedStore {
    async fn write_programs(&self, op: ProgramOp) -> Result<bool, StoreError> {
        self.write(super::Op::Programs(op)).await
    }

    async fn put_receipt(&self, r: &Receipt, new: bool) -> Result<bool, StoreError> {
        self.write_programs(ProgramOp::Receipt {
            id: r.id.clone(),
            received_ms: r.received_ms,
            pending: r.applied_ms.is_none(),
            new,
            body: encode("receipt", r)?,
        })
        .await
    }
}

#[async_trait]
impl ProgramStore for EmbeddedStore {
    async fn put_program(&self, p: &Program) -> Result<(), StoreError> {
        self.write_programs(ProgramOp::Program {
            id: p.id.clone(),
            coach: p.coach.clone(),
            body: encode("program", p)?,
        })
        .await
        .map(drop)
    }

    async fn program(&self, id: &str) -> Result<Option<Program>, StoreError> {
        let id = id.to_owned();
        self.read(move |txn| get(txn, PROGRAMS, "program", &id))
            .await
    }

    async fn programs_of(&self, coach: &str, limit: usize) -> Result<Vec<Program>, StoreError> {
        let coach = coach.to_owned();
        self.read(move |txn| {
            let mut out = Vec::new();
            for id in seconds(txn, BY_COACH, &coach, limit)? {
                out.extend(get::<Program>(txn, PROGRAMS, "program", &id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn put_entitlement(&self, e: &Entitlement) -> Result<(), StoreError> {
        self.write_programs(ProgramOp::Entitlement {
            user: e.user.clone(),
            program: e.program.clone(),
            body: encode("entitlement", e)?,
        })
        .await
        .map(drop)
    }

    async fn entitlement(
        &self,
        user: &str,
        program: &str,
    ) -> Result<Option<Entitlement>, StoreError> {
        let (user, program) = (user.to_owned(), program.to_owned());
        self.read(move |txn| get_pair(txn, ENTITLEMENTS, "entitlement", &user, &program))
            .await
    }

    async fn entitlements_of(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let user = user.to_owned();
        self.read(move |txn| {
            let t = txn.open_table(ENTITLEMENTS).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in t.range((user.as_str(), "")..).map_err(unavailable)? {
                let (k, v) = entry.map_err(unavailable)?;
                let (u, p) = k.value();
                if u != user || out.len() >= limit {
                    break;
                }
                out.push(decode("entitlement", &format!("{u}/{p}"), v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn entitlements_to(
        &self,
        program: &str,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let program = program.to_owned();
        self.read(move |txn| {
            let mut out = Vec::new();
            for user in seconds(txn, BY_PROGRAM, &program, limit)? {
                out.extend(get_pair(txn, ENTITLEMENTS, "entitlement", &user, &program)?);
            }
            Ok(out)
        })
        .await
    }

    async fn put_progress(&self, p: &ItemProgress) -> Result<(), StoreError> {
        self.write_programs(ProgramOp::Progress {
            user: p.user.clone(),
            program: p.program.clone(),
            item: p.item.clone(),
            body: encode("progress", p)?,
        })
        .await
        .map(drop)
    }

    async fn progress(&self, user: &str, program: &str) -> Result<Vec<ItemProgress>, StoreError> {
        let (user, program) = (user.to_owned(), program.to_owned());
        self.read(move |txn| {
            let t = txn.open_table(PROGRESS).map_err(unavailable)?;
            let mut out = Vec::new();
            let start = (user.as_str(), program.as_str(), "");
            for entry in t.range(start..).map_err(unavailable)? {
                let (k, v) = entry.map_err(unavailable)?;
                let (u, p, i) = k.value();
                if u != user || p != program {
                    break;
                }
                out.push(decode("progress", &format!("{u}/{p}/{i}"), v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn put_order(&self, o: &Order) -> Result<bool, StoreError> {
        self.write_programs(ProgramOp::Order {
            id: o.id.clone(),
            version: o.version,
            payment: o.payment.clone(),
            coach: o.coach.clone(),
            created_ms: o.created_ms,
            body: encode("order", o)?,
        })
        .await
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let id = id.to_owned();
        self.read(move |txn| order_of(txn, &id)).await
    }

    async fn order_by_payment(&self, payment: &str) -> Result<Option<Order>, StoreError> {
        let payment = payment.to_owned();
        self.read(move |txn| {
            let t = txn.open_table(BY_PAYMENT).map_err(unavailable)?;
            let id = t
                .get(payment.as_str())
                .map_err(unavailable)?
                .map(|g| g.value().to_owned());
            match id {
                Some(id) => order_of(txn, &id),
                None => Ok(None),
            }
        })
        .await
    }

    async fn orders_of_coach(
        &self,
        coach: &str,
        range: &OrderRange,
    ) -> Result<Vec<Order>, StoreError> {
        let (coach, range) = (coach.to_owned(), range.clone());
        self.read(move |txn| {
            let t = txn.open_table(ORDERS_BY_COACH).map_err(unavailable)?;
            let (ms, id) = start_of(&range);
            let mut out = Vec::new();
            for entry in t.range((coach.as_str(), ms, id)..).map_err(unavailable)? {
                let (k, _) = entry.map_err(unavailable)?;
                let (c, created, id) = k.value();
                if c != coach || created >= range.to_ms || out.len() >= range.limit {
                    break;
                }
                out.extend(order_of(txn, id)?.filter(|o| o.coach == coach && range.admits(o)));
            }
            Ok(out)
        })
        .await
    }

    async fn orders_created(&self, range: &OrderRange) -> Result<Vec<Order>, StoreError> {
        let range = range.clone();
        self.read(move |txn| {
            let t = txn.open_table(ORDERS_BY_CREATED).map_err(unavailable)?;
            let (ms, id) = start_of(&range);
            let mut out = Vec::new();
            for entry in t.range((ms, id)..).map_err(unavailable)? {
                let (k, _) = entry.map_err(unavailable)?;
                let (created, id) = k.value();
                if created >= range.to_ms || out.len() >= range.limit {
                    break;
                }
                out.extend(order_of(txn, id)?.filter(|o| range.admits(o)));
            }
            Ok(out)
        })
        .await
    }

    async fn add_receipt(&self, r: &Receipt) -> Result<bool, StoreError> {
        self.put_receipt(r, true).await
    }

    async fn update_receipt(&self, r: &Receipt) -> Result<(), StoreError> {
        self.put_receipt(r, false).await.map(drop)
    }

    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, StoreError> {
        let id = id.to_owned();
        self.read(move |txn| receipt_of(txn, &id)).await
    }

    async fn pending_receipts(&self, limit: usize) -> Result<Vec<Receipt>, StoreError> {
        self.read(move |txn| {
            let t = txn.open_table(PENDING).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(unavailable)? {
                if out.len() >= limit {
                    break;
                }
                let (k, _) = entry.map_err(unavailable)?;
                let (_, id) = k.value();
                out.extend(receipt_of(txn, id)?.filter(|r| r.applied_ms.is_none()));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_program_conformance_and_survives_reopen() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        crate::conformance::programs::run_all(store.clone()).await;
        let r = crate::conformance::programs::receipt("evt_reopen", 7);
        assert!(store.add_receipt(&r).await.unwrap());
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.receipt("evt_reopen").await.unwrap(), Some(r.clone()));
        assert!(store.pending_receipts(1000).await.unwrap().contains(&r));
    }
}
