//! A member who leaves (`leave` op) or is removed by the owner (`remove`
//! op): once the event is committed and fanned out (so their own
//! connections see it too), their connections in the room are dropped
//! from it with a `resync` (a new `join_room` is refused with
//! `not_member`), their presence goes, the membership index forgets the
//! room and a removed user gets a `removed` inbox notice.

use bytes::Bytes;
use chalktalk_protocol::{Effect, Notice, RoomEvent, RoomOp, ServerFrame, UserId, encode};

use super::RoomActorState;
use crate::inbox::InboxMsg;
use crate::lock;
use crate::store::EncodedEvent;

/// The `resync.reason` sent to the connections of a member who is gone.
pub const REASON: &str = "you are no longer a member of this room";

/// Users an event made non-members.
fn unmembered(ev: &RoomEvent) -> impl Iterator<Item = &UserId> {
    ev.effects.iter().filter_map(|e| match e {
        Effect::Unmember { user } => Some(user),
        _ => None,
    })
}

impl RoomActorState {
    /// Drops the connections and presence of users the committed `events`
    /// made non-members.
    pub(super) fn evict(&mut self, events: &[EncodedEvent]) {
        let gone: Vec<UserId> = events
            .iter()
            .flat_map(|e| unmembered(&e.ev))
            .filter(|u| !self.core.is_member(u))
            .cloned()
            .collect();
        if gone.is_empty() {
            return;
        }
        let frame = Bytes::from(encode(&ServerFrame::Resync {
            room: self.id.clone(),
            reason: REASON.into(),
        }));
        let sessions: Vec<_> = self
            .members
            .iter()
            .filter(|(_, m)| gone.contains(&m.out.user))
            .map(|(sid, _)| *sid)
            .collect();
        for sid in sessions {
            lock(&self.registry).remove(&sid);
            if let Some(m) = self.members.remove(&sid) {
                m.out.set_in_room(&self.id, false);
                m.out.control(frame.clone());
            }
        }
        self.grace.retain(|(user, _), _| !gone.contains(user));
        self.broadcast_presence();
    }

    /// Outside the room: the membership index and the removed user's inbox.
    pub(super) fn after_unmember(&self, ev: &RoomEvent) {
        for user in unmembered(ev) {
            super::index::write(self.deps.store.clone(), &self.id, user, false);
        }
        if let RoomOp::Remove { user } = &ev.op {
            let _ = self.deps.inbox.cast(InboxMsg::Deliver {
                user: user.clone(),
                notice: Notice::Removed {
                    room: self.id.clone(),
                    by: ev.by.clone(),
                },
            });
        }
    }
}
