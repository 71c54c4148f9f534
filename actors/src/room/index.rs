//! The membership index writes of rooms (`add_membership` after an invite,
//! `remove_membership` after a leave or removal), run off the room actor
//! but in commit order per room: each write waits for the previous one of
//! its room, so an invite quickly followed by a removal cannot leave the
//! index saying "member". The same write adds or removes the user in the
//! room's chat thread (`chat.rs`), and the creation of a missing room
//! thread runs in the same order.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use chalktalk_protocol::room_thread_id;
use tokio::task::JoinHandle;

use crate::lock;
use crate::store::{MembershipKind, Store, StoreError};

/// The last write queued per room: (its number, its task).
type Tails = HashMap<String, (u64, JoinHandle<()>)>;
static TAILS: LazyLock<Mutex<Tails>> = LazyLock::new(Default::default);
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Runs `work` after the writes queued before for `room`.
pub(super) fn queue<F>(room: &str, work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut tails = lock(&TAILS);
    let prev = tails.remove(room).map(|(_, h)| h);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let room = room.to_string();
    let key = room.clone();
    let task = tokio::spawn(async move {
        if let Some(prev) = prev {
            let _ = prev.await;
        }
        work.await;
        let mut tails = lock(&TAILS);
        if tails.get(&room).is_some_and(|(m, _)| *m == n) {
            tails.remove(&room);
        }
    });
    tails.insert(key, (n, task));
}

/// Records (`add`) or forgets that `user` belongs to `room` and to its
/// chat thread, after the writes queued before for this room.
pub(super) fn write(store: Arc<dyn Store>, room: &str, user: &str, add: bool) {
    let (r, user) = (room.to_string(), user.to_string());
    queue(room, async move {
        if let Err(e) = follow(&*store, &r, &user, add).await {
            tracing::warn!(%user, room = %r, %e, add, "membership index write failed");
        }
    });
}

async fn follow(store: &dyn Store, room: &str, user: &str, add: bool) -> Result<(), StoreError> {
    let thread = room_thread_id(room);
    if add {
        store
            .add_membership(user, MembershipKind::Room, room)
            .await?;
        if store.set_thread_member(&thread, user, true).await? {
            store
                .add_membership(user, MembershipKind::Thread, &thread)
                .await?;
        }
    } else {
        store
            .remove_membership(user, MembershipKind::Room, room)
            .await?;
        if store.set_thread_member(&thread, user, false).await? {
            store
                .remove_membership(user, MembershipKind::Thread, &thread)
                .await?;
        }
    }
    Ok(())
}
