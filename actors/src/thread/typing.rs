//! The typing indicator with a server-side timeout: `typing {on: true}`
//! is relayed to the other viewers and lasts `typing_timeout` (renewed by
//! each `on: true`); when it is not renewed in time, or the connection
//! closes the thread or drops while typing, the thread relays
//! `typing {on: false}` itself.

use chalktalk_protocol::ThreadLive;
use ractor::ActorRef;

use super::{ThreadMsg, ThreadState};
use crate::outbound::{Outbound, SessionId};

impl ThreadState {
    pub(super) fn typing(&mut self, myself: &ActorRef<ThreadMsg>, out: &Outbound, on: bool) {
        // A non-member's typing is ignored silently.
        if !self.meta.members.contains(&out.user) {
            return;
        }
        if on {
            self.typing_epoch += 1;
            let epoch = self.typing_epoch;
            let session = out.session;
            self.typing.insert(session, (out.user.clone(), epoch));
            myself.send_after(self.deps.config.typing_timeout, move || {
                ThreadMsg::TypingExpired { session, epoch }
            });
        } else {
            self.typing.remove(&out.session);
        }
        self.live(
            ThreadLive::Typing {
                user: out.user.clone(),
                on,
            },
            Some(out.session),
        );
    }

    /// The timer of an `on: true`: ends it unless it was renewed or ended.
    pub(super) fn typing_expired(&mut self, session: SessionId, epoch: u64) {
        if self.typing.get(&session).is_some_and(|(_, e)| *e == epoch) {
            self.typing_stopped(session);
        }
    }

    /// `session` stops typing (timeout, close, drop): tells the others.
    pub(super) fn typing_stopped(&mut self, session: SessionId) {
        if let Some((user, _)) = self.typing.remove(&session) {
            self.live(ThreadLive::Typing { user, on: false }, Some(session));
        }
    }
}
