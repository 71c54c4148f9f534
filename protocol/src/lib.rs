//! chalktalk-protocol: every type that crosses the chalktalk WebSocket, the
//! MessagePack codec, stable error codes, limits and the protocol version.
//!
//! No IO lives here (the optional `client` feature adds a tokio WebSocket
//! client that tests, benches and tools share). docs/PROTOCOL.md is the prose
//! version of this crate; `vectors` holds encoded examples other clients can
//! check themselves against.

pub mod annotation;
pub mod chat;
pub mod codec;
pub mod error;
pub mod frame;
pub mod limits;
pub mod media;
pub mod room;
pub mod stroke;
pub mod tagfirst;
pub mod vectors;

#[cfg(feature = "client")]
pub mod client;

pub use annotation::{Annotation, Point, Shape, Style, TimeRange};
pub use chat::{
    Attachment, Cursor, Message, MsgEdit, ThreadInfo, ThreadKind, ThreadLive, room_of_thread,
    room_thread_id,
};
pub use codec::{
    DecodeError, decode_client, decode_server, encode, encode_annotations, encode_page_reply,
    encode_room_frame, join_array,
};
pub use error::{CloseCode, ErrorCode};
pub use frame::{ClientFrame, ClientMsg, InboxEvent, Notice, Reply, ServerFrame, Welcome};
pub use limits::Limits;
pub use media::{Asset, MediaFailure, MediaInfo, MediaKind, MediaProgress, MediaStage, Rendition};
pub use room::{
    Activity, Effect, JoinMode, LiveEvent, PlaybackState, PresenceEntry, Role, RoomEvent, RoomOp,
    RoomSnapshot,
};
pub use stroke::{LiveStroke, StrokeBy, StrokeIn};

/// The protocol version this build speaks. Clients offer a list in `hello`;
/// the server picks the highest one it also supports.
pub const PROTOCOL_VERSION: u16 = 1;
/// Every version this build can speak, oldest first.
pub const SUPPORTED_VERSIONS: &[u16] = &[1];

/// Identifier of a user (the `sub` claim of their token).
pub type UserId = String;
/// Identifier of a review room (server generated).
pub type RoomId = String;
/// Identifier of a chat thread (server generated).
pub type ThreadId = String;

/// Picks the protocol version both sides speak, if any.
pub fn negotiate(offered: &[u16]) -> Option<u16> {
    offered
        .iter()
        .copied()
        .filter(|v| SUPPORTED_VERSIONS.contains(v))
        .max()
}

/// True for ids chosen by clients or tokens: 1..=64 bytes of `[A-Za-z0-9_.:@-]`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_highest_common_version() {
        assert_eq!(negotiate(&[0, 1, 7]), Some(1));
        assert_eq!(negotiate(&[2, 3]), None);
        assert_eq!(negotiate(&[]), None);
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("coach-1@club.example"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(65)));
    }
}
