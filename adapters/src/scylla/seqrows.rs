//! Seq rows on the wire: the conditional batches of an append (one per
//! partition, i.e. per message bucket), the serial read that settles one
//! whose outcome is unknown, and the head of a partition (for messages,
//! found across buckets). The queueing around them is `append.rs`.

use chalktalk_actors::store::StoreError;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};

use super::append::{PartKey, SeqRow, Table, bucket_of};
use super::exec::Lwt;
use super::{Inner, clamp, from_db};

/// Writes `rows` as one conditional batch per partition (bucket), in
/// order: `Ok(true)` when every batch applied, `Ok(false)` when one was
/// refused (see the module docs for what stays written).
pub(super) async fn write(
    inner: &Inner,
    key: &PartKey,
    epoch: u64,
    rows: &[SeqRow],
) -> Result<bool, StoreError> {
    let mut start = 0;
    while start < rows.len() {
        let end = match key.0 {
            Table::Messages => {
                let b = bucket_of(rows[start].seq);
                rows[start..]
                    .iter()
                    .position(|r| bucket_of(r.seq) != b)
                    .map_or(rows.len(), |n| start + n)
            }
            _ => rows.len(),
        };
        let part = &rows[start..end];
        let outcome = write_partition(inner, key, epoch, part).await;
        let applied = match outcome {
            Lwt::Applied => true,
            Lwt::NotApplied => false,
            Lwt::Failed(e) => return Err(e),
            Lwt::Unknown(e) => settle(inner, key, part, e).await?,
        };
        if !applied {
            return Ok(false);
        }
        start = end;
    }
    Ok(true)
}

/// One conditional batch: every row of `part` (one partition) if none is
/// stored (and, for a room event written with an epoch, if the room's
/// fence is that epoch: cql/007).
async fn write_partition(inner: &Inner, key: &PartKey, epoch: u64, part: &[SeqRow]) -> Lwt {
    let id = key.1.as_str();
    let st = &inner.st;
    if key.0 == Table::RoomEvents && epoch > 0 {
        type Values<'a> = Box<dyn SerializeRow + Send + Sync + 'a>;
        let mut batch = Batch::new(BatchType::Logged);
        let mut values: Vec<Values<'_>> = Vec::with_capacity(part.len() + 1);
        let e = clamp(epoch);
        batch.append_statement(st.ROOM_FENCE_CAS.clone());
        values.push(Box::new((e, id, e)));
        for r in part {
            batch.append_statement(st.ROOM_EVENT_INSERT.clone());
            values.push(Box::new((
                id,
                clamp(r.seq),
                r.label.as_str(),
                r.who.as_str(),
                clamp(r.at_ms),
                r.body.as_ref(),
            )));
        }
        return inner.lwt_batch(&batch, values).await;
    }
    let mut batch = Batch::new(BatchType::Logged);
    macro_rules! run {
        ($stmt:expr, $values:expr) => {{
            for _ in part {
                batch.append_statement($stmt.clone());
            }
            let values: Vec<_> = part.iter().map($values).collect();
            inner.lwt_batch(&batch, values).await
        }};
    }
    match key.0 {
        Table::RoomEvents => run!(st.ROOM_EVENT_INSERT, |r: &SeqRow| (
            id,
            clamp(r.seq),
            r.label.as_str(),
            r.who.as_str(),
            clamp(r.at_ms),
            r.body.as_ref()
        )),
        Table::Messages => run!(st.MESSAGE_INSERT, |r: &SeqRow| (
            id,
            bucket_of(r.seq),
            clamp(r.seq),
            r.label.as_str(),
            r.who.as_str(),
            clamp(r.at_ms),
            r.body.as_ref()
        )),
        Table::Inbox => run!(st.INBOX_INSERT, |r: &SeqRow| (
            id,
            clamp(r.seq),
            clamp(r.at_ms),
            r.body.as_ref()
        )),
    }
}

/// Settles a batch whose outcome is unknown by reading its rows at the
/// serial consistency: `Ok(true)` applied, `Ok(false)` another writer's
/// rows are there, `Err` nothing is there (not applied; retryable).
async fn settle(
    inner: &Inner,
    key: &PartKey,
    part: &[SeqRow],
    err: StoreError,
) -> Result<bool, StoreError> {
    let (Some(first), Some(last)) = (part.first(), part.last()) else {
        return Ok(true);
    };
    let (lo, hi) = (clamp(first.seq), clamp(last.seq));
    let id = key.1.as_str();
    let st = &inner.st;
    let result = match key.0 {
        Table::RoomEvents => {
            inner
                .run_serial(&st.ROOM_EVENTS_RANGE, (id, lo, hi))
                .await?
        }
        Table::Messages => {
            inner
                .run_serial(&st.MESSAGES_RANGE, (id, bucket_of(first.seq), lo, hi))
                .await?
        }
        Table::Inbox => inner.run_serial(&st.INBOX_RANGE, (id, lo, hi)).await?,
    };
    let rows = result
        .into_rows_result()
        .map_err(|e| super::exec::corrupt("settle", e))?;
    let mut stored = std::collections::HashMap::new();
    for row in rows
        .rows::<(i64, Vec<u8>)>()
        .map_err(|e| super::exec::corrupt("settle", e))?
    {
        let (seq, body) = row.map_err(|e| super::exec::corrupt("settle", e))?;
        stored.insert(from_db("seq", seq)?, body);
    }
    if stored.is_empty() {
        tracing::warn!(
            table = key.0.name(),
            id,
            "scylla: timed-out append not applied"
        );
        return Err(err);
    }
    let ours = part.iter().all(|r| {
        stored
            .get(&r.seq)
            .is_some_and(|b| b.as_slice() == r.body.as_ref())
    });
    Ok(ours)
}

impl Inner {
    /// The highest stored seq of a partition (0 if none); for messages,
    /// the head of the last non-empty bucket (buckets fill in order).
    pub(super) async fn head(&self, table: Table, id: &str) -> Result<u64, StoreError> {
        match table {
            Table::RoomEvents => self.single_seq(&self.st.ROOM_HEAD, (id,)).await,
            Table::Inbox => self.single_seq(&self.st.INBOX_HEAD, (id,)).await,
            Table::Messages => {
                let Some(b) = self.last_bucket(id).await? else {
                    return Ok(0);
                };
                self.bucket_head(id, b).await
            }
        }
    }

    pub(super) async fn bucket_head(&self, id: &str, bucket: i64) -> Result<u64, StoreError> {
        self.single_seq(&self.st.BUCKET_HEAD, (id, bucket)).await
    }

    /// The last bucket of a thread that holds a message (`None`: no
    /// message): doubling steps, then a binary search, since every bucket
    /// up to the last one is non-empty.
    pub(super) async fn last_bucket(&self, id: &str) -> Result<Option<i64>, StoreError> {
        if self.bucket_head(id, 0).await? == 0 {
            return Ok(None);
        }
        // Bucket `lo` has rows; find `hi` without.
        let (mut lo, mut hi) = (0i64, 1i64);
        while self.bucket_head(id, hi).await? != 0 {
            lo = hi;
            hi = hi.saturating_mul(2);
            if hi == i64::MAX {
                break;
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.bucket_head(id, mid).await? != 0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(Some(lo))
    }

    async fn single_seq(
        &self,
        stmt: &scylla::statement::prepared::PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<u64, StoreError> {
        let rows = self
            .run(stmt, values)
            .await?
            .into_rows_result()
            .map_err(|e| super::exec::corrupt("head", e))?;
        match rows
            .maybe_first_row::<(i64,)>()
            .map_err(|e| super::exec::corrupt("head", e))?
        {
            Some((seq,)) => from_db("head", seq),
            None => Ok(0),
        }
    }
}
