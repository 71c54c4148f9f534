//! Review room messages: durable ops (sequenced, stored, acked), the events
//! that record them, ephemeral live events (stroke preview, pointer,
//! presence), playback state and the snapshot a late joiner receives.

use serde::{Deserialize, Serialize};

use crate::{Annotation, Point, StrokeBy, TimeRange, UserId};

/// A user's role as stated by their token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Coach,
    Athlete,
    Admin,
}

/// What a present member is doing, shown next to their avatar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    #[default]
    Watching,
    Drawing,
    Recording,
    Idle,
}

crate::tag_first! {
tag = "k", remote = "RoomOp", expecting = "a room op";
/// A durable operation a member asks the room to apply. Every op is
/// sequenced, stored before it is acknowledged, and sent to all members.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomOp {
    /// Add an annotation (a committed stroke or a shape). Its id must be new.
    Add { ann: Annotation },
    /// Replace one of your own annotations (move, restyle, edit text).
    Update { ann: Annotation },
    /// Delete one of your own annotations (the room owner may delete any).
    Delete { id: String },
    /// Undo your most recent add/update/delete that is not undone yet.
    Undo,
    /// Redo your most recently undone op (any new op of yours clears redo).
    Redo,
    /// Owner only: remove every annotation, or those visible in `range`.
    Clear { range: Option<TimeRange> },
    /// Leader only: start playing from `position_ms`.
    Play { position_ms: f64 },
    /// Leader only: pause at `position_ms`.
    Pause { position_ms: f64 },
    /// Leader only: jump to `position_ms`, keeping play/pause.
    Seek { position_ms: f64 },
    /// Leader only: playback rate, 0.0625..=4 (0.25 is slow motion).
    Rate { rate: f32 },
    /// Leader only: pause and step `frames` frames (negative is backwards).
    Step { frames: i32 },
    /// Leader or owner: give playback control to another member.
    HandOver { to: UserId },
    /// Owner only: make a user a member of the room.
    Invite { user: UserId },
    /// A member other than the owner: stop being a member of the room.
    Leave,
    /// Owner only: remove a member (not the owner) from the room.
    Remove { user: UserId },
}
}

/// Shared playback clock. The current position is
/// `position_ms + (server_now_ms - at_server_ms) * rate` while playing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybackState {
    pub playing: bool,
    pub position_ms: f64,
    pub rate: f32,
    /// Server clock (ms since the Unix epoch) when `position_ms` was true.
    pub at_server_ms: u64,
    /// The member who controls playback.
    pub leader: UserId,
}

crate::tag_first! {
tag = "k", remote = "Effect", expecting = "an effect";
/// One change to room state. Clients apply effects in order; they never need
/// to re-derive undo or clear logic themselves.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Insert or replace the annotation with this id.
    Put { ann: Annotation },
    /// Remove the annotation with this id.
    Remove { id: String },
    /// New playback state (also carries the leader).
    Playback { state: PlaybackState },
    /// A user became a member.
    Member { user: UserId },
    /// A user stopped being a member (left or was removed).
    Unmember { user: UserId },
}
}

/// The durable record of one applied op: what was asked and what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomEvent {
    /// Position in the room's log, 1-based, gap-free.
    pub seq: u64,
    pub by: UserId,
    /// The client-supplied op id (idempotency key).
    pub op_id: String,
    /// Server time of application, ms since the Unix epoch.
    pub at_ms: u64,
    pub op: RoomOp,
    /// For undo/redo: the seq of the event undone or redone.
    #[serde(default)]
    pub target: Option<u64>,
    pub effects: Vec<Effect>,
}

/// One device of a present member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceEntry {
    pub user: UserId,
    pub device: String,
    pub activity: Activity,
    /// False while a dropped connection is inside its grace period.
    pub connected: bool,
}

crate::tag_first! {
tag = "k", remote = "LiveEvent", expecting = "a live event";
/// Ephemeral room events: not stored, not sequenced, dropped first under
/// pressure.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// Points of a stroke still being drawn by `user` (`user`, then the
    /// [`LiveStroke`](crate::LiveStroke) fields).
    Points(StrokeBy),
    /// A laser pointer position (`None` hides it).
    Pointer { user: UserId, at: Option<Point> },
    /// Everyone present, one entry per device.
    Presence { members: Vec<PresenceEntry> },
}
}

/// Full room state at `seq`, sent to late joiners and to clients too far
/// behind to be caught up event by event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    pub seq: u64,
    pub video_id: String,
    pub owner: UserId,
    pub aspect: f32,
    pub fps: f32,
    pub members: Vec<UserId>,
    pub annotations: Vec<Annotation>,
    pub playback: PlaybackState,
}

/// How a join catches the client up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum JoinMode {
    /// The events after `since` up to `head` follow as `room` frames, then
    /// live events: nothing missed, nothing twice.
    Replay { since: u64, head: u64 },
    /// The state at `snapshot.seq`; live events follow.
    Snapshot { snapshot: RoomSnapshot },
    /// A room too large for one frame: `snapshot` is the state at
    /// `snapshot.seq` without its annotations, which the client fetches as
    /// `pages` pages (`snapshot_page`, page 0 to pages − 1) holding
    /// `annotations` in all. Events with seq > `snapshot.seq` follow as
    /// `room` frames meanwhile: buffer them and apply them after the last
    /// page.
    Paged {
        snapshot: RoomSnapshot,
        annotations: u32,
        pages: u32,
    },
}
