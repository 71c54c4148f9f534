//! [`Store`] (rooms, threads, inboxes, memberships) for [`PgStore`]: writes
//! go through the writer task (`writer.rs`), reads are single statements on
//! a pooled connection (`PgStore::query`).

use async_trait::async_trait;
use chalktalk_actors::store::{
    EncodedEvent, MembershipKind, RoomMeta, Snapshot, Store, StoreError, ThreadMeta,
};
use chalktalk_protocol::{Cursor, InboxEvent, Message, RoomEvent};
use serde::de::DeserializeOwned;

use super::writer::{INBOX, MESSAGES, Op, ROOM_EVENTS, ROOMS, SeqTable, THREADS};
use super::{PgStore, clamp, column, from_db, to_db};
use crate::embedded::{decode, encode};

/// Checks that `seqs` are consecutive and returns the first (as stored);
/// `None` for an empty call. The writer checks the first against the head.
fn first_of(
    what: &str,
    id: &str,
    seqs: impl Iterator<Item = u64>,
) -> Result<Option<i64>, StoreError> {
    let mut first = None;
    let mut prev: Option<u64> = None;
    for seq in seqs {
        if let Some(p) = prev
            && p.checked_add(1) != Some(seq)
        {
            return Err(StoreError::Conflict(format!(
                "{what} {id}: seq {seq} does not follow {p}"
            )));
        }
        if first.is_none() {
            first = Some(to_db("seq", seq)?);
        }
        prev = Some(seq);
    }
    // The last seq must fit too.
    if let Some(last) = prev {
        to_db("seq", last)?;
    }
    Ok(first)
}

/// How often a member change is retried against concurrent ones.
const MEMBER_CAS_TRIES: usize = 16;

impl PgStore {
    async fn append(
        &self,
        table: SeqTable,
        id: &str,
        epoch: Option<i64>,
        first: Option<i64>,
        bodies: Vec<bytes::Bytes>,
    ) -> Result<(), StoreError> {
        let Some(first) = first else { return Ok(()) };
        self.write(Op::Append {
            table,
            id: id.to_owned(),
            epoch,
            first,
            bodies,
        })
        .await
        .map(drop)
    }

    async fn meta<V: DeserializeOwned>(
        &self,
        table: &str,
        what: &str,
        id: &str,
    ) -> Result<Option<V>, StoreError> {
        let sql = format!("SELECT meta FROM {table} WHERE id = $1");
        let rows = self.query(&sql, &[&id]).await?;
        match rows.first() {
            Some(row) => Ok(Some(decode(what, id, column::<&[u8]>(row, 0)?)?)),
            None => Ok(None),
        }
    }

    /// Bodies with seq > `after` ascending, or with seq < `before` (the
    /// newest `limit`, returned ascending).
    async fn seq_range<V: DeserializeOwned>(
        &self,
        table: SeqTable,
        what: &str,
        id: &str,
        after: Option<u64>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<V>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (cmp, bound, order) = match (after, before) {
            (_, Some(b)) => ("<", clamp(b), "DESC"),
            (a, None) => (">", clamp(a.unwrap_or(0)), "ASC"),
        };
        let sql = format!(
            "SELECT seq, body FROM {t} WHERE {key} = $1 AND seq {cmp} $2 ORDER BY seq {order} LIMIT $3",
            t = table.table,
            key = table.key
        );
        let rows = self.query(&sql, &[&id, &bound, &limit]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = column(row, 0)?;
            out.push(decode(
                what,
                &format!("{id}/{seq}"),
                column::<&[u8]>(row, 1)?,
            )?);
        }
        if before.is_some() {
            out.reverse();
        }
        Ok(out)
    }

    async fn head(&self, table: SeqTable, id: &str) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT COALESCE(max(seq), 0) FROM {t} WHERE {key} = $1",
            t = table.table,
            key = table.key
        );
        let rows = self.query(&sql, &[&id]).await?;
        match rows.first() {
            Some(row) => from_db("head", column(row, 0)?),
            None => Ok(0),
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn health(&self) -> Result<(), StoreError> {
        PgStore::health(self).await
    }

    async fn create_room(&self, meta: &RoomMeta) -> Result<bool, StoreError> {
        let bytes = encode("room", meta)?;
        self.write(Op::Create {
            table: "rooms",
            id: meta.id.clone(),
            meta: bytes,
        })
        .await
    }

    async fn room(&self, id: &str) -> Result<Option<RoomMeta>, StoreError> {
        self.meta("rooms", "room", id).await
    }

    async fn append_room_events(
        &self,
        room: &str,
        epoch: u64,
        events: &[EncodedEvent],
    ) -> Result<(), StoreError> {
        let first = first_of("room", room, events.iter().map(EncodedEvent::seq))?;
        let bodies = events.iter().map(|e| e.bytes.clone()).collect();
        let epoch = Some(to_db("epoch", epoch)?);
        self.append(ROOM_EVENTS, room, epoch, first, bodies).await
    }

    async fn fence_room(&self, room: &str, epoch: u64) -> Result<(), StoreError> {
        self.write(Op::Fence {
            of: ROOMS,
            id: room.to_owned(),
            epoch: to_db("epoch", epoch)?,
        })
        .await
        .map(drop)
    }

    async fn fence_thread(&self, thread: &str, epoch: u64) -> Result<(), StoreError> {
        self.write(Op::Fence {
            of: THREADS,
            id: thread.to_owned(),
            epoch: to_db("epoch", epoch)?,
        })
        .await
        .map(drop)
    }

    async fn thread_fence(&self, thread: &str) -> Result<u64, StoreError> {
        let rows = self
            .query("SELECT fence FROM threads WHERE id = $1", &[&thread])
            .await?;
        match rows.first() {
            Some(row) => from_db("fence", column(row, 0)?),
            None => Ok(0),
        }
    }

    async fn room_fence(&self, room: &str) -> Result<u64, StoreError> {
        let rows = self
            .query("SELECT fence FROM rooms WHERE id = $1", &[&room])
            .await?;
        match rows.first() {
            Some(row) => from_db("fence", column(row, 0)?),
            None => Ok(0),
        }
    }

    async fn room_events(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        self.seq_range(ROOM_EVENTS, "room event", room, Some(after), None, limit)
            .await
    }

    async fn room_head(&self, room: &str) -> Result<u64, StoreError> {
        self.head(ROOM_EVENTS, room).await
    }

    async fn put_room_snapshot(&self, room: &str, snap: &Snapshot) -> Result<(), StoreError> {
        self.write(Op::PutSnapshot {
            room: room.to_owned(),
            seq: to_db("snapshot seq", snap.seq)?,
            body: snap.bytes.clone(),
        })
        .await
        .map(drop)
    }

    async fn room_snapshot(&self, room: &str) -> Result<Option<Snapshot>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, body FROM room_snapshots WHERE room_id = $1",
                &[&room],
            )
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(Snapshot {
                seq: from_db("snapshot seq", column(row, 0)?)?,
                bytes: column(row, 1)?,
            })),
            None => Ok(None),
        }
    }

    async fn create_thread(&self, meta: &ThreadMeta) -> Result<bool, StoreError> {
        let bytes = encode("thread", meta)?;
        self.write(Op::Create {
            table: "threads",
            id: meta.id.clone(),
            meta: bytes,
        })
        .await
    }

    async fn thread(&self, id: &str) -> Result<Option<ThreadMeta>, StoreError> {
        self.meta("threads", "thread", id).await
    }

    /// A compare-and-set of the thread's `meta` on its previous bytes,
    /// retried when another writer changed it in between (one statement
    /// each, outside the writer's batches: a rare write).
    async fn set_thread_member(
        &self,
        thread: &str,
        user: &str,
        member: bool,
    ) -> Result<bool, StoreError> {
        for _ in 0..MEMBER_CAS_TRIES {
            let rows = self
                .query("SELECT meta FROM threads WHERE id = $1", &[&thread])
                .await?;
            let Some(row) = rows.first() else {
                return Ok(false);
            };
            let old: &[u8] = column(row, 0)?;
            let mut meta: ThreadMeta = decode("thread", thread, old)?;
            if !crate::seqs::set_member(&mut meta.members, user, member) {
                return Ok(true);
            }
            let new = encode("thread", &meta)?;
            let done = self
                .query(
                    "UPDATE threads SET meta = $3 WHERE id = $1 AND meta = $2 RETURNING id",
                    &[&thread, &old, &new],
                )
                .await?;
            if !done.is_empty() {
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable(format!(
            "thread {thread}: members changed under {MEMBER_CAS_TRIES} tries"
        )))
    }

    async fn append_messages_at(
        &self,
        thread: &str,
        epoch: u64,
        msgs: &[Message],
    ) -> Result<(), StoreError> {
        let first = first_of("thread", thread, msgs.iter().map(|m| m.seq))?;
        let bodies = msgs
            .iter()
            .map(|m| encode("message", m).map(bytes::Bytes::from))
            .collect::<Result<Vec<_>, _>>()?;
        let epoch = Some(to_db("epoch", epoch)?);
        self.append(MESSAGES, thread, epoch, first, bodies).await
    }

    async fn messages_after(
        &self,
        thread: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.seq_range(MESSAGES, "message", thread, Some(after), None, limit)
            .await
    }

    async fn messages_before(
        &self,
        thread: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.seq_range(MESSAGES, "message", thread, None, Some(before), limit)
            .await
    }

    async fn thread_head(&self, thread: &str) -> Result<u64, StoreError> {
        self.head(MESSAGES, thread).await
    }

    async fn put_cursor(&self, thread: &str, cursor: &Cursor) -> Result<(), StoreError> {
        self.write(Op::PutCursor {
            thread: thread.to_owned(),
            user: cursor.user.clone(),
            delivered: to_db("cursor", cursor.delivered)?,
            read: to_db("cursor", cursor.read)?,
        })
        .await
        .map(drop)
    }

    async fn cursors(&self, thread: &str) -> Result<Vec<Cursor>, StoreError> {
        let rows = self
            .query(
                "SELECT user_id, delivered, read FROM read_cursors WHERE thread_id = $1 \
                 ORDER BY user_id",
                &[&thread],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Cursor {
                    user: column(row, 0)?,
                    delivered: from_db("cursor", column(row, 1)?)?,
                    read: from_db("cursor", column(row, 2)?)?,
                })
            })
            .collect()
    }

    async fn append_inbox(&self, user: &str, event: &InboxEvent) -> Result<(), StoreError> {
        let first = first_of("inbox", user, std::iter::once(event.seq))?;
        let body = encode("inbox event", event)?;
        self.append(INBOX, user, None, first, vec![body.into()])
            .await
    }

    async fn inbox_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        self.seq_range(INBOX, "inbox event", user, Some(after), None, limit)
            .await
    }

    async fn inbox_head(&self, user: &str) -> Result<u64, StoreError> {
        self.head(INBOX, user).await
    }

    async fn add_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError> {
        self.write(Op::AddMembership {
            user: user.to_owned(),
            kind: i16::from(crate::seqs::membership_code(kind)),
            target: id.to_owned(),
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
            kind: i16::from(crate::seqs::membership_code(kind)),
            target: id.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn memberships(
        &self,
        user: &str,
        kind: MembershipKind,
    ) -> Result<Vec<String>, StoreError> {
        let kind = i16::from(crate::seqs::membership_code(kind));
        let rows = self
            .query(
                "SELECT target_id FROM memberships WHERE user_id = $1 AND kind = $2 \
                 ORDER BY target_id",
                &[&user, &kind],
            )
            .await?;
        rows.iter().map(|row| column(row, 0)).collect()
    }
}
