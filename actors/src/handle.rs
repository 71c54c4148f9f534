//! Bounded handles to room and thread actors. ractor mailboxes are
//! unbounded, so every sender goes through a `Handle` that counts what it
//! queued; the actor counts down as it handles. Past the limit, ephemeral
//! messages are dropped and durable requests are refused with `overloaded`
//! (the client retries with the same op id, which is idempotent).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ractor::{ActorRef, Message};

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFail {
    /// The actor's queue is over its limit.
    Overloaded,
    /// The actor has stopped (look it up again).
    Stopped,
}

/// A counted reference to an actor.
pub struct Handle<M: Message> {
    pub actor: ActorRef<M>,
    pub depth: Arc<AtomicUsize>,
    pub limit: usize,
}

impl<M: Message> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            actor: self.actor.clone(),
            depth: self.depth.clone(),
            limit: self.limit,
        }
    }
}

impl<M: Message> Handle<M> {
    /// Queues `msg`; ephemeral messages are refused earlier (at half the
    /// limit) so durable ones keep room. A message refused because the
    /// actor stopped comes back, to be sent to its next incarnation.
    pub fn send(&self, msg: M, ephemeral: bool) -> Result<(), (SendFail, Option<M>)> {
        let limit = if ephemeral {
            self.limit / 2
        } else {
            self.limit
        };
        if self.depth.load(Ordering::Relaxed) >= limit {
            return Err((SendFail::Overloaded, None));
        }
        self.depth.fetch_add(1, Ordering::Relaxed);
        self.actor.cast(msg).map_err(|e| {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            match e {
                ractor::MessagingErr::SendErr(m) => (SendFail::Stopped, Some(m)),
                _ => (SendFail::Stopped, None),
            }
        })
    }

    /// True while the actor runs.
    pub fn alive(&self) -> bool {
        matches!(
            self.actor.get_status(),
            ractor::ActorStatus::Running
                | ractor::ActorStatus::Starting
                | ractor::ActorStatus::Upgrading
        )
    }
}

/// Called by the actor for each counted message it takes off its mailbox.
pub fn handled(depth: &AtomicUsize) {
    // Saturating: never wraps, whatever the interleaving of senders.
    let _ = depth.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
        Some(d.saturating_sub(1))
    });
}
