//! [`Store`] (rooms, threads, inboxes, memberships) for [`ScyllaStore`]:
//! appends go through `append.rs`; creates are `IF NOT EXISTS`; snapshots
//! and cursors only move forward (conditional updates in a read-check-CAS
//! loop); reads are single-partition queries, paged with the driver's
//! paging state, walking across message buckets where needed.

use async_trait::async_trait;
use chalktalk_actors::store::{
    EncodedEvent, MembershipKind, RoomMeta, Snapshot, Store, StoreError, ThreadMeta,
};
use chalktalk_protocol::{Cursor, InboxEvent, Message, RoomEvent};
use scylla::response::query_result::QueryRowsResult;
use serde::de::DeserializeOwned;

use super::append::{SeqRow, Table};
use super::exec::{Lwt, corrupt};
use super::meta::thread_kind;
use super::{ScyllaStore, clamp, from_db, limit_of, to_db};
use crate::embedded::{decode, encode};

/// Decodes `(seq, body)` rows of a page into `out`.
pub(super) fn bodies<T: DeserializeOwned>(
    what: &'static str,
    id: &str,
) -> impl Fn(&QueryRowsResult, &mut Vec<T>) -> Result<(), StoreError> {
    move |rows, out| {
        for row in rows.rows::<(i64, &[u8])>().map_err(|e| corrupt(what, e))? {
            let (seq, body) = row.map_err(|e| corrupt(what, e))?;
            out.push(decode(what, &format!("{id}/{seq}"), body)?);
        }
        Ok(())
    }
}

/// CAS attempts before a contended cursor or snapshot gives up.
const MAX_CAS: usize = 100;

/// How often a member change is retried against concurrent ones.
const MEMBER_CAS_TRIES: usize = 16;

#[async_trait]
impl Store for ScyllaStore {
    async fn health(&self) -> Result<(), StoreError> {
        ScyllaStore::health(self).await
    }

    #[tracing::instrument(skip_all, fields(room = %meta.id))]
    async fn create_room(&self, meta: &RoomMeta) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let values = (
            meta.id.as_str(),
            meta.video_id.as_str(),
            meta.owner.as_str(),
            meta.aspect,
            meta.fps,
            to_db("created_ms", meta.created_ms)?,
        );
        match inner.lwt(&inner.st.ROOM_INSERT, values).await {
            Lwt::Applied => Ok(true),
            Lwt::NotApplied => Ok(false),
            Lwt::Failed(e) => Err(e),
            Lwt::Unknown(e) => match self.room_row(&meta.id, true).await? {
                Some(stored) => Ok(stored == *meta),
                None => Err(e),
            },
        }
    }

    async fn room(&self, id: &str) -> Result<Option<RoomMeta>, StoreError> {
        self.room_row(id, false).await
    }

    #[tracing::instrument(skip_all, fields(room, n = events.len()))]
    async fn append_room_events(
        &self,
        room: &str,
        epoch: u64,
        events: &[EncodedEvent],
    ) -> Result<(), StoreError> {
        crate::seqs::consecutive("room", room, events.iter().map(EncodedEvent::seq))?;
        let rows = events
            .iter()
            .map(|e| SeqRow {
                seq: e.seq(),
                label: e.ev.op_id.clone(),
                who: e.ev.by.clone(),
                at_ms: e.ev.at_ms,
                body: e.bytes.clone(),
            })
            .collect();
        self.append(Table::RoomEvents, room, epoch, rows).await
    }

    async fn fence_room(&self, room: &str, epoch: u64) -> Result<(), StoreError> {
        self.raise_fence(super::fence::Of::Room, room, epoch).await
    }

    async fn fence_thread(&self, thread: &str, epoch: u64) -> Result<(), StoreError> {
        self.raise_fence(super::fence::Of::Thread, thread, epoch)
            .await
    }

    async fn thread_fence(&self, thread: &str) -> Result<u64, StoreError> {
        self.inner.fence(super::fence::Of::Thread, thread).await
    }

    async fn room_fence(&self, room: &str) -> Result<u64, StoreError> {
        self.inner.room_fence(room).await
    }

    async fn room_events(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let values = (room, clamp(after), limit_of(limit));
        inner
            .pages(
                &inner.st.ROOM_EVENTS_AFTER,
                values,
                limit,
                bodies("room event", room),
            )
            .await
    }

    async fn room_head(&self, room: &str) -> Result<u64, StoreError> {
        self.inner.head(Table::RoomEvents, room).await
    }

    #[tracing::instrument(skip_all, fields(room, seq = snap.seq))]
    async fn put_room_snapshot(&self, room: &str, snap: &Snapshot) -> Result<(), StoreError> {
        let inner = &self.inner;
        let seq = to_db("snapshot seq", snap.seq)?;
        let body = snap.bytes.as_slice();
        for _ in 0..MAX_CAS {
            let outcome = match inner
                .lwt(&inner.st.SNAPSHOT_INSERT, (room, seq, body))
                .await
            {
                Lwt::NotApplied => {
                    // A snapshot is stored: replace it only if older.
                    match inner
                        .lwt(&inner.st.SNAPSHOT_UPDATE, (seq, body, room, seq))
                        .await
                    {
                        Lwt::Applied | Lwt::NotApplied => return Ok(()),
                        other => other,
                    }
                }
                other => other,
            };
            match outcome {
                Lwt::Applied | Lwt::NotApplied => return Ok(()),
                Lwt::Failed(e) => return Err(e),
                Lwt::Unknown(e) => match self.snapshot_seq(room, true).await? {
                    Some(stored) if stored >= snap.seq => return Ok(()),
                    Some(_) => continue,
                    None => return Err(e),
                },
            }
        }
        Err(StoreError::Unavailable(format!(
            "snapshot of {room}: no outcome after {MAX_CAS} attempts"
        )))
    }

    async fn room_snapshot(&self, room: &str) -> Result<Option<Snapshot>, StoreError> {
        let inner = &self.inner;
        let rows = inner
            .run(&inner.st.SNAPSHOT_GET, (room,))
            .await?
            .into_rows_result()
            .map_err(|e| corrupt("snapshot", e))?;
        match rows
            .maybe_first_row::<(Option<i64>, Option<Vec<u8>>)>()
            .map_err(|e| corrupt("snapshot", e))?
        {
            Some((seq, body)) => Ok(Some(Snapshot {
                seq: from_db("snapshot seq", seq.unwrap_or(0))?,
                // CQL returns an empty blob as-is, a missing one as null.
                bytes: body.unwrap_or_default(),
            })),
            None => Ok(None),
        }
    }

    #[tracing::instrument(skip_all, fields(thread = %meta.id))]
    async fn create_thread(&self, meta: &ThreadMeta) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let values = (
            meta.id.as_str(),
            thread_kind(&meta.kind),
            meta.title.as_deref(),
            meta.created_by.as_str(),
            &meta.members,
            to_db("created_ms", meta.created_ms)?,
        );
        match inner.lwt(&inner.st.THREAD_INSERT, values).await {
            Lwt::Applied => Ok(true),
            Lwt::NotApplied => Ok(false),
            Lwt::Failed(e) => Err(e),
            Lwt::Unknown(e) => match self.thread_row(&meta.id, true).await? {
                Some(stored) => Ok(stored == *meta),
                None => Err(e),
            },
        }
    }

    async fn thread(&self, id: &str) -> Result<Option<ThreadMeta>, StoreError> {
        self.thread_row(id, false).await
    }

    /// A lightweight transaction on the previous member list (`created_by`
    /// in the condition so that a missing thread is never created), retried
    /// when another writer changed it in between.
    #[tracing::instrument(skip_all, fields(thread))]
    async fn set_thread_member(
        &self,
        thread: &str,
        user: &str,
        member: bool,
    ) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let mut serial = false;
        for _ in 0..MEMBER_CAS_TRIES {
            let Some(meta) = self.thread_row(thread, serial).await? else {
                return Ok(false);
            };
            let mut members = meta.members.clone();
            if !crate::seqs::set_member(&mut members, user, member) {
                return Ok(true);
            }
            // CQL stores an empty list as null.
            let old = (!meta.members.is_empty()).then_some(&meta.members);
            let values = (&members, thread, meta.created_by.as_str(), old);
            match inner.lwt(&inner.st.THREAD_MEMBERS_CAS, values).await {
                Lwt::Applied => return Ok(true),
                Lwt::Failed(e) => return Err(e),
                // Changed in between, or unknown: read again (serially)
                // and apply the change to what is there now.
                Lwt::NotApplied | Lwt::Unknown(_) => serial = true,
            }
        }
        Err(StoreError::Unavailable(format!(
            "thread {thread}: members changed under {MEMBER_CAS_TRIES} tries"
        )))
    }

    #[tracing::instrument(skip_all, fields(thread, n = msgs.len()))]
    async fn append_messages_at(
        &self,
        thread: &str,
        epoch: u64,
        msgs: &[Message],
    ) -> Result<(), StoreError> {
        crate::seqs::consecutive("thread", thread, msgs.iter().map(|m| m.seq))?;
        // Owners with an epoch only (as for rooms, cql/007): see fence.rs.
        if epoch > 0 && !msgs.is_empty() {
            self.check_thread_fence(thread, epoch).await?;
        }
        let rows = msgs
            .iter()
            .map(|m| {
                Ok(SeqRow {
                    seq: m.seq,
                    label: m.id.clone(),
                    who: m.from.clone(),
                    at_ms: m.at_ms,
                    body: encode("message", m)?.into(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.append(Table::Messages, thread, 0, rows).await
    }

    async fn messages_after(
        &self,
        thread: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.read_messages_after(thread, after, limit).await
    }

    async fn messages_before(
        &self,
        thread: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.read_messages_before(thread, before, limit).await
    }

    async fn thread_head(&self, thread: &str) -> Result<u64, StoreError> {
        self.inner.head(Table::Messages, thread).await
    }

    #[tracing::instrument(skip_all, fields(thread, user = %cursor.user))]
    async fn put_cursor(&self, thread: &str, cursor: &Cursor) -> Result<(), StoreError> {
        let inner = &self.inner;
        let user = cursor.user.as_str();
        let (d, r) = (
            to_db("cursor", cursor.delivered)?,
            to_db("cursor", cursor.read)?,
        );
        for attempt in 0..MAX_CAS {
            let outcome = match self.cursor_row(thread, user, attempt > 0).await? {
                None => {
                    inner
                        .lwt(&inner.st.CURSOR_INSERT, (thread, user, d, r))
                        .await
                }
                Some((sd, sr)) => {
                    let (nd, nr) = (sd.max(d), sr.max(r));
                    if (nd, nr) == (sd, sr) {
                        return Ok(());
                    }
                    inner
                        .lwt(&inner.st.CURSOR_UPDATE, (nd, nr, thread, user, sd, sr))
                        .await
                }
            };
            match outcome {
                Lwt::Applied => return Ok(()),
                // Moved meanwhile, or unknown: read again (serially) and retry.
                Lwt::NotApplied | Lwt::Unknown(_) => continue,
                Lwt::Failed(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(format!(
            "cursor of {user} in {thread}: no outcome after {MAX_CAS} attempts"
        )))
    }

    async fn cursors(&self, thread: &str) -> Result<Vec<Cursor>, StoreError> {
        let inner = &self.inner;
        inner
            .pages(&inner.st.CURSORS, (thread,), usize::MAX, |rows, out| {
                for row in rows
                    .rows::<(String, Option<i64>, Option<i64>)>()
                    .map_err(|e| corrupt("cursor", e))?
                {
                    let (user, d, r) = row.map_err(|e| corrupt("cursor", e))?;
                    out.push(Cursor {
                        user,
                        delivered: from_db("cursor", d.unwrap_or(0))?,
                        read: from_db("cursor", r.unwrap_or(0))?,
                    });
                }
                Ok(())
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(user, seq = event.seq))]
    async fn append_inbox(&self, user: &str, event: &InboxEvent) -> Result<(), StoreError> {
        let row = SeqRow {
            seq: event.seq,
            label: String::new(),
            who: String::new(),
            at_ms: event.at_ms,
            body: encode("inbox event", event)?.into(),
        };
        self.append(Table::Inbox, user, 0, vec![row]).await
    }

    async fn inbox_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let values = (user, clamp(after), limit_of(limit));
        inner
            .pages(
                &inner.st.INBOX_AFTER,
                values,
                limit,
                bodies("inbox event", user),
            )
            .await
    }

    async fn inbox_head(&self, user: &str) -> Result<u64, StoreError> {
        self.inner.head(Table::Inbox, user).await
    }

    async fn add_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner
            .run(
                &inner.st.MEMBERSHIP_INSERT,
                (user, crate::seqs::membership_code(kind) as i8, id),
            )
            .await
            .map(drop)
    }

    async fn remove_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner
            .run(
                &inner.st.MEMBERSHIP_DELETE,
                (user, crate::seqs::membership_code(kind) as i8, id),
            )
            .await
            .map(drop)
    }

    async fn memberships(
        &self,
        user: &str,
        kind: MembershipKind,
    ) -> Result<Vec<String>, StoreError> {
        let inner = &self.inner;
        let values = (user, crate::seqs::membership_code(kind) as i8);
        inner
            .pages(&inner.st.MEMBERSHIPS, values, usize::MAX, |rows, out| {
                for row in rows
                    .rows::<(String,)>()
                    .map_err(|e| corrupt("membership", e))?
                {
                    out.push(row.map_err(|e| corrupt("membership", e))?.0);
                }
                Ok(())
            })
            .await
    }
}
