//! The membership index writes of rooms (`add_membership` after an invite,
//! `remove_membership` after a leave or removal), run off the room actor
//! but in commit order per room: each write waits for the previous one of
//! its room, so an invite quickly followed by a removal cannot leave the
//! index saying "member".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use tokio::task::JoinHandle;

use crate::lock;
use crate::store::{MembershipKind, Store};

/// The last write queued per room: (its number, its task).
type Tails = HashMap<String, (u64, JoinHandle<()>)>;
static TAILS: LazyLock<Mutex<Tails>> = LazyLock::new(Default::default);
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Records (`add`) or forgets that `user` belongs to `room`, after the
/// writes queued before for this room.
pub(super) fn write(store: Arc<dyn Store>, room: &str, user: &str, add: bool) {
    let mut tails = lock(&TAILS);
    let prev = tails.remove(room).map(|(_, h)| h);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (room, user) = (room.to_string(), user.to_string());
    let key = room.clone();
    let task = tokio::spawn(async move {
        if let Some(prev) = prev {
            let _ = prev.await;
        }
        let res = if add {
            store
                .add_membership(&user, MembershipKind::Room, &room)
                .await
        } else {
            store
                .remove_membership(&user, MembershipKind::Room, &room)
                .await
        };
        if let Err(e) = res {
            tracing::warn!(%user, %room, %e, add, "membership index write failed");
        }
        let mut tails = lock(&TAILS);
        if tails.get(&room).is_some_and(|(m, _)| *m == n) {
            tails.remove(&room);
        }
    });
    tails.insert(key, (n, task));
}
