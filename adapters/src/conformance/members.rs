//! Conformance of `Store::set_thread_member` (the members of a room
//! thread follow its room's): adding and removing keep the list sorted and
//! deduplicated, repeating a change is harmless, a missing thread is
//! reported and not created, and concurrent changes of different members
//! are all kept (the read-modify-write is atomic in every store).

use std::sync::Arc;

use chalktalk_actors::store::{Store, ThreadMeta};
use chalktalk_protocol::ThreadKind;

use super::store::unique;

fn room_thread(id: &str) -> ThreadMeta {
    ThreadMeta {
        id: id.to_owned(),
        kind: ThreadKind::Room,
        title: None,
        created_by: "coach".into(),
        members: vec!["coach".into()],
        created_ms: 1_700_000_000_000,
    }
}

async fn members(store: &dyn Store, id: &str) -> Vec<String> {
    store.thread(id).await.unwrap().expect("the thread").members
}

/// Runs every check, one after another.
pub async fn run_all(store: Arc<dyn Store>) {
    add_and_remove(&*store).await;
    concurrent_changes(store).await;
}

/// Sorted, deduplicated, idempotent; a missing thread stays missing; the
/// rest of the record (kind `room` included) is kept.
pub async fn add_and_remove(store: &dyn Store) {
    let id = unique("rt-room");
    let meta = room_thread(&id);
    assert!(store.create_thread(&meta).await.unwrap());
    assert!(
        store
            .set_thread_member(&id, "b-athlete", true)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_thread_member(&id, "a-athlete", true)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_thread_member(&id, "a-athlete", true)
            .await
            .unwrap()
    );
    assert_eq!(
        members(store, &id).await,
        ["a-athlete", "b-athlete", "coach"],
        "sorted, once each"
    );
    assert!(
        store
            .set_thread_member(&id, "b-athlete", false)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_thread_member(&id, "b-athlete", false)
            .await
            .unwrap()
    );
    assert!(store.set_thread_member(&id, "nobody", false).await.unwrap());
    let mut want = meta.clone();
    want.members = vec!["a-athlete".into(), "coach".into()];
    assert_eq!(store.thread(&id).await.unwrap(), Some(want));
    // Down to none and back.
    assert!(
        store
            .set_thread_member(&id, "a-athlete", false)
            .await
            .unwrap()
    );
    assert!(store.set_thread_member(&id, "coach", false).await.unwrap());
    assert_eq!(members(store, &id).await, Vec::<String>::new());
    assert!(store.set_thread_member(&id, "coach", true).await.unwrap());
    assert_eq!(members(store, &id).await, ["coach"]);
    let missing = unique("rt-missing");
    assert!(
        !store
            .set_thread_member(&missing, "coach", true)
            .await
            .unwrap()
    );
    assert_eq!(store.thread(&missing).await.unwrap(), None, "not created");
}

/// Eight members added at once, then four of them removed at once: none
/// of the changes is lost.
pub async fn concurrent_changes(store: Arc<dyn Store>) {
    let id = unique("rt-race");
    assert!(store.create_thread(&room_thread(&id)).await.unwrap());
    let users: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    let adds = users.iter().map(|u| {
        let (store, id, u) = (store.clone(), id.clone(), u.clone());
        tokio::spawn(async move { store.set_thread_member(&id, &u, true).await })
    });
    for t in futures_util::future::join_all(adds).await {
        assert!(t.expect("task").expect("add"));
    }
    let mut want: Vec<String> = users.clone();
    want.insert(0, "coach".into());
    assert_eq!(members(&*store, &id).await, want);
    let removes = users.iter().step_by(2).map(|u| {
        let (store, id, u) = (store.clone(), id.clone(), u.clone());
        tokio::spawn(async move { store.set_thread_member(&id, &u, false).await })
    });
    for t in futures_util::future::join_all(removes).await {
        assert!(t.expect("task").expect("remove"));
    }
    let want: Vec<String> = ["coach", "u1", "u3", "u5", "u7"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(members(&*store, &id).await, want);
}
