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
//! - a member on another node has no queue here: its connection is
//!   *linked* and what is sent to it goes to its node's link
//!   (`relay/link.rs`), whose backlog bound plays the queue's part; the
//!   edge node applies this policy with the session's own queue.
//!
//! The queue is a `VecDeque` under a mutex that allocates nothing until a
//! frame waits and gives back what a burst grew: an idle connection's
//! queue costs ~100 bytes (a bounded tokio channel allocated a 32-slot
//! block and a cache-padded channel, ~1.8 KiB, for every connection).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::relay::link::{Class, Handed, Link};
use bytes::Bytes;
use chalktalk_protocol::{CloseCode, UserId};
use tokio::sync::Notify;

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
/// An empty queue that grew past this many slots in a burst shrinks back.
const SHRINK_ABOVE: usize = 64;

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
    joined: Mutex<std::collections::HashSet<String>>,
    queue: Arc<Queue>,
    stats: Arc<OutboundStats>,
    /// A member on another node: what is sent goes to its node's link
    /// (tagged with its session there) instead of `queue`.
    link: Option<(Arc<Link>, SessionId)>,
}

impl std::ops::Deref for Outbound {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.0
    }
}

impl Drop for Conn {
    /// The last handle is gone: the writer ends once the queue is drained.
    fn drop(&mut self) {
        crate::lock(&self.queue.state).senders_gone = true;
        self.queue.ready.notify_one();
    }
}

/// The queue shared by a connection's [`Outbound`] and its writer.
#[derive(Debug, Default)]
struct Queue {
    state: Mutex<State>,
    /// Wakes the writer: a frame in an empty queue, a kill, or the last
    /// handle gone (a stored permit, so no wake-up is lost).
    ready: Notify,
    /// The close code of a kill that bypassed the full queue (0: none).
    kill: AtomicU16,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Out>,
    /// The writer is gone: every send fails.
    closed: bool,
    /// Every handle is gone: nothing more will arrive.
    senders_gone: bool,
}

/// Why a frame was not queued.
enum Refused {
    Full,
    Closed,
}

impl Queue {
    /// Queues `out` if fewer than `limit` frames wait.
    fn push(&self, out: Out, limit: usize) -> Result<(), Refused> {
        let mut st = crate::lock(&self.state);
        if st.closed {
            return Err(Refused::Closed);
        }
        if st.frames.len() >= limit {
            return Err(Refused::Full);
        }
        let wake = st.frames.is_empty();
        st.frames.push_back(out);
        drop(st);
        // The writer drains the queue before it waits again, so only the
        // first frame of a burst needs to wake it.
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    fn killed(&self) -> Option<u16> {
        match self.kill.load(Ordering::Acquire) {
            0 => None,
            c => Some(c),
        }
    }
}

/// The writer's end of one connection's queue.
#[derive(Debug)]
pub struct OutboundRx {
    queue: Arc<Queue>,
}

impl OutboundRx {
    /// The next frame, or a close: a kill that bypassed the full queue
    /// comes first; `None` once every handle is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Out> {
        loop {
            if let Some(code) = self.queue.killed() {
                return Some(Out::Close(
                    code,
                    "closing: the outbound queue is full".into(),
                ));
            }
            {
                let mut st = crate::lock(&self.queue.state);
                if let Some(out) = pop(&mut st) {
                    return Some(out);
                }
                if st.senders_gone {
                    return None;
                }
            }
            self.queue.ready.notified().await;
        }
    }

    /// The next frame if one waits.
    pub fn try_recv(&mut self) -> Option<Out> {
        pop(&mut crate::lock(&self.queue.state))
    }

    /// Refuses every later send (as if the writer were gone).
    pub fn close(&mut self) {
        let mut st = crate::lock(&self.queue.state);
        st.closed = true;
        st.frames = VecDeque::new();
    }

    /// True once a close was asked for while the queue was full.
    pub fn killed(&self) -> bool {
        self.queue.killed().is_some()
    }
}

impl Drop for OutboundRx {
    fn drop(&mut self) {
        self.close();
    }
}

fn pop(st: &mut State) -> Option<Out> {
    let out = st.frames.pop_front();
    if st.frames.is_empty() && st.frames.capacity() > SHRINK_ABOVE {
        st.frames.shrink_to(8);
    }
    out
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
    ) -> (Outbound, OutboundRx) {
        let queue = Arc::new(Queue::default());
        (
            Outbound(Arc::new(Conn {
                session,
                user,
                device,
                joined: Default::default(),
                queue: queue.clone(),
                stats,
                link: None,
            })),
            OutboundRx { queue },
        )
    }

    /// A member on another node (a shadow, known here as `session`):
    /// what is sent to it goes to `link` for its session `remote` there.
    pub fn linked(
        session: SessionId,
        user: UserId,
        device: String,
        stats: Arc<OutboundStats>,
        link: Arc<Link>,
        remote: SessionId,
    ) -> Outbound {
        Outbound(Arc::new(Conn {
            session,
            user,
            device,
            joined: Default::default(),
            queue: Arc::new(Queue::default()),
            stats,
            link: Some((link, remote)),
        }))
    }

    /// The node link and the session there, for a member on another node.
    pub fn link(&self) -> Option<&(Arc<Link>, SessionId)> {
        self.link.as_ref()
    }

    /// A handle that does not keep the connection's queue alive.
    pub fn downgrade(&self) -> std::sync::Weak<Conn> {
        Arc::downgrade(&self.0)
    }

    /// The connection of a [`Outbound::downgrade`], while it exists.
    pub fn upgrade(weak: &std::sync::Weak<Conn>) -> Option<Outbound> {
        weak.upgrade().map(Outbound)
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

    /// Frames queued and not yet taken by the socket writer.
    pub fn queued(&self) -> usize {
        if self.link.is_some() {
            return 0;
        }
        crate::lock(&self.queue.state).frames.len()
    }

    /// True once the connection's writer has gone away.
    pub fn is_closed(&self) -> bool {
        if let Some((link, _)) = &self.link {
            return link.is_closed();
        }
        self.queue.killed().is_some() || crate::lock(&self.queue.state).closed
    }

    /// Sends an ephemeral frame if there is room; returns whether it was queued.
    pub fn ephemeral(&self, frame: &Bytes) -> bool {
        if let Some((link, remote)) = &self.link {
            return match link.one(frame, Class::Ephemeral, *remote) {
                Handed::Sent => true,
                Handed::Full => {
                    self.stats.ephemeral_dropped.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Handed::Gone => false,
            };
        }
        match self.queue.push(
            Out::Frame(frame.clone()),
            OUTBOUND_CAPACITY - EPHEMERAL_RESERVE,
        ) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.stats.ephemeral_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Sends a durable frame under the lagging policy.
    pub fn durable(&self, frame: &Bytes) -> Durable {
        if let Some((link, remote)) = &self.link {
            return match link.one(frame, Class::Durable, *remote) {
                Handed::Sent => Durable::Sent,
                Handed::Full => {
                    self.stats.lagged.fetch_add(1, Ordering::Relaxed);
                    Durable::Lagging
                }
                Handed::Gone => Durable::Gone,
            };
        }
        match self.queue.push(
            Out::Frame(frame.clone()),
            OUTBOUND_CAPACITY - DURABLE_RESERVE,
        ) {
            Ok(()) => Durable::Sent,
            Err(Refused::Full) => {
                self.stats.lagged.fetch_add(1, Ordering::Relaxed);
                Durable::Lagging
            }
            Err(Refused::Closed) => Durable::Gone,
        }
    }

    /// Sends a reply or notice that must not be lost: if the queue is full
    /// the connection is closed (4008) so the client resumes cleanly.
    pub fn control(&self, frame: Bytes) {
        if let Some((link, remote)) = &self.link {
            link.control(frame, *remote);
            return;
        }
        if let Err(Refused::Full) = self.queue.push(Out::Frame(frame), OUTBOUND_CAPACITY) {
            self.kill(
                CloseCode::SLOW_CONSUMER,
                "too slow to receive; reconnect and resume",
            );
        }
    }

    /// Closes the connection with `code` (the writer sends the close frame
    /// after what is already queued; past a full queue, at once, through
    /// the kill switch, which keeps the first code asked for).
    pub fn kill(&self, code: u16, reason: &str) {
        if let Some((link, remote)) = &self.link {
            link.close(*remote, code, reason);
            self.stats.killed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self
            .queue
            .push(Out::Close(code, reason.into()), OUTBOUND_CAPACITY)
            .is_err()
        {
            let _ = self
                .queue
                .kill
                .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
            self.queue.ready.notify_one();
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
        let (out, mut rx) = Outbound::new(1, "u".into(), "d".into(), stats.clone());
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
        assert!(!rx.killed());
        out.control(f.clone());
        assert!(
            rx.killed(),
            "a full queue must kill, not block or drop a reply"
        );
        assert_eq!(stats.ephemeral_dropped.load(Ordering::Relaxed), 1);
        rx.close();
        assert_eq!(out.durable(&f), Durable::Gone);
    }

    #[tokio::test]
    async fn writer_gets_frames_in_order_then_the_end_when_every_handle_is_gone() {
        let (out, mut rx) = Outbound::new(1, "u".into(), "d".into(), Arc::default());
        let waiter = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(o) = rx.recv().await {
                match o {
                    Out::Frame(b) => got.push(b),
                    Out::Close(..) => panic!("no close was asked for"),
                }
            }
            got
        });
        // The writer is already waiting: the first frame must wake it.
        tokio::task::yield_now().await;
        let copy = out.clone();
        out.control(Bytes::from_static(b"1"));
        copy.control(Bytes::from_static(b"2"));
        drop(out);
        copy.control(Bytes::from_static(b"3"));
        drop(copy);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the writer ends once every handle is gone")
            .expect("writer task");
        assert_eq!(got, vec![&b"1"[..], &b"2"[..], &b"3"[..]]);
    }

    #[tokio::test]
    async fn a_kill_waits_behind_queued_frames_unless_the_queue_is_full() {
        let (out, mut rx) = Outbound::new(1, "u".into(), "d".into(), Arc::default());
        out.control(Bytes::from_static(b"answer"));
        out.kill(CloseCode::FLOOD, "flood");
        assert!(matches!(rx.recv().await, Some(Out::Frame(_))));
        assert!(matches!(rx.recv().await, Some(Out::Close(c, _)) if c == CloseCode::FLOOD));

        let (out, mut rx) = Outbound::new(2, "u".into(), "d".into(), Arc::default());
        for _ in 0..OUTBOUND_CAPACITY {
            out.control(Bytes::from_static(b"x"));
        }
        out.kill(CloseCode::IDLE, "idle");
        out.kill(CloseCode::FLOOD, "a later code does not replace the first");
        assert!(out.is_closed());
        assert!(matches!(rx.recv().await, Some(Out::Close(c, _)) if c == CloseCode::IDLE));
    }

    #[test]
    fn a_drained_queue_gives_back_what_a_burst_grew() {
        let (out, mut rx) = Outbound::new(1, "u".into(), "d".into(), Arc::default());
        for _ in 0..500 {
            assert!(out.ephemeral(&Bytes::from_static(b"x")));
        }
        while rx.try_recv().is_some() {}
        let cap = crate::lock(&rx.queue.state).frames.capacity();
        assert!(cap <= SHRINK_ABOVE, "capacity {cap} kept after the burst");
        drop(rx);
        assert!(out.is_closed());
        assert!(!out.ephemeral(&Bytes::from_static(b"x")));
    }
}
