//! Chat thread types: messages, attachments, read/delivered cursors and the
//! ephemeral typing indicator.

use serde::{Deserialize, Serialize};

use crate::{ThreadId, UserId};

/// Direct (exactly two members: one coach-athlete pair), group, or the
/// chat of a review room (made by the server, one per room, its members
/// following the room's: [`room_thread_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadKind {
    Direct,
    Group,
    Room,
}

/// The id of a review room's own chat thread: `rt-` + the room id. Like a
/// direct thread's, it is a function of what the thread belongs to, so any
/// node can find (and create, idempotently) the one thread of a room.
pub fn room_thread_id(room: &str) -> String {
    format!("rt-{room}")
}

/// The room a room thread belongs to (the inverse of [`room_thread_id`]).
pub fn room_of_thread(kind: ThreadKind, thread: &str) -> Option<&str> {
    match kind {
        ThreadKind::Room => thread.strip_prefix("rt-"),
        ThreadKind::Direct | ThreadKind::Group => None,
    }
}

/// A reference to something stored elsewhere (a video, an image, a review).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `video`, `image`, `audio`, `file` or `review`.
    pub kind: String,
    /// The id of the referenced object.
    pub ref_id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A stored chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Position in the thread, 1-based, gap-free.
    pub seq: u64,
    /// Client-chosen message id (idempotency key).
    pub id: String,
    pub from: UserId,
    pub at_ms: u64,
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub reply_to: Option<u64>,
    /// Set when this message edits or deletes an earlier one of the same
    /// author (`edit_message` / `delete_message`); nil on a plain message.
    #[serde(default)]
    pub edit: Option<MsgEdit>,
}

/// What a message of the thread's stream does to an earlier message `of`
/// (its seq): `edit` replaces its text with this message's `text`;
/// `delete` removes it (this message's `text` is empty). Such messages are
/// sequenced, stored, pushed and replayed like any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum MsgEdit {
    Edit { of: u64 },
    Delete { of: u64 },
}

impl MsgEdit {
    /// The seq of the message edited or deleted.
    pub fn of(&self) -> u64 {
        match self {
            MsgEdit::Edit { of } | MsgEdit::Delete { of } => *of,
        }
    }
}

/// How far one member has received and read a thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub user: UserId,
    pub delivered: u64,
    pub read: u64,
}

/// What a thread is and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    pub id: ThreadId,
    pub kind: ThreadKind,
    #[serde(default)]
    pub title: Option<String>,
    pub created_by: UserId,
    pub members: Vec<UserId>,
    /// Seq of the newest message.
    pub head: u64,
    /// The review room whose chat this is (kind `room` only; absent
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

/// Ephemeral and cursor events of a thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum ThreadLive {
    Typing { user: UserId, on: bool },
    Cursor { cursor: Cursor },
}
