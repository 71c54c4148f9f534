//! Reading the single rows of rooms, threads, snapshots and cursors for
//! [`ScyllaStore`] (at the store's consistency, or at the serial one when
//! settling a lightweight transaction whose outcome is unknown).

use chalktalk_actors::store::{RoomMeta, StoreError, ThreadMeta};
use chalktalk_protocol::ThreadKind;

use super::exec::corrupt;
use super::{ScyllaStore, from_db};

pub(super) fn thread_kind(kind: &ThreadKind) -> &'static str {
    match kind {
        ThreadKind::Direct => "direct",
        ThreadKind::Group => "group",
        ThreadKind::Room => "room",
    }
}

fn missing(what: &str, id: &str, column: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {id}: no {column}"))
}

type RoomRow = (
    String,
    Option<String>,
    Option<String>,
    Option<f32>,
    Option<f32>,
    Option<i64>,
);
type ThreadRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    Option<i64>,
);

impl ScyllaStore {
    pub(super) async fn room_row(
        &self,
        id: &str,
        serial: bool,
    ) -> Result<Option<RoomMeta>, StoreError> {
        let inner = &self.inner;
        let result = if serial {
            inner.run_serial(&inner.st.ROOM_GET, (id,)).await?
        } else {
            inner.run(&inner.st.ROOM_GET, (id,)).await?
        };
        let rows = result.into_rows_result().map_err(|e| corrupt("room", e))?;
        let Some((rid, video_id, owner, aspect, fps, created)) = rows
            .maybe_first_row::<RoomRow>()
            .map_err(|e| corrupt("room", e))?
        else {
            return Ok(None);
        };
        Ok(Some(RoomMeta {
            video_id: video_id.ok_or_else(|| missing("room", id, "video_id"))?,
            owner: owner.ok_or_else(|| missing("room", id, "owner"))?,
            aspect: aspect.ok_or_else(|| missing("room", id, "aspect"))?,
            fps: fps.ok_or_else(|| missing("room", id, "fps"))?,
            created_ms: from_db("created_ms", created.unwrap_or(0))?,
            id: rid,
        }))
    }

    pub(super) async fn thread_row(
        &self,
        id: &str,
        serial: bool,
    ) -> Result<Option<ThreadMeta>, StoreError> {
        let inner = &self.inner;
        let result = if serial {
            inner.run_serial(&inner.st.THREAD_GET, (id,)).await?
        } else {
            inner.run(&inner.st.THREAD_GET, (id,)).await?
        };
        let rows = result
            .into_rows_result()
            .map_err(|e| corrupt("thread", e))?;
        let Some((tid, kind, title, created_by, members, created)) = rows
            .maybe_first_row::<ThreadRow>()
            .map_err(|e| corrupt("thread", e))?
        else {
            return Ok(None);
        };
        let kind = match kind.as_deref() {
            Some("direct") => ThreadKind::Direct,
            Some("group") => ThreadKind::Group,
            Some("room") => ThreadKind::Room,
            other => return Err(corrupt("thread", format!("{id}: kind {other:?}"))),
        };
        Ok(Some(ThreadMeta {
            id: tid,
            kind,
            title,
            created_by: created_by.ok_or_else(|| missing("thread", id, "created_by"))?,
            // CQL stores an empty list as null.
            members: members.unwrap_or_default(),
            created_ms: from_db("created_ms", created.unwrap_or(0))?,
        }))
    }

    /// The stored snapshot seq (at the serial consistency when settling).
    pub(super) async fn snapshot_seq(
        &self,
        room: &str,
        serial: bool,
    ) -> Result<Option<u64>, StoreError> {
        let inner = &self.inner;
        let result = if serial {
            inner.run_serial(&inner.st.SNAPSHOT_GET, (room,)).await?
        } else {
            inner.run(&inner.st.SNAPSHOT_GET, (room,)).await?
        };
        let rows = result
            .into_rows_result()
            .map_err(|e| corrupt("snapshot", e))?;
        match rows
            .maybe_first_row::<(Option<i64>, Option<Vec<u8>>)>()
            .map_err(|e| corrupt("snapshot", e))?
        {
            Some((seq, _)) => Ok(Some(from_db("snapshot seq", seq.unwrap_or(0))?)),
            None => Ok(None),
        }
    }

    /// A cursor as stored (at the serial consistency after a failed CAS).
    pub(super) async fn cursor_row(
        &self,
        thread: &str,
        user: &str,
        serial: bool,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let inner = &self.inner;
        let result = if serial {
            inner
                .run_serial(&inner.st.CURSOR_GET, (thread, user))
                .await?
        } else {
            inner.run(&inner.st.CURSOR_GET, (thread, user)).await?
        };
        let rows = result
            .into_rows_result()
            .map_err(|e| corrupt("cursor", e))?;
        Ok(rows
            .maybe_first_row::<(Option<i64>, Option<i64>)>()
            .map_err(|e| corrupt("cursor", e))?
            .map(|(d, r)| (d.unwrap_or(0), r.unwrap_or(0))))
    }
}
