//! The owner's side of one edge node: what its rooms and threads hand to
//! the sessions of that node, once per node and frame.
//!
//! A remote member of a room or thread is an [`Outbound`](crate::outbound::Outbound)
//! whose connection is *linked*: it has no queue of its own; what the room
//! sends it goes straight into its node's [`Link`], tagged with the edge
//! session and the class of the frame. A room fanning out a broadcast
//! hands each link the frame once with the list of that node's members
//! ([`Link::group`]); a reply to one member is a group of one. The link's
//! downlink task ships what waits as one [`Down`](super::Down) message per
//! batch; the edge node pushes each frame into its sessions' own queues
//! under the class's policy (an ephemeral frame is dropped for a full
//! queue, anything else closes it with 4008), so a slow remote session is
//! treated as a slow local one.
//!
//! The backlog of a link (frames handed to it and not yet shipped) is
//! bounded like a connection's queue: past [`EPHEMERAL_LIMIT`] ephemeral
//! frames are dropped, past [`DURABLE_LIMIT`] durable frames report
//! [`Durable::Lagging`](crate::outbound::Durable) so the room resyncs those
//! members; replies and closes always go.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::outbound::SessionId;

/// Frames waiting in one link past which ephemeral ones are dropped.
pub const EPHEMERAL_LIMIT: usize = 16_384;
/// Frames waiting in one link past which durable ones lag.
pub const DURABLE_LIMIT: usize = 65_536;

/// How the edge node queues a frame for its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Class {
    /// Live input, presence: dropped when the session's queue is full.
    Ephemeral,
    /// Room events, replies, notices: the session is closed (4008) when
    /// its queue is full, and resumes by seq.
    Durable,
}

impl Class {
    pub(crate) fn byte(self) -> u8 {
        match self {
            Class::Ephemeral => 0,
            Class::Durable => 1,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Class> {
        match b {
            0 => Some(Class::Ephemeral),
            1 => Some(Class::Durable),
            _ => None,
        }
    }
}

/// What a link's downlink task receives.
#[derive(Debug)]
pub(crate) enum Item {
    /// One frame for the listed sessions of the edge node.
    Group(Bytes, Class, Vec<SessionId>),
    /// One frame for one session (a reply, or a thread's per-viewer send).
    One(Bytes, Class, SessionId),
    /// Close one session.
    Close(SessionId, u16, String),
}

/// One edge node as seen by the rooms and threads of this node.
#[derive(Debug)]
pub struct Link {
    node: String,
    tx: mpsc::UnboundedSender<Item>,
    /// Frames handed over and not yet shipped.
    backlog: Arc<AtomicUsize>,
}

/// Result of handing a frame to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    Sent,
    /// Over the link's limit for the class: dropped (ephemeral) or lagging.
    Full,
    /// The node's downlink is gone.
    Gone,
}

impl Link {
    /// A link to `node` and the receiving end its downlink task drains.
    pub(crate) fn new(node: String) -> (Arc<Link>, LinkRx) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        (
            Arc::new(Link {
                node,
                tx,
                backlog: backlog.clone(),
            }),
            LinkRx { rx, backlog },
        )
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Hands `frame` once for all of `sessions` (edge session ids).
    pub fn group(&self, frame: &Bytes, class: Class, sessions: Vec<SessionId>) -> Handed {
        if self.over(class) {
            return Handed::Full;
        }
        self.send(Item::Group(frame.clone(), class, sessions))
    }

    /// Hands `frame` for one session of the edge node.
    pub fn one(&self, frame: &Bytes, class: Class, session: SessionId) -> Handed {
        if self.over(class) {
            return Handed::Full;
        }
        self.send(Item::One(frame.clone(), class, session))
    }

    /// A reply or notice for one session: never refused for the backlog.
    pub fn control(&self, frame: Bytes, session: SessionId) -> Handed {
        self.send(Item::One(frame, Class::Durable, session))
    }

    /// True when the backlog is past the bound of `class`.
    fn over(&self, class: Class) -> bool {
        let limit = match class {
            Class::Ephemeral => EPHEMERAL_LIMIT,
            Class::Durable => DURABLE_LIMIT,
        };
        self.backlog.load(Ordering::Relaxed) >= limit
    }

    /// Closes one session of the edge node.
    pub fn close(&self, session: SessionId, code: u16, reason: &str) -> Handed {
        self.send(Item::Close(session, code, reason.into()))
    }

    fn send(&self, item: Item) -> Handed {
        self.backlog.fetch_add(1, Ordering::Relaxed);
        match self.tx.send(item) {
            Ok(()) => Handed::Sent,
            Err(_) => {
                self.backlog.fetch_sub(1, Ordering::Relaxed);
                Handed::Gone
            }
        }
    }
}

/// The downlink task's end of a [`Link`].
pub(crate) struct LinkRx {
    rx: mpsc::UnboundedReceiver<Item>,
    backlog: Arc<AtomicUsize>,
}

impl LinkRx {
    /// Waits for items and appends up to `max` of them to `buf`; 0 once
    /// the link is dropped.
    pub(crate) async fn recv_many(&mut self, buf: &mut Vec<Item>, max: usize) -> usize {
        let n = self.rx.recv_many(buf, max).await;
        self.backlog.fetch_sub(n, Ordering::Relaxed);
        n
    }

    /// Appends what already waits, without waiting, until `buf` holds
    /// `max` items.
    pub(crate) fn try_more(&mut self, buf: &mut Vec<Item>, max: usize) {
        let mut n = 0;
        while buf.len() < max {
            match self.rx.try_recv() {
                Ok(item) => {
                    buf.push(item);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        self.backlog.fetch_sub(n, Ordering::Relaxed);
    }
}

/// A room's members on other nodes, collected per link while it fans one
/// frame out (a handful of nodes: a linear search beats hashing).
#[derive(Default)]
pub struct Fan {
    links: Vec<(Arc<Link>, Vec<SessionId>)>,
}

impl Fan {
    /// Adds a member: `remote` is its session on the edge node.
    pub fn add(&mut self, link: &Arc<Link>, remote: SessionId) {
        match self.links.iter_mut().find(|(l, _)| Arc::ptr_eq(l, link)) {
            Some((_, r)) => r.push(remote),
            None => self.links.push((link.clone(), vec![remote])),
        }
    }

    /// Hands `frame` to each link once; returns the links that refused it
    /// (full or gone), whose members did not get it.
    pub fn send(self, frame: &Bytes, class: Class) -> Vec<Arc<Link>> {
        let mut refused = Vec::new();
        for (link, remote) in self.links {
            if link.group(frame, class, remote) != Handed::Sent {
                refused.push(link);
            }
        }
        refused
    }
}
