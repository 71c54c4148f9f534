//! Appends (room events, thread messages, inbox events) with group commit.
//!
//! Every append is a conditional batch of `INSERT ... IF NOT EXISTS`, one
//! per partition: a seq that is already stored fails the whole batch, so
//! nothing of it is written and the call is a `Conflict`. The first seq
//! must also follow the stored head (a gap is a `Conflict` too): the head is
//! read before writing, unless this store wrote that head itself.
//!
//! Group commit: calls for one partition that arrive while a batch of that
//! partition is in flight queue up and go out together as the next batch;
//! different partitions are written in parallel (a drain task each). When
//! a merged batch is refused, its calls are replayed one by one so that only
//! the call at fault fails.
//!
//! Messages live in buckets (`bucket = seq / 1024`, cql/002): a call whose
//! seqs cross a bucket boundary is written as one conditional batch per
//! bucket, in order, after the head check. Each bucket's batch is atomic;
//! the call as a whole is not: if a later bucket's batch fails, the earlier
//! one stays written and the call answers `Conflict` (refused) or
//! `Unavailable` (unknown). The thread actor is the only writer of its
//! thread, so the refusal cannot come from a race in practice; a retry of
//! the same call after `Unavailable` is answered `Conflict` and the actor
//! reloads the head (docs/ARCHITECTURE.md §9).
//!
//! A batch that timed out (outcome unknown) is settled by reading its rows
//! at the serial consistency (`seqrows.rs`): present with our bodies → `Ok`;
//! absent → `Unavailable` (nothing written, retryable); present with other
//! bodies → `Conflict`.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use chalktalk_actors::store::StoreError;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::seqrows::write;
use super::{Inner, ScyllaStore, clamp, to_db};

/// Rows of at most this many calls, or this many rows, go in one batch.
const MAX_MERGED_ROWS: usize = 256;

/// Seqs per message bucket (cql/002).
pub(super) const BUCKET: u64 = 1024;

pub(super) fn bucket_of(seq: u64) -> i64 {
    clamp(seq / BUCKET)
}

/// Which append table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    RoomEvents,
    Messages,
    Inbox,
}

impl Table {
    pub(super) fn name(self) -> &'static str {
        match self {
            Table::RoomEvents => "room",
            Table::Messages => "thread",
            Table::Inbox => "inbox",
        }
    }
}

/// A partition being appended to: the table and its id (for messages, the
/// thread; buckets are handled inside).
pub(crate) type PartKey = (Table, String);

/// One row to insert: seq, the plain columns, the body.
#[derive(Debug, Clone)]
pub(super) struct SeqRow {
    pub seq: u64,
    /// room events: op_id; messages: msg_id; inbox: unused.
    pub label: String,
    /// room events: author; messages: sender; inbox: unused.
    pub who: String,
    pub at_ms: u64,
    pub body: bytes::Bytes,
}

/// A call waiting for its batch.
pub(crate) struct Pending {
    /// The writer's fencing epoch (room events; 0 elsewhere): calls of
    /// different epochs never share a batch.
    epoch: u64,
    rows: Vec<SeqRow>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

pub(crate) type Queue = VecDeque<Pending>;

impl ScyllaStore {
    /// Appends `rows` (consecutive seqs, checked by the caller) to a
    /// partition, through its queue.
    pub(super) async fn append(
        &self,
        table: Table,
        id: &str,
        epoch: u64,
        rows: Vec<SeqRow>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        for r in &rows {
            to_db("seq", r.seq)?;
            to_db("time", r.at_ms)?;
        }
        let key: PartKey = (table, id.to_string());
        let (reply, rx) = oneshot::channel();
        let leader = {
            let mut queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
            match queues.entry(key.clone()) {
                Entry::Occupied(mut q) => {
                    q.get_mut().push_back(Pending { epoch, rows, reply });
                    false
                }
                Entry::Vacant(v) => {
                    v.insert(VecDeque::from([Pending { epoch, rows, reply }]));
                    true
                }
            }
        };
        if leader {
            // A task of its own: the caller may go away, the queue may not.
            tokio::spawn(drain(self.inner.clone(), key));
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("scylla append task stopped".into()))?
    }
}

/// Writes the queue of `key` batch after batch until it is empty, then
/// removes it (under the lock, so no call is left behind).
async fn drain(inner: Arc<Inner>, key: PartKey) {
    loop {
        let batch: Vec<Pending> = {
            let mut queues = inner.queues.lock().unwrap_or_else(|e| e.into_inner());
            let Some(q) = queues.get_mut(&key) else {
                return;
            };
            if q.is_empty() {
                queues.remove(&key);
                return;
            }
            let mut taken: Vec<Pending> = Vec::new();
            let mut rows = 0;
            while let Some(p) = q.front() {
                if !taken.is_empty()
                    && (rows + p.rows.len() > MAX_MERGED_ROWS || p.epoch != taken[0].epoch)
                {
                    break;
                }
                rows += p.rows.len();
                if let Some(p) = q.pop_front() {
                    taken.push(p);
                }
            }
            taken
        };
        let span = tracing::debug_span!(
            "scylla append",
            table = key.0.name(),
            id = %key.1,
            calls = batch.len()
        );
        commit(&inner, &key, batch).instrument(span).await;
    }
}

/// Writes one merged batch of calls and answers each.
async fn commit(inner: &Inner, key: &PartKey, calls: Vec<Pending>) {
    let epoch = calls.first().map_or(0, |c| c.epoch);
    let first = calls
        .first()
        .and_then(|c| c.rows.first())
        .map_or(0, |r| r.seq);
    let cached = inner
        .heads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(key)
        .copied();
    let head = match cached {
        Some(h) if h.checked_add(1) == Some(first) => h,
        _ => match inner.head(key.0, &key.1).await {
            Ok(h) => h,
            Err(e) => {
                for c in calls {
                    let _ = c.reply.send(Err(e.clone()));
                }
                return;
            }
        },
    };
    // Calls that follow the running head go in; the others fail alone.
    let mut running = head;
    let mut chained = Vec::new();
    for c in calls {
        let (Some(f), Some(l)) = (c.rows.first(), c.rows.last()) else {
            let _ = c.reply.send(Ok(()));
            continue;
        };
        if running.checked_add(1) == Some(f.seq) {
            running = l.seq;
            chained.push(c);
        } else {
            let msg = format!(
                "{} {}: append at seq {} but head is {running}",
                key.0.name(),
                key.1,
                f.seq
            );
            let _ = c.reply.send(Err(StoreError::Conflict(msg)));
        }
    }
    if chained.is_empty() {
        return;
    }
    let rows: Vec<SeqRow> = chained
        .iter()
        .flat_map(|c| c.rows.iter().cloned())
        .collect();
    let one_partition = key.0 != Table::Messages
        || rows.first().map(|r| bucket_of(r.seq)) == rows.last().map(|r| bucket_of(r.seq));
    // After a refused batch the stored head is unknown: check it again
    // before each call, so that a replayed call never leaves a gap.
    let mut recheck = false;
    if chained.len() > 1 && one_partition {
        match write(inner, key, epoch, &rows).await {
            Ok(true) => {
                remember(inner, key, Some(running));
                for c in chained {
                    let _ = c.reply.send(Ok(()));
                }
                return;
            }
            Ok(false) => {
                // A racing writer: replay one by one below.
                remember(inner, key, None);
                recheck = true;
            }
            Err(e) => {
                remember(inner, key, None);
                for c in chained {
                    let _ = c.reply.send(Err(e.clone()));
                }
                return;
            }
        }
    }
    for c in chained {
        let (first, last) = (
            c.rows.first().map_or(0, |r| r.seq),
            c.rows.last().map_or(0, |r| r.seq),
        );
        if recheck {
            match inner.head(key.0, &key.1).await {
                Ok(h) if h.checked_add(1) == Some(first) => {}
                Ok(h) => {
                    let msg = format!(
                        "{} {}: append at seq {first} but head is {h}",
                        key.0.name(),
                        key.1
                    );
                    let _ = c.reply.send(Err(StoreError::Conflict(msg)));
                    continue;
                }
                Err(e) => {
                    let _ = c.reply.send(Err(e));
                    continue;
                }
            }
        }
        let result = match write(inner, key, epoch, &c.rows).await {
            Ok(true) => {
                remember(inner, key, Some(last));
                recheck = false;
                Ok(())
            }
            Ok(false) if key.0 == Table::RoomEvents && epoch > 0 => {
                remember(inner, key, None);
                recheck = true;
                // Refused: by the fence, or by a seq stored already.
                match inner.room_fence(&key.1).await {
                    Ok(held) if held != epoch => Err(StoreError::Fenced {
                        what: format!("room {}", key.1),
                        held,
                        tried: epoch,
                    }),
                    Ok(_) => Err(StoreError::Conflict(format!(
                        "room {}: a seq of {first}..={last} is stored already",
                        key.1,
                    ))),
                    Err(e) => Err(e),
                }
            }
            Ok(false) => {
                remember(inner, key, None);
                recheck = true;
                Err(StoreError::Conflict(format!(
                    "{} {}: a seq of {first}..={last} is stored already",
                    key.0.name(),
                    key.1,
                )))
            }
            Err(e) => {
                remember(inner, key, None);
                recheck = true;
                Err(e)
            }
        };
        let _ = c.reply.send(result);
    }
}

fn remember(inner: &Inner, key: &PartKey, head: Option<u64>) {
    let mut heads = inner.heads.lock().unwrap_or_else(|e| e.into_inner());
    match head {
        Some(h) => {
            if heads.len() > 100_000 {
                heads.clear();
            }
            heads.insert(key.clone(), h);
        }
        None => {
            heads.remove(key);
        }
    }
}
