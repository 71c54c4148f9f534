//! The envelope: frames a client sends (`ClientFrame` with a request id and a
//! `ClientMsg`) and frames the server sends (`ServerFrame`: replies paired by
//! id, errors, pushes). Message types are tagged by the `t` field.

use serde::{Deserialize, Serialize};

use crate::media::{Asset, MediaFailure, MediaKind, MediaProgress, MediaStage};
use crate::{
    Annotation, Attachment, Cursor, ErrorCode, JoinMode, Limits, Message, Point, PresenceEntry,
    Role, RoomEvent, RoomId, RoomOp, StrokeIn, ThreadId, ThreadInfo, ThreadKind, ThreadLive,
    UserId,
    room::{Activity, LiveEvent},
};

/// A frame from client to server. `id` pairs the reply: every request gets
/// exactly one `ok` or `err` frame with its id. Ephemeral messages
/// (`activity`, `points`, `pointer`, `typing`) get no reply on success, only
/// an `err` on failure. Clients usually send ephemeral messages with id 0;
/// errors about a frame with id 0 (or unreadable id) come back with id 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFrame {
    pub id: u32,
    pub m: ClientMsg,
}

crate::tag_first! {
tag = "t", remote = "ClientMsg", expecting = "a client message";
/// Everything a client can ask. See docs/PROTOCOL.md for who may send each
/// and whether it is durable.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMsg {
    /// Must be the first frame. `v` lists the versions the client speaks.
    Hello {
        v: Vec<u16>,
        /// The access token, unless it came as a header or subprotocol.
        #[serde(default)]
        token: Option<String>,
        /// Stable per-device id (presence shows each device).
        device: String,
        /// Last inbox seq this device saw; missed inbox events follow.
        #[serde(default)]
        inbox_since: Option<u64>,
    },
    /// Heartbeat; the reply carries the server clock for playback sync.
    Ping,
    /// State of an asset and a signed, expiring base URL for its files.
    /// Videos: to whoever the permission matrix lets see them (owner,
    /// admins, a coach's active athletes' videos, purchased ones...);
    /// voice-overs: to the members of their room.
    MediaLink {
        asset: String,
    },
    /// Cancel processing of an asset you own.
    CancelMedia {
        asset: String,
    },
    CreateRoom {
        video_id: String,
        /// Video width / height (default 16/9), used for true angles.
        #[serde(default)]
        aspect: Option<f32>,
        /// Frames per second (default 30), used by `step`.
        #[serde(default)]
        fps: Option<f32>,
    },
    /// Join a room you are a member of. `since`: the last seq you saw.
    JoinRoom {
        room: RoomId,
        #[serde(default)]
        since: Option<u64>,
    },
    LeaveRoom {
        room: RoomId,
    },
    /// One page of the annotations of a paged join (`joined.mode` `paged`):
    /// `seq` is `snapshot.seq`, `page` counts from 0.
    SnapshotPage {
        room: RoomId,
        seq: u64,
        page: u32,
    },
    /// Ephemeral: what you are doing in the room.
    Activity {
        room: RoomId,
        activity: Activity,
    },
    /// Ephemeral: points of a stroke being drawn (`room`, then the
    /// [`LiveStroke`](crate::LiveStroke) fields, `style` optional).
    Points(StrokeIn),
    /// Ephemeral: laser pointer.
    Pointer {
        room: RoomId,
        at: Option<Point>,
    },
    /// Durable: apply an op. `op_id` makes a resend idempotent.
    Op {
        room: RoomId,
        op_id: String,
        op: RoomOp,
    },
    CreateThread {
        kind: ThreadKind,
        /// The other members (the creator is always a member).
        members: Vec<UserId>,
        #[serde(default)]
        title: Option<String>,
    },
    /// The review room's own chat thread (created by the server if the
    /// room predates room threads); answered with `thread_created`.
    /// Members of the room only (`not_member`).
    RoomThread {
        room: RoomId,
    },
    /// Start viewing a thread; messages after `since` follow.
    OpenThread {
        thread: ThreadId,
        #[serde(default)]
        since: Option<u64>,
    },
    CloseThread {
        thread: ThreadId,
    },
    /// Durable: post a message. `msg_id` makes a resend idempotent.
    Send {
        thread: ThreadId,
        msg_id: String,
        text: String,
        #[serde(default)]
        attachments: Vec<Attachment>,
        #[serde(default)]
        reply_to: Option<u64>,
    },
    /// Durable: replace the text of your own message `of` (its seq).
    /// `msg_id` makes a resend idempotent (same namespace as `send`).
    EditMessage {
        thread: ThreadId,
        msg_id: String,
        of: u64,
        text: String,
    },
    /// Durable: delete your own message `of` (its seq).
    DeleteMessage {
        thread: ThreadId,
        msg_id: String,
        of: u64,
    },
    /// Ephemeral: typing indicator.
    Typing {
        thread: ThreadId,
        on: bool,
    },
    /// Move your delivered and/or read cursor forward.
    Mark {
        thread: ThreadId,
        #[serde(default)]
        delivered: Option<u64>,
        #[serde(default)]
        read: Option<u64>,
    },
    /// Page backwards: up to `limit` messages with seq < `before`.
    History {
        thread: ThreadId,
        #[serde(default)]
        before: Option<u64>,
        limit: u32,
    },
    /// Admin only, and only when the server runs with debug hooks: make the
    /// room's actor panic (to exercise supervision).
    DebugPanic {
        room: RoomId,
    },
}
}

impl ClientMsg {
    /// Ephemeral input for a joined room (`activity`, `points`, `pointer`).
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            ClientMsg::Activity { .. } | ClientMsg::Points { .. } | ClientMsg::Pointer { .. }
        )
    }

    /// The wire name (`t`) of every client message type.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "ping",
        "media_link",
        "cancel_media",
        "create_room",
        "join_room",
        "leave_room",
        "snapshot_page",
        "activity",
        "points",
        "pointer",
        "op",
        "create_thread",
        "open_thread",
        "close_thread",
        "send",
        "edit_message",
        "delete_message",
        "typing",
        "mark",
        "history",
        "debug_panic",
    ];
}

crate::tag_first! {
tag = "t", remote = "Reply", expecting = "a reply";
/// The successful result of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Request done, nothing to return.
    Done,
    /// `base` + a path from `asset.info` is a URL that works until
    /// `expires_ms` (none while nothing is published yet).
    MediaLink {
        asset: Box<Asset>,
        base: Option<String>,
        expires_ms: u64,
    },
    Pong {
        server_ms: u64,
    },
    RoomCreated {
        room: RoomId,
    },
    /// Joined; see [`JoinMode`] for how the catch-up arrives.
    Joined {
        room: RoomId,
        mode: JoinMode,
        presence: Vec<PresenceEntry>,
    },
    /// Page `page` of `pages` of the annotations of the snapshot at `seq`.
    SnapshotPage {
        room: RoomId,
        seq: u64,
        page: u32,
        pages: u32,
        annotations: Vec<Annotation>,
    },
    /// A durable op or message is stored under `seq`. `dup` is true when the
    /// id was seen before and this is the original seq.
    Ack {
        seq: u64,
        dup: bool,
    },
    ThreadCreated {
        thread: ThreadInfo,
    },
    /// Viewing; messages after `since` up to `thread.head` follow as `msg`
    /// frames. If `since` is later than asked for, page the gap with
    /// `history`.
    ThreadOpened {
        thread: ThreadInfo,
        since: u64,
        cursors: Vec<Cursor>,
    },
    History {
        messages: Vec<Message>,
        more: bool,
    },
}
}

/// The reply to `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub v: u16,
    pub session: String,
    pub user: UserId,
    pub role: Role,
    /// Send something (a `ping` will do) at least this often.
    pub heartbeat_ms: u32,
    pub server_ms: u64,
    pub limits: Limits,
}

/// Something addressed to one user, delivered to all their devices and kept
/// so that a device that was offline gets it on its next `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Notice {
    Invited {
        room: RoomId,
        video_id: String,
        by: UserId,
    },
    /// An asset you uploaded is ready, failed or was cancelled.
    Media {
        asset: String,
        kind: MediaKind,
        stage: MediaStage,
        error: Option<MediaFailure>,
    },
    AddedToThread {
        thread: ThreadId,
        by: UserId,
    },
    /// A message in a thread the user is not viewing on any device.
    NewMessage {
        thread: ThreadId,
        seq: u64,
        from: UserId,
        preview: String,
    },
    /// The room's owner removed you from the room.
    Removed {
        room: RoomId,
        by: UserId,
    },
}

/// A sequenced inbox entry (per user, 1-based, gap-free).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxEvent {
    pub seq: u64,
    pub at_ms: u64,
    pub notice: Notice,
}

crate::tag_first! {
tag = "t", remote = "ServerFrame", expecting = "a server frame";
/// A frame from server to client.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    Welcome(Welcome),
    /// Success reply to request `id`.
    Ok {
        id: u32,
        r: Reply,
    },
    /// Failure of request `id` (0 when the frame had no id or could not be
    /// read far enough to find one).
    Err {
        id: u32,
        code: ErrorCode,
        msg: String,
    },
    /// Durable room event.
    Room {
        room: RoomId,
        ev: RoomEvent,
    },
    /// Ephemeral room event.
    Live {
        room: RoomId,
        ev: LiveEvent,
    },
    /// Durable chat message.
    Msg {
        thread: ThreadId,
        msg: Message,
    },
    /// Typing and cursor updates of a thread being viewed.
    ThreadLive {
        thread: ThreadId,
        ev: ThreadLive,
    },
    Inbox(InboxEvent),
    /// Processing progress of an asset you uploaded or that a room you
    /// joined shows (ephemeral; the final state also arrives as a notice).
    Media(MediaProgress),
    /// You stopped receiving this room's events (too slow, or the room
    /// restarted). Join again with `since` = the last seq you applied.
    Resync {
        room: RoomId,
        reason: String,
    },
}
}
