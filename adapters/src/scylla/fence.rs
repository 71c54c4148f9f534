//! Fences of room logs on ScyllaDB (cql/007): a static column of the
//! room's `room_events` partition, read at the serial consistency and
//! raised by compare-and-set. The append side (the fence condition inside
//! an append's conditional batch) is in `seqrows.rs`.

use chalktalk_actors::store::StoreError;

use super::exec::{Lwt, corrupt};
use super::{Inner, ScyllaStore, clamp, from_db};

/// Compare-and-set attempts before giving up (each lost round means
/// another node moved the fence meanwhile).
const MAX_CAS: usize = 20;

impl Inner {
    /// The room's fence, read at the serial consistency (0: never fenced).
    pub(super) async fn room_fence(&self, room: &str) -> Result<u64, StoreError> {
        let rows = self
            .run_serial(&self.st.ROOM_FENCE_GET, (room,))
            .await?
            .into_rows_result()
            .map_err(|e| corrupt("fence", e))?;
        match rows
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(|e| corrupt("fence", e))?
        {
            Some((Some(f),)) => from_db("fence", f),
            _ => Ok(0),
        }
    }
}

impl ScyllaStore {
    /// [`chalktalk_actors::store::Store::fence_room`]: CAS from the value
    /// read until the fence is `epoch`; `Fenced` once it is higher.
    pub(super) async fn raise_fence(&self, room: &str, epoch: u64) -> Result<(), StoreError> {
        if self.room_row(room, false).await?.is_none() {
            return Err(StoreError::Conflict(format!("no room {room} to fence")));
        }
        let inner = &self.inner;
        for _ in 0..MAX_CAS {
            let held = inner.room_fence(room).await?;
            if held > epoch {
                return Err(StoreError::Fenced {
                    what: format!("room {room}"),
                    held,
                    tried: epoch,
                });
            }
            if held == epoch {
                return Ok(());
            }
            let old = (held > 0).then(|| clamp(held));
            match inner
                .lwt(&inner.st.ROOM_FENCE_CAS, (clamp(epoch), room, old))
                .await
            {
                Lwt::Applied => return Ok(()),
                // Lost the round, or unknown: read again and decide.
                Lwt::NotApplied | Lwt::Unknown(_) => continue,
                Lwt::Failed(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(format!(
            "fence of room {room}: no outcome after {MAX_CAS} attempts"
        )))
    }
}
