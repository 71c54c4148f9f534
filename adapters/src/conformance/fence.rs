//! Conformance of fencing (`Store::fence_room`, the epoch of
//! `append_room_events`; `Store::fence_thread`, the epoch of
//! `append_messages_at`): a write from an older epoch is refused and
//! writes nothing, and a fence raised while an older owner appends to a
//! room orders every append it acknowledged before the new owner's read.

use std::sync::Arc;

use chalktalk_actors::store::{Store, StoreError};

use chalktalk_actors::store::ThreadMeta;
use chalktalk_protocol::ThreadKind;

use super::store::{enc, messages_range, room_event, room_meta, unique};

/// Runs every fencing check.
pub async fn run_all(store: Arc<dyn Store>) {
    refuses_older_epochs(&*store).await;
    threads_refuse_older_epochs(&*store).await;
    fence_orders_racing_appends(store).await;
}

fn assert_fenced<T: std::fmt::Debug>(r: Result<T, StoreError>, held: u64, tried: u64, what: &str) {
    match r {
        Err(StoreError::Fenced {
            held: h, tried: t, ..
        }) if h == held && t == tried => {}
        other => {
            panic!("{what}: expected Fenced {{ held: {held}, tried: {tried} }}, got {other:?}")
        }
    }
}

/// Epochs below or above the fence are refused; the fence never goes back.
pub async fn refuses_older_epochs(store: &dyn Store) {
    let room = unique("fenced");
    assert!(store.create_room(&room_meta(&room)).await.unwrap());
    assert_eq!(store.room_fence(&room).await.unwrap(), 0);
    store
        .append_room_events(&room, 0, &enc([room_event(1, "e0")]))
        .await
        .expect("epoch 0 on a room never fenced");

    store.fence_room(&room, 3).await.expect("raise to 3");
    assert_eq!(store.room_fence(&room).await.unwrap(), 3);
    store.fence_room(&room, 3).await.expect("same epoch again");
    assert_fenced(
        store
            .append_room_events(&room, 0, &enc([room_event(2, "old")]))
            .await,
        3,
        0,
        "epoch 0 after the fence",
    );
    assert_fenced(
        store
            .append_room_events(&room, 2, &enc([room_event(2, "old")]))
            .await,
        3,
        2,
        "epoch 2 after the fence",
    );
    assert_eq!(
        store.room_head(&room).await.unwrap(),
        1,
        "a fenced write wrote nothing"
    );
    store
        .append_room_events(&room, 3, &enc([room_event(2, "e3")]))
        .await
        .expect("the owner's epoch");
    assert_fenced(store.fence_room(&room, 2).await, 3, 2, "lowering the fence");
    store.fence_room(&room, 5).await.expect("raise to 5");
    assert_fenced(
        store
            .append_room_events(&room, 3, &enc([room_event(3, "e3")]))
            .await,
        5,
        3,
        "epoch 3 after the fence moved to 5",
    );
    let evs = store.room_events(&room, 0, 10).await.unwrap();
    let tags: Vec<_> = evs.iter().map(|e| e.op_id.clone()).collect();
    assert_eq!(
        tags,
        ["op-1-e0", "op-2-e3"],
        "only the accepted events are stored"
    );

    let ghost = unique("no-room");
    assert!(
        matches!(
            store.fence_room(&ghost, 1).await,
            Err(StoreError::Conflict(_))
        ),
        "fencing a room that does not exist is a conflict"
    );
}

/// The same for a thread's messages.
pub async fn threads_refuse_older_epochs(store: &dyn Store) {
    let thread = unique("fenced-thread");
    let meta = ThreadMeta {
        id: thread.clone(),
        kind: ThreadKind::Group,
        title: None,
        created_by: "coach".into(),
        members: vec!["athlete-1".into(), "coach".into()],
        created_ms: 1,
    };
    assert!(store.create_thread(&meta).await.unwrap());
    assert_eq!(store.thread_fence(&thread).await.unwrap(), 0);
    let msgs = messages_range(1, 4);
    store
        .append_messages(&thread, &msgs[..1])
        .await
        .expect("epoch 0 on a thread never fenced");
    store.fence_thread(&thread, 3).await.expect("raise to 3");
    store
        .fence_thread(&thread, 3)
        .await
        .expect("same epoch again");
    assert_eq!(store.thread_fence(&thread).await.unwrap(), 3);
    assert_fenced(
        store.append_messages_at(&thread, 2, &msgs[1..2]).await,
        3,
        2,
        "epoch 2 after the fence",
    );
    assert_eq!(
        store.thread_head(&thread).await.unwrap(),
        1,
        "a fenced write wrote nothing"
    );
    store
        .append_messages_at(&thread, 3, &msgs[1..3])
        .await
        .expect("the owner's epoch");
    assert_fenced(
        store.fence_thread(&thread, 2).await,
        3,
        2,
        "lowering the fence",
    );
    store.fence_thread(&thread, 4).await.expect("raise to 4");
    assert_fenced(
        store.append_messages_at(&thread, 3, &msgs[3..]).await,
        4,
        3,
        "epoch 3 after the fence moved to 4",
    );
    let seqs: Vec<u64> = store
        .messages_after(&thread, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3], "only the accepted messages are stored");
    assert!(
        matches!(
            store.fence_thread(&unique("no-thread"), 1).await,
            Err(StoreError::Conflict(_))
        ),
        "fencing a thread that does not exist is a conflict"
    );
}

/// An older owner appends one event after another while a new owner
/// raises the fence and reads the head: every append the old owner got
/// an `Ok` for is at or below that head (none slipped in after the read),
/// and the old owner is refused from then on.
pub async fn fence_orders_racing_appends(store: Arc<dyn Store>) {
    let room = unique("fence-race");
    assert!(store.create_room(&room_meta(&room)).await.unwrap());
    store.fence_room(&room, 1).await.unwrap();
    let writer = {
        let (store, room) = (store.clone(), room.clone());
        tokio::spawn(async move {
            let mut acked = 0u64;
            loop {
                let seq = acked + 1;
                match store
                    .append_room_events(&room, 1, &enc([room_event(seq, "old-owner")]))
                    .await
                {
                    Ok(()) => acked = seq,
                    Err(StoreError::Fenced { .. }) => return acked,
                    Err(e) => panic!("old owner's append {seq}: {e}"),
                }
            }
        })
    };
    // Let the old owner get some appends in, then take over.
    while store.room_head(&room).await.unwrap() < 5 {
        tokio::task::yield_now().await;
    }
    store
        .fence_room(&room, 2)
        .await
        .expect("the new owner fences");
    let head = store.room_head(&room).await.unwrap();
    let acked = tokio::time::timeout(std::time::Duration::from_secs(30), writer)
        .await
        .expect("the old owner is refused within 30 s")
        .unwrap();
    assert!(
        acked <= head,
        "the old owner got an ack for seq {acked} after the new owner read head {head}"
    );
    assert_eq!(
        store.room_head(&room).await.unwrap(),
        head,
        "nothing written after the fence"
    );
    store
        .append_room_events(&room, 2, &enc([room_event(head + 1, "new-owner")]))
        .await
        .expect("the new owner continues from the head it read");
}
