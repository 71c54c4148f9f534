//! Stable error codes (sent in `err` frames) and WebSocket close codes.
//! The string form of each code is part of the protocol and never changes.

use serde::{Deserialize, Serialize};

/// Why a request failed. Serialized as a snake_case string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The bytes are not a MessagePack frame of the expected shape.
    BadFrame,
    /// The frame's `t` names no message type this version knows.
    UnknownType,
    /// A field is missing, of the wrong type or out of range.
    Invalid,
    /// A coordinate is not a finite number in 0..=1.
    InvalidCoordinates,
    /// A batch or stroke has more points than the limits allow.
    TooManyPoints,
    /// A text is longer than the limits allow.
    TextTooLong,
    /// The first frame was not `hello`, or `hello` was sent twice.
    HelloRequired,
    /// No version offered in `hello` is spoken by the server.
    UnsupportedVersion,
    /// Missing, malformed or forged token.
    Unauthorized,
    /// The token's `exp` has passed.
    TokenExpired,
    /// The caller's role or position (owner, leader) does not allow this.
    Forbidden,
    /// The caller is not a member of the room or thread.
    NotMember,
    /// No such room, thread or annotation.
    NotFound,
    /// The thing already exists or the request contradicts current state.
    Conflict,
    /// Too many frames; slow down (the connection closes if it goes on).
    RateLimited,
    /// The server is under pressure; retry later with the same op id.
    Overloaded,
    /// The store the server writes to cannot be reached or keeps failing;
    /// the request was not applied. Retry later with the same id.
    Unavailable,
    /// A bug or a storage failure on the server; the request was not applied.
    Internal,
}

impl ErrorCode {
    /// The wire string of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::Invalid => "invalid",
            ErrorCode::InvalidCoordinates => "invalid_coordinates",
            ErrorCode::TooManyPoints => "too_many_points",
            ErrorCode::TextTooLong => "text_too_long",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotMember => "not_member",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WebSocket close codes the server uses (4000-4999 are application codes).
pub struct CloseCode;

impl CloseCode {
    /// Normal close (client said goodbye, or the server shut down cleanly).
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down; reconnect to another node or later.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame was larger than `max_frame_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// Server bug.
    pub const INTERNAL: u16 = 1011;
    /// No valid `hello` within the handshake timeout, or a bad first frame.
    pub const HELLO_REQUIRED: u16 = 4000;
    /// The token was missing or forged.
    pub const UNAUTHORIZED: u16 = 4001;
    /// The token expired.
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// No common protocol version.
    pub const UNSUPPORTED_VERSION: u16 = 4003;
    /// The client kept reading too slowly; it must reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The client kept sending above its rate limit.
    pub const FLOOD: u16 = 4009;
    /// No frame (not even a heartbeat) within the idle timeout.
    pub const IDLE: u16 = 4010;
}
