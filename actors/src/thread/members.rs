//! The members of a room thread follow its room's (`room::chat`): the
//! store holds them, and the thread reads them again before each member
//! check (one read; the members of direct and group threads are fixed at
//! creation and never read again). Viewers who are no longer members stop
//! receiving the thread.

use chalktalk_protocol::ThreadKind;

use super::ThreadState;
use crate::lock;
use crate::outbound::SessionId;

impl ThreadState {
    /// Reads a room thread's members again (a failed read keeps the last
    /// ones known).
    pub(super) async fn refresh_members(&mut self) {
        if self.meta.kind != ThreadKind::Room {
            return;
        }
        match self.deps.store.thread(&self.id).await {
            Ok(Some(meta)) => self.meta.members = meta.members,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%e, "room thread members not read; the last ones known apply");
                return;
            }
        }
        let gone: Vec<SessionId> = self
            .viewers
            .iter()
            .filter(|(_, o)| !self.meta.members.contains(&o.user))
            .map(|(s, _)| *s)
            .collect();
        for s in gone {
            self.typing_stopped(s);
            self.viewers.remove(&s);
            lock(&self.registry).remove(&s);
        }
    }
}
