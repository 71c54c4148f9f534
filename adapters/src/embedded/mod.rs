//! The embedded adapter: one redb file, `chalktalk.redb`, in the data dir.
//!
//! Tables are sorted key-value maps laid out like the ScyllaDB tables in
//! `cql/`: partition key first, clustering key second. Values are
//! MessagePack (`rmp_serde::to_vec_named`), except where the CQL table has
//! plain columns (snapshot seq + bytes, cursor positions, membership).
//!
//! Writes: every write method hands its request to one writer thread and
//! waits for the answer. The writer takes the first queued request, drains
//! whatever else is already queued (up to [`MAX_BATCH`]), applies them all in
//! one write transaction and commits once with immediate durability (fsync),
//! so concurrent writers share one fsync (group commit). A request that fails
//! validation (a seq conflict) fails alone; it is checked before anything of
//! it is inserted. If the commit fails, every request of the batch gets
//! [`StoreError::Unavailable`]. A write whose future is dropped after it was
//! queued may still be applied.
//!
//! Reads: redb read transactions (MVCC snapshots) on the blocking pool.

pub mod billing;
mod export;
pub mod kv;
pub mod media;
pub mod programs;

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use async_trait::async_trait;
use chalktalk_actors::store::{
    EncodedEvent, MembershipKind, RoomMeta, Snapshot, Store, StoreError, ThreadMeta,
};
use chalktalk_protocol::{Cursor, InboxEvent, Message, RoomEvent};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, StorageError, Table,
    TableDefinition,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

/// Name of the database file inside the data dir.
pub const FILE_NAME: &str = "chalktalk.redb";
/// Page cache of the database file.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Most requests applied in one write transaction.
pub const MAX_BATCH: usize = 4096;

/// Room id -> `RoomMeta`.
const ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("rooms");
/// (room id, seq) -> `RoomEvent`.
const ROOM_EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("room_events");
/// Room id -> (snapshot seq, snapshot bytes).
const ROOM_SNAPSHOTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("room_snapshots");
/// Thread id -> `ThreadMeta`.
const THREADS: TableDefinition<&str, &[u8]> = TableDefinition::new("threads");
/// (thread id, seq) -> `Message`.
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// (thread id, user id) -> (delivered, read).
const READ_CURSORS: TableDefinition<(&str, &str), (u64, u64)> =
    TableDefinition::new("read_cursors");
/// (user id, seq) -> `InboxEvent`.
const INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox");
/// (kind, id) -> fencing epoch of a room's (or thread's) log.
const FENCES: TableDefinition<(&str, &str), u64> = TableDefinition::new("fences");
/// (user id, kind, target id) -> ().
const MEMBERSHIPS: TableDefinition<(&str, u8, &str), ()> = TableDefinition::new("memberships");

/// A table keyed by (partition id, seq).
type SeqTable = TableDefinition<'static, (&'static str, u64), &'static [u8]>;

/// The embedded (redb) implementation of [`Store`].
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// `None` only while dropping.
    tx: Option<mpsc::Sender<Request>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    commits: AtomicU64,
    /// The error of the last commit, cleared by the next successful one.
    failing: Mutex<Option<StoreError>>,
}

/// One write, as the writer thread applies it. Values are encoded by the
/// caller so the writer only validates and inserts.
enum Op {
    CreateRoom {
        id: String,
        meta: Vec<u8>,
    },
    AppendRoomEvents {
        room: String,
        epoch: u64,
        first: u64,
        /// Shared with the room's frames (encoded once).
        events: Vec<bytes::Bytes>,
    },
    PutRoomSnapshot {
        room: String,
        seq: u64,
        bytes: Vec<u8>,
    },
    FenceRoom {
        room: String,
        epoch: u64,
    },
    FenceThread {
        thread: String,
        epoch: u64,
    },
    CreateThread {
        id: String,
        meta: Vec<u8>,
    },
    /// Adds or removes one member of a thread (room threads).
    SetThreadMember {
        thread: String,
        user: String,
        member: bool,
    },
    AppendMessages {
        thread: String,
        epoch: u64,
        first: u64,
        msgs: Vec<Vec<u8>>,
    },
    PutCursor {
        thread: String,
        user: String,
        delivered: u64,
        read: u64,
    },
    AppendInbox {
        user: String,
        seq: u64,
        event: Vec<u8>,
    },
    AddMembership {
        user: String,
        kind: u8,
        id: String,
    },
    RemoveMembership {
        user: String,
        kind: u8,
        id: String,
    },
    /// Assets and media jobs (src/store/media.rs).
    Media(media::MediaOp),
    /// Namespaced key-value records (src/store/kv.rs).
    Kv(crate::kv::KvBatch),
    /// Programs, entitlements, orders, receipts (`programs.rs`).
    Programs(programs::ProgramOp),
    /// Subscriptions, plan overrides, the audit log (`billing.rs`).
    Billing(billing::BillingOp),
}

/// A write and where its result goes. `Ok(true)` means created (for the
/// create ops) and is meaningless for the others.
struct Request {
    op: Op,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// The open tables of one write transaction.
struct Tables<'txn> {
    rooms: Table<'txn, &'static str, &'static [u8]>,
    room_events: Table<'txn, (&'static str, u64), &'static [u8]>,
    room_snapshots: Table<'txn, &'static str, (u64, &'static [u8])>,
    threads: Table<'txn, &'static str, &'static [u8]>,
    messages: Table<'txn, (&'static str, u64), &'static [u8]>,
    read_cursors: Table<'txn, (&'static str, &'static str), (u64, u64)>,
    inbox: Table<'txn, (&'static str, u64), &'static [u8]>,
    memberships: Table<'txn, (&'static str, u8, &'static str), ()>,
    fences: Table<'txn, (&'static str, &'static str), u64>,
    media: media::MediaTables<'txn>,
    kv: kv::KvTable<'txn>,
    programs: programs::ProgramTables<'txn>,
    billing: billing::BillingTables<'txn>,
}

impl EmbeddedStore {
    /// Opens (creating if needed) `dir/chalktalk.redb` and starts the writer
    /// thread. Blocking: call it before serving, or from `spawn_blocking`.
    pub fn open(dir: &Path) -> Result<Arc<EmbeddedStore>, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable(format!("create {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        // redb's default page cache is 1 GiB; the hot data (recent events,
        // snapshots) is small and the actors keep their own recent rings.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| unavailable(format!("open {}: {e}", path.display())))?;
        // Create every table once so read transactions can always open them.
        let txn = db.begin_write().map_err(unavailable)?;
        open_tables(&txn)?;
        txn.commit().map_err(unavailable)?;

        let db = Arc::new(db);
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::channel();
        let writer = {
            let (db, stats) = (db.clone(), stats.clone());
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer_loop(&db, &rx, &stats))
                .map_err(|e| unavailable(format!("spawn writer thread: {e}")))?
        };
        Ok(Arc::new(EmbeddedStore {
            db,
            tx: Some(tx),
            writer: Mutex::new(Some(writer)),
            stats,
        }))
    }

    /// Write transactions committed since open (each holds a batch).
    /// `Err` while commits fail (the last one failed), or when the writer
    /// thread is gone; `Ok` once a commit succeeds again.
    pub fn writer_health(&self) -> Result<(), StoreError> {
        if self.tx.is_none()
            || self
                .writer
                .lock()
                .map(|w| w.as_ref().is_none_or(|h| h.is_finished()))
                .unwrap_or(true)
        {
            return Err(StoreError::Unavailable(
                "store writer thread is not running".into(),
            ));
        }
        match self
            .stats
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn commit_count(&self) -> u64 {
        self.stats.commits.load(Ordering::Relaxed)
    }

    /// Queues a media write on the writer thread (group-committed).
    pub(crate) async fn write_media(&self, op: media::MediaOp) -> Result<bool, StoreError> {
        self.write(Op::Media(op)).await
    }

    async fn write(&self, op: Op) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or_else(writer_gone)?;
        tx.send(Request { op, reply }).map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Queues a key-value batch on the writer thread (group-committed).
    pub(crate) async fn write_kv(&self, batch: crate::kv::KvBatch) -> Result<bool, StoreError> {
        self.write(Op::Kv(batch)).await
    }

    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(unavailable)?;
            f(&txn)
        })
        .await
        .map_err(|e| unavailable(format!("read task: {e}")))?
    }
}

impl Drop for EmbeddedStore {
    /// Stops the writer after it has answered everything queued, so that the
    /// file is closed when the drop returns (and can be opened again).
    fn drop(&mut self) {
        drop(self.tx.take());
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("store writer stopped".into())
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(value).map_err(|e| StoreError::Corrupt(format!("encode {what}: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(
    what: &str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what} {key}: {e}")))
}

// ---------------------------------------------------------------- writer --

fn open_tables(txn: &redb::WriteTransaction) -> Result<Tables<'_>, StoreError> {
    Ok(Tables {
        rooms: txn.open_table(ROOMS).map_err(unavailable)?,
        room_events: txn.open_table(ROOM_EVENTS).map_err(unavailable)?,
        room_snapshots: txn.open_table(ROOM_SNAPSHOTS).map_err(unavailable)?,
        threads: txn.open_table(THREADS).map_err(unavailable)?,
        messages: txn.open_table(MESSAGES).map_err(unavailable)?,
        read_cursors: txn.open_table(READ_CURSORS).map_err(unavailable)?,
        inbox: txn.open_table(INBOX).map_err(unavailable)?,
        memberships: txn.open_table(MEMBERSHIPS).map_err(unavailable)?,
        fences: txn.open_table(FENCES).map_err(unavailable)?,
        media: media::open_tables(txn)?,
        kv: kv::open_table(txn)?,
        programs: programs::open_tables(txn)?,
        billing: billing::open_tables(txn)?,
    })
}

fn writer_loop(db: &Database, rx: &mpsc::Receiver<Request>, stats: &Stats) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Blocks for the first request; ends when every sender is gone.
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let size = batch.len();
        let outcome = apply_batch(db, &batch);
        chalktalk_actors::metrics::metrics().store_commit(started.elapsed(), outcome.is_ok());
        {
            let mut failing = stats.failing.lock().unwrap_or_else(|e| e.into_inner());
            match &outcome {
                Ok(_) => {
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                    *failing = None;
                }
                Err(e) => *failing = Some(e.clone()),
            }
        }
        tracing::debug!(
            batch = size,
            commit_ms = started.elapsed().as_secs_f64() * 1e3,
            ok = outcome.is_ok(),
            "store commit"
        );
        match outcome {
            Ok(results) => {
                for (req, result) in batch.drain(..).zip(results) {
                    let _ = req.reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(batch = size, error = %e, "store commit failed");
                for req in batch.drain(..) {
                    let _ = req.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Applies a batch in one transaction and commits it. The outer error (the
/// transaction or the commit failed) is every request's answer; otherwise
/// each request has its own result.
fn apply_batch(
    db: &Database,
    batch: &[Request],
) -> Result<Vec<Result<bool, StoreError>>, StoreError> {
    let mut txn = db.begin_write().map_err(unavailable)?;
    txn.set_durability(Durability::Immediate)
        .map_err(unavailable)?;
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut tables = open_tables(&txn)?;
        for req in batch {
            results.push(apply(&mut tables, &req.op).map_err(unavailable)?);
        }
    }
    txn.commit().map_err(unavailable)?;
    Ok(results)
}

/// Applies one request. `Err` is a storage failure (the batch is abandoned);
/// `Ok(Err)` is this request's own failure, with nothing of it written.
fn apply(t: &mut Tables<'_>, op: &Op) -> Result<Result<bool, StoreError>, StorageError> {
    match op {
        Op::CreateRoom { id, meta } => create(&mut t.rooms, id, meta),
        Op::CreateThread { id, meta } => create(&mut t.threads, id, meta),
        Op::SetThreadMember {
            thread,
            user,
            member,
        } => set_member(&mut t.threads, thread, user, *member),
        Op::AppendRoomEvents {
            room,
            epoch,
            first,
            events,
        } => {
            let held = fence_of(&t.fences, "room", room)?;
            if held != *epoch {
                return Ok(Err(fenced("room", room, held, *epoch)));
            }
            append_seq(&mut t.room_events, "room", room, *first, events)
        }
        Op::FenceRoom { room, epoch } => {
            if t.rooms.get(room.as_str())?.is_none() {
                return Ok(Err(StoreError::Conflict(format!(
                    "no room {room} to fence"
                ))));
            }
            raise(&mut t.fences, "room", room, *epoch)
        }
        Op::FenceThread { thread, epoch } => {
            if t.threads.get(thread.as_str())?.is_none() {
                return Ok(Err(StoreError::Conflict(format!(
                    "no thread {thread} to fence"
                ))));
            }
            raise(&mut t.fences, "thread", thread, *epoch)
        }
        Op::AppendMessages {
            thread,
            epoch,
            first,
            msgs,
        } => {
            let held = fence_of(&t.fences, "thread", thread)?;
            if held != *epoch {
                return Ok(Err(fenced("thread", thread, held, *epoch)));
            }
            append_seq(&mut t.messages, "thread", thread, *first, msgs)
        }
        Op::AppendInbox { user, seq, event } => append_seq(
            &mut t.inbox,
            "inbox",
            user,
            *seq,
            std::slice::from_ref(event),
        ),
        Op::PutRoomSnapshot { room, seq, bytes } => {
            let stored = t.room_snapshots.get(room.as_str())?.map(|g| g.value().0);
            if stored.is_none_or(|s| *seq > s) {
                t.room_snapshots
                    .insert(room.as_str(), (*seq, bytes.as_slice()))?;
            }
            Ok(Ok(true))
        }
        Op::PutCursor {
            thread,
            user,
            delivered,
            read,
        } => {
            let key = (thread.as_str(), user.as_str());
            let stored = t.read_cursors.get(key)?.map(|g| g.value());
            let merged = match stored {
                Some((d, r)) => ((*delivered).max(d), (*read).max(r)),
                None => (*delivered, *read),
            };
            if stored != Some(merged) {
                t.read_cursors.insert(key, merged)?;
            }
            Ok(Ok(true))
        }
        Op::AddMembership { user, kind, id } => {
            t.memberships
                .insert((user.as_str(), *kind, id.as_str()), ())?;
            Ok(Ok(true))
        }
        Op::RemoveMembership { user, kind, id } => {
            t.memberships.remove((user.as_str(), *kind, id.as_str()))?;
            Ok(Ok(true))
        }
        Op::Media(op) => media::apply(&mut t.media, op),
        Op::Kv(batch) => kv::apply(&mut t.kv, batch),
        Op::Programs(op) => programs::apply(&mut t.programs, op),
        Op::Billing(op) => billing::apply(&mut t.billing, op),
    }
}

fn create(
    table: &mut Table<'_, &'static str, &'static [u8]>,
    id: &str,
    meta: &[u8],
) -> Result<Result<bool, StoreError>, StorageError> {
    if table.get(id)?.is_some() {
        return Ok(Ok(false));
    }
    table.insert(id, meta)?;
    Ok(Ok(true))
}

/// Adds or removes `user` in the stored members of `thread` (sorted);
/// `Ok(Ok(false))` when there is no such thread.
fn set_member(
    table: &mut Table<'_, &'static str, &'static [u8]>,
    thread: &str,
    user: &str,
    member: bool,
) -> Result<Result<bool, StoreError>, StorageError> {
    let mut meta: ThreadMeta = {
        let Some(g) = table.get(thread)? else {
            return Ok(Ok(false));
        };
        match decode("thread", thread, g.value()) {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        }
    };
    if !crate::seqs::set_member(&mut meta.members, user, member) {
        return Ok(Ok(true));
    }
    let bytes = match encode("thread", &meta) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    table.insert(thread, bytes.as_slice())?;
    Ok(Ok(true))
}

fn append_seq<V: AsRef<[u8]>>(
    table: &mut Table<'_, (&'static str, u64), &'static [u8]>,
    what: &str,
    id: &str,
    first: u64,
    values: &[V],
) -> Result<Result<bool, StoreError>, StorageError> {
    let head = head(table, id)?;
    if head.checked_add(1) != Some(first) {
        return Ok(Err(StoreError::Conflict(format!(
            "{what} {id}: append at seq {first} but head is {head}"
        ))));
    }
    for (seq, value) in (first..).zip(values) {
        table.insert((id, seq), value.as_ref())?;
    }
    Ok(Ok(true))
}

/// Raises the fence of `kind/id` to `epoch`; `Fenced` if it is higher.
fn raise(
    fences: &mut Table<'_, (&'static str, &'static str), u64>,
    kind: &'static str,
    id: &str,
    epoch: u64,
) -> Result<Result<bool, StoreError>, StorageError> {
    let held = fence_of(fences, kind, id)?;
    if held > epoch {
        return Ok(Err(fenced(kind, id, held, epoch)));
    }
    if held < epoch {
        fences.insert((kind, id), epoch)?;
    }
    Ok(Ok(true))
}

/// The fence of `kind/id` (0 if never fenced).
fn fence_of<T>(table: &T, kind: &str, id: &str) -> Result<u64, StorageError>
where
    T: ReadableTable<(&'static str, &'static str), u64>,
{
    Ok(table.get((kind, id))?.map(|g| g.value()).unwrap_or(0))
}

fn fenced(kind: &str, id: &str, held: u64, tried: u64) -> StoreError {
    StoreError::Fenced {
        what: format!("{kind} {id}"),
        held,
        tried,
    }
}

/// Highest seq stored under `id` (0 if none).
fn head<T>(table: &T, id: &str) -> Result<u64, StorageError>
where
    T: ReadableTable<(&'static str, u64), &'static [u8]>,
{
    match table.range((id, 0)..=(id, u64::MAX))?.next_back() {
        Some(entry) => Ok(entry?.0.value().1),
        None => Ok(0),
    }
}

// ----------------------------------------------------------------- reads --

fn read_head(txn: &ReadTransaction, def: SeqTable, id: &str) -> Result<u64, StoreError> {
    let table = txn.open_table(def).map_err(unavailable)?;
    head(&table, id).map_err(unavailable)
}

/// Values with seq in the range, ascending (or the last `limit` of it when
/// `newest` is set, still returned ascending).
fn read_seq<V: DeserializeOwned>(
    txn: &ReadTransaction,
    def: SeqTable,
    what: &str,
    id: &str,
    range: (Bound<u64>, Bound<u64>),
    limit: usize,
    newest: bool,
) -> Result<Vec<V>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let table = txn.open_table(def).map_err(unavailable)?;
    let bounds = (range.0.map(|s| (id, s)), range.1.map(|s| (id, s)));
    let iter = table.range(bounds).map_err(unavailable)?;
    let entries: Box<dyn Iterator<Item = _>> = if newest {
        Box::new(iter.rev().take(limit))
    } else {
        Box::new(iter.take(limit))
    };
    let mut out = Vec::with_capacity(limit.min(1024));
    for entry in entries {
        let (k, v) = entry.map_err(unavailable)?;
        let key = format!("{id}/{}", k.value().1);
        out.push(decode(what, &key, v.value())?);
    }
    if newest {
        out.reverse();
    }
    Ok(out)
}

fn after(after: u64) -> (Bound<u64>, Bound<u64>) {
    (Bound::Excluded(after), Bound::Included(u64::MAX))
}

fn read_meta<V: DeserializeOwned>(
    txn: &ReadTransaction,
    def: TableDefinition<&str, &[u8]>,
    what: &str,
    id: &str,
) -> Result<Option<V>, StoreError> {
    let table = txn.open_table(def).map_err(unavailable)?;
    let guard = table.get(id).map_err(unavailable)?;
    guard.map(|g| decode(what, id, g.value())).transpose()
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn health(&self) -> Result<(), StoreError> {
        self.writer_health()?;
        self.room_head("ready-probe").await.map(drop)
    }

    async fn create_room(&self, meta: &RoomMeta) -> Result<bool, StoreError> {
        let bytes = encode("room", meta)?;
        self.write(Op::CreateRoom {
            id: meta.id.clone(),
            meta: bytes,
        })
        .await
    }

    async fn room(&self, id: &str) -> Result<Option<RoomMeta>, StoreError> {
        let id = id.to_owned();
        self.read(move |txn| read_meta(txn, ROOMS, "room", &id))
            .await
    }

    async fn append_room_events(
        &self,
        room: &str,
        epoch: u64,
        events: &[EncodedEvent],
    ) -> Result<(), StoreError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        crate::seqs::consecutive("room", room, events.iter().map(EncodedEvent::seq))?;
        self.write(Op::AppendRoomEvents {
            room: room.to_owned(),
            epoch,
            first: first.seq(),
            events: events.iter().map(|e| e.bytes.clone()).collect(),
        })
        .await
        .map(drop)
    }

    async fn room_events(
        &self,
        room: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        let room = room.to_owned();
        self.read(move |txn| {
            read_seq(
                txn,
                ROOM_EVENTS,
                "room event",
                &room,
                after(after_seq),
                limit,
                false,
            )
        })
        .await
    }

    async fn room_head(&self, room: &str) -> Result<u64, StoreError> {
        let room = room.to_owned();
        self.read(move |txn| read_head(txn, ROOM_EVENTS, &room))
            .await
    }

    async fn fence_room(&self, room: &str, epoch: u64) -> Result<(), StoreError> {
        self.write(Op::FenceRoom {
            room: room.to_owned(),
            epoch,
        })
        .await
        .map(drop)
    }

    async fn room_fence(&self, room: &str) -> Result<u64, StoreError> {
        let room = room.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(FENCES).map_err(unavailable)?;
            fence_of(&table, "room", &room).map_err(unavailable)
        })
        .await
    }

    async fn fence_thread(&self, thread: &str, epoch: u64) -> Result<(), StoreError> {
        self.write(Op::FenceThread {
            thread: thread.to_owned(),
            epoch,
        })
        .await
        .map(drop)
    }

    async fn thread_fence(&self, thread: &str) -> Result<u64, StoreError> {
        let thread = thread.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(FENCES).map_err(unavailable)?;
            fence_of(&table, "thread", &thread).map_err(unavailable)
        })
        .await
    }

    async fn put_room_snapshot(&self, room: &str, snap: &Snapshot) -> Result<(), StoreError> {
        self.write(Op::PutRoomSnapshot {
            room: room.to_owned(),
            seq: snap.seq,
            bytes: snap.bytes.clone(),
        })
        .await
        .map(drop)
    }

    async fn room_snapshot(&self, room: &str) -> Result<Option<Snapshot>, StoreError> {
        let room = room.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(ROOM_SNAPSHOTS).map_err(unavailable)?;
            let guard = table.get(room.as_str()).map_err(unavailable)?;
            Ok(guard.map(|g| {
                let (seq, bytes) = g.value();
                Snapshot {
                    seq,
                    bytes: bytes.to_vec(),
                }
            }))
        })
        .await
    }

    async fn create_thread(&self, meta: &ThreadMeta) -> Result<bool, StoreError> {
        let bytes = encode("thread", meta)?;
        self.write(Op::CreateThread {
            id: meta.id.clone(),
            meta: bytes,
        })
        .await
    }

    async fn thread(&self, id: &str) -> Result<Option<ThreadMeta>, StoreError> {
        let id = id.to_owned();
        self.read(move |txn| read_meta(txn, THREADS, "thread", &id))
            .await
    }

    async fn set_thread_member(
        &self,
        thread: &str,
        user: &str,
        member: bool,
    ) -> Result<bool, StoreError> {
        self.write(Op::SetThreadMember {
            thread: thread.to_owned(),
            user: user.to_owned(),
            member,
        })
        .await
    }

    async fn append_messages_at(
        &self,
        thread: &str,
        epoch: u64,
        msgs: &[Message],
    ) -> Result<(), StoreError> {
        let Some(first) = msgs.first() else {
            return Ok(());
        };
        crate::seqs::consecutive("thread", thread, msgs.iter().map(|m| m.seq))?;
        let encoded = msgs
            .iter()
            .map(|m| encode("message", m))
            .collect::<Result<Vec<_>, _>>()?;
        self.write(Op::AppendMessages {
            thread: thread.to_owned(),
            epoch,
            first: first.seq,
            msgs: encoded,
        })
        .await
        .map(drop)
    }

    async fn messages_after(
        &self,
        thread: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let thread = thread.to_owned();
        self.read(move |txn| {
            read_seq(
                txn,
                MESSAGES,
                "message",
                &thread,
                after(after_seq),
                limit,
                false,
            )
        })
        .await
    }

    async fn messages_before(
        &self,
        thread: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let thread = thread.to_owned();
        self.read(move |txn| {
            let range = (Bound::Included(0), Bound::Excluded(before));
            read_seq(txn, MESSAGES, "message", &thread, range, limit, true)
        })
        .await
    }

    async fn thread_head(&self, thread: &str) -> Result<u64, StoreError> {
        let thread = thread.to_owned();
        self.read(move |txn| read_head(txn, MESSAGES, &thread))
            .await
    }

    async fn put_cursor(&self, thread: &str, cursor: &Cursor) -> Result<(), StoreError> {
        self.write(Op::PutCursor {
            thread: thread.to_owned(),
            user: cursor.user.clone(),
            delivered: cursor.delivered,
            read: cursor.read,
        })
        .await
        .map(drop)
    }

    async fn cursors(&self, thread: &str) -> Result<Vec<Cursor>, StoreError> {
        let thread = thread.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(READ_CURSORS).map_err(unavailable)?;
            let from = (thread.as_str(), "");
            let iter = table
                .range((Bound::Included(from), Bound::Unbounded))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in iter {
                let (k, v) = entry.map_err(unavailable)?;
                let (t, user) = k.value();
                if t != thread {
                    break;
                }
                let (delivered, read) = v.value();
                out.push(Cursor {
                    user: user.to_owned(),
                    delivered,
                    read,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn append_inbox(&self, user: &str, event: &InboxEvent) -> Result<(), StoreError> {
        let bytes = encode("inbox event", event)?;
        self.write(Op::AppendInbox {
            user: user.to_owned(),
            seq: event.seq,
            event: bytes,
        })
        .await
        .map(drop)
    }

    async fn inbox_after(
        &self,
        user: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let user = user.to_owned();
        self.read(move |txn| {
            read_seq(
                txn,
                INBOX,
                "inbox event",
                &user,
                after(after_seq),
                limit,
                false,
            )
        })
        .await
    }

    async fn inbox_head(&self, user: &str) -> Result<u64, StoreError> {
        let user = user.to_owned();
        self.read(move |txn| read_head(txn, INBOX, &user)).await
    }

    async fn add_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError> {
        self.write(Op::AddMembership {
            user: user.to_owned(),
            kind: crate::seqs::membership_code(kind),
            id: id.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn remove_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError> {
        self.write(Op::RemoveMembership {
            user: user.to_owned(),
            kind: crate::seqs::membership_code(kind),
            id: id.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn memberships(
        &self,
        user: &str,
        kind: MembershipKind,
    ) -> Result<Vec<String>, StoreError> {
        let user = user.to_owned();
        let kind = crate::seqs::membership_code(kind);
        self.read(move |txn| {
            let table = txn.open_table(MEMBERSHIPS).map_err(unavailable)?;
            let from = (user.as_str(), kind, "");
            let iter = table
                .range((Bound::Included(from), Bound::Unbounded))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in iter {
                let (k, _) = entry.map_err(unavailable)?;
                let (u, kd, id) = k.value();
                if u != user || kd != kind {
                    break;
                }
                out.push(id.to_owned());
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chalktalk_protocol::{Notice, RoomOp, ThreadKind};

    use super::*;
    use crate::conformance::store::{self as conformance, enc};

    fn open(dir: &tempfile::TempDir) -> Arc<EmbeddedStore> {
        EmbeddedStore::open(dir.path()).expect("open store")
    }

    fn event(seq: u64) -> RoomEvent {
        RoomEvent {
            seq,
            by: "coach".into(),
            op_id: format!("op-{seq}"),
            at_ms: 1_700_000_000_000 + seq,
            op: RoomOp::Rate { rate: 0.25 },
            target: None,
            effects: vec![],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_conformance() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = open(&dir);
        conformance::run_all(store.clone()).await;
        assert!(store.commit_count() > 0);
        assert!(dir.path().join(FILE_NAME).is_file());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_reopen() {
        let dir = tempfile::TempDir::new().unwrap();
        let room = RoomMeta {
            id: "r1".into(),
            video_id: "v1".into(),
            owner: "coach".into(),
            aspect: 16.0 / 9.0,
            fps: 30.0,
            created_ms: 5,
        };
        let thread = ThreadMeta {
            id: "t1".into(),
            kind: ThreadKind::Direct,
            title: None,
            created_by: "coach".into(),
            members: vec!["athlete".into(), "coach".into()],
            created_ms: 6,
        };
        let msg = Message {
            seq: 1,
            id: "m1".into(),
            from: "coach".into(),
            at_ms: 7,
            text: "watch the knee".into(),
            attachments: vec![],
            reply_to: None,
            edit: None,
        };
        let cursor = Cursor {
            user: "athlete".into(),
            delivered: 1,
            read: 1,
        };
        let inbox = InboxEvent {
            seq: 1,
            at_ms: 8,
            notice: Notice::AddedToThread {
                thread: "t1".into(),
                by: "coach".into(),
            },
        };
        let snap = Snapshot {
            seq: 2,
            bytes: vec![1, 2, 3],
        };
        {
            let store = open(&dir);
            assert!(store.create_room(&room).await.unwrap());
            store
                .append_room_events("r1", 0, &enc([event(1), event(2)]))
                .await
                .unwrap();
            store.put_room_snapshot("r1", &snap).await.unwrap();
            assert!(store.create_thread(&thread).await.unwrap());
            store
                .append_messages("t1", std::slice::from_ref(&msg))
                .await
                .unwrap();
            store.put_cursor("t1", &cursor).await.unwrap();
            store.append_inbox("athlete", &inbox).await.unwrap();
            store
                .add_membership("athlete", MembershipKind::Thread, "t1")
                .await
                .unwrap();
        }
        let store = open(&dir);
        assert_eq!(store.room("r1").await.unwrap(), Some(room));
        assert_eq!(
            store.room_events("r1", 0, 10).await.unwrap(),
            vec![event(1), event(2)]
        );
        assert_eq!(store.room_head("r1").await.unwrap(), 2);
        assert_eq!(store.room_snapshot("r1").await.unwrap(), Some(snap));
        assert_eq!(store.thread("t1").await.unwrap(), Some(thread));
        assert_eq!(store.messages_after("t1", 0, 10).await.unwrap(), vec![msg]);
        assert_eq!(store.cursors("t1").await.unwrap(), vec![cursor]);
        assert_eq!(
            store.inbox_after("athlete", 0, 10).await.unwrap(),
            vec![inbox]
        );
        assert_eq!(
            store
                .memberships("athlete", MembershipKind::Thread)
                .await
                .unwrap(),
            vec!["t1".to_string()]
        );
        // Appending continues from the stored head.
        store
            .append_room_events("r1", 0, &enc([event(3)]))
            .await
            .unwrap();
        assert_eq!(store.room_head("r1").await.unwrap(), 3);
    }

    /// One batch with a conflicting request in the middle: the others commit,
    /// the conflicting one fails alone and writes nothing.
    #[test]
    fn conflict_fails_alone_in_a_batch() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = Database::builder()
            .create(dir.path().join(FILE_NAME))
            .unwrap();
        let txn = db.begin_write().unwrap();
        open_tables(&txn).unwrap();
        txn.commit().unwrap();

        let append = |room: &str, seqs: &[u64]| Op::AppendRoomEvents {
            room: room.into(),
            epoch: 0,
            first: seqs[0],
            events: seqs
                .iter()
                .map(|s| encode("room event", &event(*s)).unwrap().into())
                .collect(),
        };
        let ops = vec![
            append("a", &[1, 2]),
            append("b", &[1]),
            append("a", &[2, 3]), // 2 was written by the first request
            append("a", &[3]),
            append("c", &[2]), // gap
        ];
        let (batch, replies): (Vec<_>, Vec<_>) = ops
            .into_iter()
            .map(|op| {
                let (reply, rx) = oneshot::channel();
                (Request { op, reply }, rx)
            })
            .unzip();
        let results = apply_batch(&db, &batch).unwrap();
        drop(replies);
        let ok: Vec<bool> = results.iter().map(|r| r.is_ok()).collect();
        assert_eq!(ok, vec![true, true, false, true, false]);
        assert!(matches!(results[2], Err(StoreError::Conflict(_))));
        assert!(matches!(results[4], Err(StoreError::Conflict(_))));

        let txn = db.begin_read().unwrap();
        let table = txn.open_table(ROOM_EVENTS).unwrap();
        let keys: Vec<(String, u64)> = table
            .iter()
            .unwrap()
            .map(|e| {
                let (k, _) = e.unwrap();
                let (room, seq) = k.value();
                (room.to_owned(), seq)
            })
            .collect();
        let expected: Vec<(String, u64)> = vec![
            ("a".into(), 1),
            ("a".into(), 2),
            ("a".into(), 3),
            ("b".into(), 1),
        ];
        assert_eq!(keys, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_value_is_reported() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = open(&dir);
        store
            .write(Op::AppendRoomEvents {
                room: "r".into(),
                epoch: 0,
                first: 1,
                events: vec![vec![0xc1].into()], // never valid MessagePack
            })
            .await
            .unwrap();
        let err = store.room_events("r", 0, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
