//! Fences of room logs and chat threads on ScyllaDB.
//!
//! - Rooms (cql/007): a static column of the room's `room_events`
//!   partition, read at the serial consistency and raised by
//!   compare-and-set. The append side (the fence condition inside an
//!   append's conditional batch) is in `seqrows.rs`.
//! - Threads (cql/008): a column of the thread's `threads` row, raised the
//!   same way. Messages are bucketed over several partitions, so the
//!   fence cannot sit in the append's one-partition batch: an append
//!   reads the fence at the serial consistency first and is refused if it
//!   is not its epoch (`append_messages_at`). An older owner's append that
//!   passed that read just before the fence moved can still land; it then
//!   takes a seq the new owner has not read, whose own append of that seq
//!   conflicts (IF NOT EXISTS), so the new owner restarts from the store
//!   and serves it: nothing acked is lost and no seq is written twice
//!   (docs/ARCHITECTURE.md, "Cluster").

use chalktalk_actors::store::StoreError;
use scylla::statement::prepared::PreparedStatement;

use super::exec::{Lwt, corrupt};
use super::{Inner, ScyllaStore, clamp, from_db};

/// Compare-and-set attempts before giving up (each lost round means
/// another node moved the fence meanwhile).
const MAX_CAS: usize = 20;

/// What a fence guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Of {
    Room,
    Thread,
}

impl Of {
    fn what(self) -> &'static str {
        match self {
            Of::Room => "room",
            Of::Thread => "thread",
        }
    }

    fn get(self, inner: &Inner) -> &PreparedStatement {
        match self {
            Of::Room => &inner.st.ROOM_FENCE_GET,
            Of::Thread => &inner.st.THREAD_FENCE_GET,
        }
    }

    fn cas(self, inner: &Inner) -> &PreparedStatement {
        match self {
            Of::Room => &inner.st.ROOM_FENCE_CAS,
            Of::Thread => &inner.st.THREAD_FENCE_CAS,
        }
    }
}

impl Inner {
    /// The fence of a room or thread, read at the serial consistency (0:
    /// never fenced).
    pub(super) async fn fence(&self, of: Of, id: &str) -> Result<u64, StoreError> {
        let rows = self
            .run_serial(of.get(self), (id,))
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

    /// The room's fence ([`Inner::fence`]).
    pub(super) async fn room_fence(&self, room: &str) -> Result<u64, StoreError> {
        self.fence(Of::Room, room).await
    }
}

impl ScyllaStore {
    /// `fence_room` / `fence_thread`: CAS from the value read until the
    /// fence is `epoch`; `Fenced` once it is higher.
    pub(super) async fn raise_fence(&self, of: Of, id: &str, epoch: u64) -> Result<(), StoreError> {
        let exists = match of {
            Of::Room => self.room_row(id, false).await?.is_some(),
            Of::Thread => self.thread_row(id, false).await?.is_some(),
        };
        if !exists {
            return Err(StoreError::Conflict(format!(
                "no {} {id} to fence",
                of.what()
            )));
        }
        let inner = &self.inner;
        for _ in 0..MAX_CAS {
            let held = inner.fence(of, id).await?;
            if held > epoch {
                return Err(StoreError::Fenced {
                    what: format!("{} {id}", of.what()),
                    held,
                    tried: epoch,
                });
            }
            if held == epoch {
                return Ok(());
            }
            let old = (held > 0).then(|| clamp(held));
            match inner.lwt(of.cas(inner), (clamp(epoch), id, old)).await {
                Lwt::Applied => return Ok(()),
                // Lost the round, or unknown: read again and decide.
                Lwt::NotApplied | Lwt::Unknown(_) => continue,
                Lwt::Failed(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(format!(
            "fence of {} {id}: no outcome after {MAX_CAS} attempts",
            of.what()
        )))
    }

    /// The append side of a thread's fence: `Fenced` unless the fence,
    /// read at the serial consistency, is `epoch`.
    pub(super) async fn check_thread_fence(
        &self,
        thread: &str,
        epoch: u64,
    ) -> Result<(), StoreError> {
        let held = self.inner.fence(Of::Thread, thread).await?;
        if held != epoch {
            return Err(StoreError::Fenced {
                what: format!("thread {thread}"),
                held,
                tried: epoch,
            });
        }
        Ok(())
    }
}
