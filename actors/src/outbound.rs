//! The bounded path from actors to one connection's socket, and its policy.
//!
//! Every session has one bounded queue of already-encoded frames drained by
//! its socket writer. Actors never wait on it (one stalled client must not
//! slow a room down); they `try_send` under this policy:
//! - ephemeral frames (live points, pointer, presence, typing) are sent only
//!   while the queue is less than half full, and are dropped otherwise;
//! - durable frames (room events, messages, inbox) may use the queue up to
//!   a small reserve; a member beyond that is lagging: the room stops sending
//!   it events and queues a `resync` notice instead (it rejoins with `since`);
//! - replies and notices use the reserve; if even that is full the session
//!   is killed with close code 4008 and the client resumes after reconnect.
//! - a close requested while the queue is full (4008, 4009, 4010, 1001)
//!   bypasses the queue through the kill switch, keeping its own code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};

use bytes::Bytes;
use chalktalk_protocol::{CloseCode, UserId};
use tokio::sync::{Notify, mpsc};

/// Encodes the success reply to request `req`.
pub fn ok_frame(req: u32, r: chalktalk_protocol::Reply) -> Bytes {
    Bytes::from(chalktalk_protocol::encode(
        &chalktalk_protocol::ServerFrame::Ok { id: req, r },
    ))
}

/// Encodes the failure of request `req`.
pub fn err_frame(req: u32, code: chalktalk_protocol::ErrorCode, msg: impl Into<String>) -> Bytes {
    Bytes::from(chalktalk_protocol::encode(
        &chalktalk_protocol::ServerFrame::Err {
            id: req,
            code,
            msg: msg.into(),
        },
    ))
}

/// Frames one session's queue holds.
pub const OUTBOUND_CAPACITY: usize = 1024;
/// Free slots below which ephemeral frames are dropped.
const EPHEMERAL_RESERVE: usize = OUTBOUND_CAPACITY / 2;
/// Free slots below which a durable frame marks the member as lagging.
const DURABLE_RESERVE: usize = 16;

/// Identifies one connection on this node.
pub type SessionId = u64;

/// What the socket writer drains.
#[derive(Debug)]
pub enum Out {
    Frame(Bytes),
    Close(u16, String),
}

/// Counters shared by all outbound queues (for metrics and benches).
#[derive(Debug, Default)]
pub struct OutboundStats {
    pub ephemeral_dropped: AtomicU64,
    pub lagged: AtomicU64,
    pub killed: AtomicU64,
}

/// The cheap-to-clone handle actors use to reach one connection: one
/// reference count, however many rooms, threads and maps hold it (a clone
/// used to copy the user and device strings and the sender: ~100 bytes and
/// two allocations per holder, per connection).
#[derive(Clone, Debug)]
pub struct Outbound(Arc<Conn>);

/// What an [`Outbound`] refers to (its fields read through `Deref`).
#[derive(Debug)]
pub struct Conn {
    pub session: SessionId,
    pub user: UserId,
    pub device: String,
    /// Rooms this connection is a joined member of, kept by the rooms
    /// themselves (added on a successful join, removed on leave, resync or
    /// restart), so the session refuses live input to any other room.
    joined: std::sync::Mutex<std::collections::HashSet<String>>,
    tx: mpsc::Sender<Out>,
    kill: Arc<KillSwitch>,
    stats: Arc<OutboundStats>,
}

impl std::ops::Deref for Outbound {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.0
    }
}

/// Set when a session must be closed although its queue is full.
#[derive(Debug, Default)]
pub struct KillSwitch {
    flag: AtomicBool,
    /// The close code asked for first (0 until set).
    code: AtomicU16,
    pub notify: Notify,
}

impl KillSwitch {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// The close code to send (4008 if none was recorded).
    pub fn code(&self) -> u16 {
        match self.code.load(Ordering::Acquire) {
            0 => CloseCode::SLOW_CONSUMER,
            c => c,
        }
    }
}

/// Result of a durable send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    Sent,
    /// The member is too slow: stop sending it events, tell it to resync.
    Lagging,
    /// The connection is gone.
    Gone,
}

impl Outbound {
    /// Creates the queue; the receiver goes to the socket writer.
    pub fn new(
        session: SessionId,
        user: UserId,
        device: String,
        stats: Arc<OutboundStats>,
    ) -> (Outbound, mpsc::Receiver<Out>, Arc<KillSwitch>) {
        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let kill = Arc::new(KillSwitch::default());
        (
            Outbound(Arc::new(Conn {
                session,
                user,
                device,
                joined: Default::default(),
                tx,
                kill: kill.clone(),
                stats,
            })),
            rx,
            kill,
        )
    }

    /// True if a room has this connection as a joined member.
    pub fn in_room(&self, room: &str) -> bool {
        crate::lock(&self.joined).contains(room)
    }

    /// Called by a room when it adds (`true`) or drops this connection.
    pub fn set_in_room(&self, room: &str, joined: bool) {
        let mut set = crate::lock(&self.joined);
        if joined {
            set.insert(room.to_string());
        } else {
            set.remove(room);
        }
    }

    /// True once the connection's writer has gone away.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.kill.is_set()
    }

    /// Sends an ephemeral frame if there is room; returns whether it was queued.
    pub fn ephemeral(&self, frame: &Bytes) -> bool {
        if self.tx.capacity() <= EPHEMERAL_RESERVE {
            self.stats.ephemeral_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.tx.try_send(Out::Frame(frame.clone())).is_ok()
    }

    /// Sends a durable frame under the lagging policy.
    pub fn durable(&self, frame: &Bytes) -> Durable {
        if self.tx.is_closed() {
            return Durable::Gone;
        }
        if self.tx.capacity() <= DURABLE_RESERVE {
            self.stats.lagged.fetch_add(1, Ordering::Relaxed);
            return Durable::Lagging;
        }
        match self.tx.try_send(Out::Frame(frame.clone())) {
            Ok(()) => Durable::Sent,
            Err(mpsc::error::TrySendError::Full(_)) => Durable::Lagging,
            Err(mpsc::error::TrySendError::Closed(_)) => Durable::Gone,
        }
    }

    /// Sends a reply or notice that must not be lost: if the queue is full
    /// the connection is closed (4008) so the client resumes cleanly.
    pub fn control(&self, frame: Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(Out::Frame(frame)) {
            self.kill(
                CloseCode::SLOW_CONSUMER,
                "too slow to receive; reconnect and resume",
            );
        }
    }

    /// Closes the connection with `code` (the writer sends the close frame).
    pub fn kill(&self, code: u16, reason: &str) {
        if self.tx.try_send(Out::Close(code, reason.into())).is_err() {
            let _ = self
                .kill
                .code
                .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
            self.kill.flag.store(true, Ordering::Release);
            self.kill.notify.notify_one();
        }
        self.stats.killed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ephemeral_dropped_first_then_durable_lags() {
        let stats = Arc::new(OutboundStats::default());
        let (out, mut rx, kill) = Outbound::new(1, "u".into(), "d".into(), stats.clone());
        let f = Bytes::from_static(b"x");
        let mut eph = 0;
        while out.ephemeral(&f) {
            eph += 1;
        }
        assert_eq!(eph, OUTBOUND_CAPACITY - EPHEMERAL_RESERVE);
        let mut dur = 0;
        while out.durable(&f) == Durable::Sent {
            dur += 1;
        }
        assert_eq!(dur, EPHEMERAL_RESERVE - DURABLE_RESERVE);
        // Replies still fit in the reserve.
        for _ in 0..DURABLE_RESERVE {
            out.control(f.clone());
        }
        assert!(!kill.is_set());
        out.control(f.clone());
        assert!(
            kill.is_set(),
            "a full queue must kill, not block or drop a reply"
        );
        assert_eq!(stats.ephemeral_dropped.load(Ordering::Relaxed), 1);
        rx.close();
        assert_eq!(out.durable(&f), Durable::Gone);
    }
}
