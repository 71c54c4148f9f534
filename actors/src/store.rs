//! The storage port: the one trait the actors persist through. The embedded
//! adapter (redb, the default) and the ScyllaDB adapter live in the
//! application crate (src/store/) and must both pass its conformance suite.
//!
//! Contract shared by every method that writes: when the future resolves
//! `Ok`, the write is durable (fsynced, or acknowledged by a quorum). Writers
//! are expected to batch concurrent calls into one commit (group commit).

use async_trait::async_trait;
use chalktalk_protocol::{Cursor, InboxEvent, Message, RoomEvent, ThreadKind, UserId};
use serde::{Deserialize, Serialize};

/// Storage failures, as the actors see them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or refused the operation; retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A write contradicts stored state (e.g. a seq that already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write carried a fencing epoch that is not the partition's current
    /// one: another node took the room or thread over (its lease has a
    /// newer epoch). Nothing of the call was written; the writer must stop.
    #[error("fenced: {what} is held at epoch {held}, this write carried epoch {tried}")]
    Fenced { what: String, held: u64, tried: u64 },
}

impl StoreError {
    /// The error code a client is answered with: `unavailable` for a store
    /// that cannot be reached (retry later), `internal` for the rest.
    pub fn code(&self) -> chalktalk_protocol::ErrorCode {
        match self {
            StoreError::Unavailable(_) | StoreError::Fenced { .. } => {
                chalktalk_protocol::ErrorCode::Unavailable
            }
            StoreError::Corrupt(_) | StoreError::Conflict(_) => {
                chalktalk_protocol::ErrorCode::Internal
            }
        }
    }
}

/// What a review room is, fixed at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomMeta {
    pub id: String,
    pub video_id: String,
    pub owner: UserId,
    /// Video width / height.
    pub aspect: f32,
    pub fps: f32,
    pub created_ms: u64,
}

/// What a chat thread is, fixed at creation (but the members of a room
/// thread, which follow the room's: [`Store::set_thread_member`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadMeta {
    pub id: String,
    pub kind: ThreadKind,
    pub title: Option<String>,
    pub created_by: UserId,
    pub members: Vec<UserId>,
    pub created_ms: u64,
}

/// A room event with its stored encoding (MessagePack with named fields,
/// [`chalktalk_protocol::encode`]), made once by the room: the store writes
/// `bytes` as they are and every member's `room` frame splices the same
/// bytes ([`chalktalk_protocol::encode_room_frame`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub ev: RoomEvent,
    pub bytes: bytes::Bytes,
}

impl EncodedEvent {
    pub fn new(ev: RoomEvent) -> Self {
        let bytes = bytes::Bytes::from(chalktalk_protocol::encode(&ev));
        EncodedEvent { ev, bytes }
    }

    pub fn seq(&self) -> u64 {
        self.ev.seq
    }
}

/// A room state snapshot: opaque bytes owned by the room actor, valid at `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// Which kind of thing a membership points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipKind {
    Room,
    Thread,
}

/// Persistence for rooms, threads and inboxes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `Ok` if the store can serve reads and writes now (for `/ready`). The
    /// default probes with a read; adapters that know more (a failing
    /// writer) say so.
    async fn health(&self) -> Result<(), StoreError> {
        self.room_head("ready-probe").await.map(drop)
    }

    /// Creates a room; `Ok(false)` if a room with this id exists already.
    async fn create_room(&self, meta: &RoomMeta) -> Result<bool, StoreError>;
    async fn room(&self, id: &str) -> Result<Option<RoomMeta>, StoreError>;
    /// Appends events (consecutive seqs, in order). An event whose seq is
    /// already stored is a `Conflict` and nothing of the call is written.
    /// Adapters store `bytes` (what `room_events` decodes) rather than
    /// encoding the event again.
    ///
    /// Fencing: `epoch` must equal the room's fence ([`Store::fence_room`];
    /// 0 for a room never fenced), checked atomically with the write;
    /// otherwise the call is `Fenced` and nothing is written.
    async fn append_room_events(
        &self,
        room: &str,
        epoch: u64,
        events: &[EncodedEvent],
    ) -> Result<(), StoreError>;
    /// Raises the room's fence to `epoch` (the epoch of the lease its new
    /// owner took): from then on appends carrying an older epoch are
    /// `Fenced`. Idempotent at the same epoch; `Fenced` if the fence is
    /// already higher. An append in flight when the fence moves is either
    /// ordered before it (and read by the new owner) or refused.
    async fn fence_room(&self, room: &str, epoch: u64) -> Result<(), StoreError>;
    /// The room's fence (0 if never fenced).
    async fn room_fence(&self, room: &str) -> Result<u64, StoreError>;
    /// Events with seq > `after`, ascending, at most `limit`.
    async fn room_events(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RoomEvent>, StoreError>;
    /// Highest stored event seq (0 if none).
    async fn room_head(&self, room: &str) -> Result<u64, StoreError>;
    /// Replaces the room's snapshot (only if newer than the stored one).
    async fn put_room_snapshot(&self, room: &str, snap: &Snapshot) -> Result<(), StoreError>;
    async fn room_snapshot(&self, room: &str) -> Result<Option<Snapshot>, StoreError>;

    /// Creates a thread; `Ok(false)` if one with this id exists already.
    async fn create_thread(&self, meta: &ThreadMeta) -> Result<bool, StoreError>;
    async fn thread(&self, id: &str) -> Result<Option<ThreadMeta>, StoreError>;
    /// Adds (`member` true) or removes `user` in the members of thread
    /// `thread`, keeping them sorted and deduplicated; idempotent and
    /// atomic against concurrent calls. `Ok(false)` if there is no such
    /// thread (nothing written). The members of a room thread follow its
    /// room's through this.
    async fn set_thread_member(
        &self,
        thread: &str,
        user: &str,
        member: bool,
    ) -> Result<bool, StoreError>;
    /// Appends messages (consecutive seqs, in order) at epoch 0 (a node
    /// outside any cluster): [`Store::append_messages_at`].
    async fn append_messages(&self, thread: &str, msgs: &[Message]) -> Result<(), StoreError> {
        self.append_messages_at(thread, 0, msgs).await
    }
    /// Appends messages (consecutive seqs, in order); an existing seq is a
    /// `Conflict` and nothing of the call is written. Fencing as for
    /// rooms: `epoch` must equal the thread's fence
    /// ([`Store::fence_thread`]; 0 for a thread never fenced), checked
    /// atomically with the write, or the call is `Fenced`.
    async fn append_messages_at(
        &self,
        thread: &str,
        epoch: u64,
        msgs: &[Message],
    ) -> Result<(), StoreError>;
    /// Raises the thread's fence to `epoch` (as [`Store::fence_room`]).
    async fn fence_thread(&self, thread: &str, epoch: u64) -> Result<(), StoreError>;
    /// The thread's fence (0 if never fenced).
    async fn thread_fence(&self, thread: &str) -> Result<u64, StoreError>;
    /// Messages with seq > `after`, ascending, at most `limit`.
    async fn messages_after(
        &self,
        thread: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;
    /// The `limit` newest messages with seq < `before`, ascending.
    async fn messages_before(
        &self,
        thread: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;
    /// Highest stored message seq (0 if none).
    async fn thread_head(&self, thread: &str) -> Result<u64, StoreError>;
    /// Stores a member's cursor; never moves either position backwards.
    async fn put_cursor(&self, thread: &str, cursor: &Cursor) -> Result<(), StoreError>;
    async fn cursors(&self, thread: &str) -> Result<Vec<Cursor>, StoreError>;

    /// Appends to a user's inbox (seq must be head + 1).
    async fn append_inbox(&self, user: &str, event: &InboxEvent) -> Result<(), StoreError>;
    /// Inbox events with seq > `after`, ascending, at most `limit`.
    async fn inbox_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError>;
    async fn inbox_head(&self, user: &str) -> Result<u64, StoreError>;

    /// Records that `user` belongs to a room or thread (idempotent).
    async fn add_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError>;
    /// Forgets that `user` belongs to a room or thread (idempotent): a
    /// member who left or was removed.
    async fn remove_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError>;
    /// Everything `user` belongs to, by kind, sorted by id.
    async fn memberships(
        &self,
        user: &str,
        kind: MembershipKind,
    ) -> Result<Vec<String>, StoreError>;
}
