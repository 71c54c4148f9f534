//! The chat thread of a review room: kind `room`, id `rt-<room id>`
//! ([`room_thread_id`]), one per room. The server creates it with the room
//! (the owner its only member) or, for a room older than room threads,
//! when a member first asks for it (`room_thread`), with the room's
//! members read from the store (snapshot and events). From then on its
//! members follow the room's: the room's membership index writes
//! (`index.rs`, in commit order per room) add and remove them, and the
//! creation of a missing thread is queued in that same order. Thread
//! creation is create-if-absent in every store, so concurrent requests,
//! and nodes, end with the one thread.

use std::sync::Arc;

use chalktalk_protocol::{ErrorCode, ThreadInfo, ThreadKind, UserId, room_thread_id};
use tokio::sync::oneshot;

use crate::now_ms;
use crate::store::{MembershipKind, RoomMeta, Store, StoreError, ThreadMeta};

/// A refusal: the error code and message sent back for the request.
pub type Fail = (ErrorCode, String);

/// The record of `room`'s thread with these members.
fn thread_meta(room: &RoomMeta, mut members: Vec<UserId>) -> ThreadMeta {
    members.sort();
    members.dedup();
    ThreadMeta {
        id: room_thread_id(&room.id),
        kind: ThreadKind::Room,
        title: None,
        created_by: room.owner.clone(),
        members,
        created_ms: now_ms(),
    }
}

/// What a client is told about a thread (`room` set for a room thread).
pub fn info(meta: ThreadMeta, head: u64) -> ThreadInfo {
    let room = chalktalk_protocol::room_of_thread(meta.kind, &meta.id).map(str::to_owned);
    ThreadInfo {
        id: meta.id,
        kind: meta.kind,
        title: meta.title,
        created_by: meta.created_by,
        members: meta.members,
        head,
        room,
    }
}

/// Creates the thread of a new room, its owner the only member.
pub async fn create(store: &dyn Store, room: &RoomMeta) -> Result<(), StoreError> {
    let meta = thread_meta(room, vec![room.owner.clone()]);
    store.create_thread(&meta).await?;
    store
        .add_membership(&room.owner, MembershipKind::Thread, &meta.id)
        .await
}

/// The thread of `room` for `user` (`room_thread`): `not_found` for no
/// such room, `not_member` unless `user` is one of the room's members.
pub async fn find(store: Arc<dyn Store>, user: &str, room: &str) -> Result<ThreadInfo, Fail> {
    let internal = |e: StoreError| (e.code(), format!("storage: {e}"));
    let Some(meta) = store.room(room).await.map_err(internal)? else {
        return Err((ErrorCode::NotFound, format!("no room {room}")));
    };
    let id = room_thread_id(room);
    let thread = match store.thread(&id).await.map_err(internal)? {
        Some(t) => t,
        None => {
            ensure(store.clone(), meta).await.map_err(internal)?;
            store
                .thread(&id)
                .await
                .map_err(internal)?
                .ok_or((ErrorCode::Internal, format!("thread {id} vanished")))?
        }
    };
    if !thread.members.iter().any(|m| m == user) {
        return Err((
            ErrorCode::NotMember,
            format!("you are not a member of room {room}"),
        ));
    }
    let head = store.thread_head(&id).await.map_err(internal)?;
    Ok(info(thread, head))
}

/// Creates the missing thread of an older room, queued behind the room's
/// membership writes (so none of them is lost on it).
async fn ensure(store: Arc<dyn Store>, room: RoomMeta) -> Result<(), StoreError> {
    let (tx, rx) = oneshot::channel();
    let id = room.id.clone();
    super::index::queue(&id, async move {
        let _ = tx.send(create_from_log(&*store, room).await);
    });
    rx.await
        .map_err(|_| StoreError::Unavailable("the room thread's creation was dropped".into()))?
}

async fn create_from_log(store: &dyn Store, room: RoomMeta) -> Result<(), StoreError> {
    let id = room_thread_id(&room.id);
    if store.thread(&id).await?.is_none() {
        let members = committed_members(store, room.clone()).await?;
        store.create_thread(&thread_meta(&room, members)).await?;
    }
    // Ours or a racing node's: index the stored members.
    let Some(stored) = store.thread(&id).await? else {
        return Err(StoreError::Conflict(format!("thread {id} vanished")));
    };
    for m in &stored.members {
        store.add_membership(m, MembershipKind::Thread, &id).await?;
    }
    Ok(())
}

/// The room's members as stored: its snapshot and the events after it.
async fn committed_members(store: &dyn Store, room: RoomMeta) -> Result<Vec<UserId>, StoreError> {
    Ok(super::committed(store, room)
        .await?
        .members
        .into_iter()
        .collect())
}
