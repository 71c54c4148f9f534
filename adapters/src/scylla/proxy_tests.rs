//! The adapter's error paths against scylla-proxy in dry mode (answers
//! forged by `proxy_frames.rs`, nothing stored): which errors are retried
//! and how often (the proxy counts the requests), the serial read that
//! settles a timed-out lightweight transaction, `Conflict` for a refused
//! conditional batch, group commit, and `/ready` red then green again.

use std::sync::Arc;
use std::time::Duration;

use chalktalk_actors::store::{Store, StoreError};
use scylla_proxy::{Reaction, RequestFrame, RequestReaction, RequestRule};
use tokio::sync::mpsc;

use super::proxy_frames::{
    Harness, LOCAL_SERIAL, applied_rows, assert_unavailable, batches, consistency, count, executes,
    failing, rows,
};
use crate::conformance::store::{enc, room_event};
use crate::kv::{Kv, KvBatch};

/// Overloaded, unavailable and read-timeout answers to a read: retried
/// exactly once, then `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_retried_once_then_unavailable() {
    let mut h = Harness::start().await;
    assert_eq!(h.store.room_head("r").await, Ok(0), "the happy path works");
    for (what, reaction) in [
        ("overloaded", RequestReaction::forge().overloaded()),
        ("unavailable", RequestReaction::forge().unavailable()),
        ("read_timeout", RequestReaction::forge().read_timeout()),
    ] {
        let (rule, mut rx) = failing(executes("ROOM_HEAD"), reaction);
        h.script(vec![rule]);
        assert_unavailable(h.store.room_head("r").await, what);
        assert_eq!(count(&mut rx), 2, "{what}: one try and one retry");
    }
    let _ = h.proxy.finish().await;
}

/// An idempotent plain write (a membership) is retried once, even after a
/// write timeout; then `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_writes_are_retried_once() {
    let mut h = Harness::start().await;
    for (what, reaction) in [
        ("write_timeout", RequestReaction::forge().write_timeout()),
        ("overloaded", RequestReaction::forge().overloaded()),
    ] {
        let (rule, mut rx) = failing(executes("MEMBERSHIP_INSERT"), reaction);
        h.script(vec![rule]);
        let r = h
            .store
            .add_membership("u", chalktalk_actors::store::MembershipKind::Room, "r")
            .await;
        assert_unavailable(r, what);
        assert_eq!(count(&mut rx), 2, "{what}");
    }
    let _ = h.proxy.finish().await;
}

/// An append (a conditional batch) refused with overloaded or unavailable
/// is not retried and needs no settling: nothing was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwt_refusals_are_not_retried() {
    let mut h = Harness::start().await;
    for (what, reaction) in [
        ("overloaded", RequestReaction::forge().overloaded()),
        ("unavailable", RequestReaction::forge().unavailable()),
    ] {
        let (rule, mut rx) = failing(batches("ROOM_EVENT_INSERT"), reaction);
        h.script(vec![rule]);
        let room = format!("room-{what}");
        let r = h
            .store
            .append_room_events(&room, 0, &enc([room_event(1, "x")]))
            .await;
        assert_unavailable(r, what);
        assert_eq!(count(&mut rx), 1, "{what}: an LWT is never retried");
        let names: Vec<String> = h.answered().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["ROOM_HEAD"], "{what}: only the head was read");
    }
    let _ = h.proxy.finish().await;
}

/// A write timeout on an append: not retried, settled by one read at
/// LOCAL_SERIAL. Nothing there: `Unavailable`; our row there: `Ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwt_write_timeout_is_settled_by_a_serial_read() {
    let mut h = Harness::start().await;
    let (rule, mut rx) = failing(
        batches("ROOM_EVENT_INSERT"),
        RequestReaction::forge().write_timeout(),
    );
    h.script(vec![rule]);
    let r = h
        .store
        .append_room_events("room-a", 0, &enc([room_event(1, "x")]))
        .await;
    assert_unavailable(r, "nothing stored");
    assert_eq!(count(&mut rx), 1, "not retried");
    assert_eq!(
        h.answered(),
        vec![
            ("ROOM_HEAD".to_string(), 0x0006),
            ("ROOM_EVENTS_RANGE".to_string(), LOCAL_SERIAL)
        ],
        "head at LOCAL_QUORUM, then the settling read at LOCAL_SERIAL"
    );

    // The serial read finds the row we sent: the append did apply.
    let event = enc([room_event(1, "y")]);
    let body = event[0].bytes.to_vec();
    let (timeout, mut rx) = failing(
        batches("ROOM_EVENT_INSERT"),
        RequestReaction::forge().write_timeout(),
    );
    let stored = RequestRule(
        executes("ROOM_EVENTS_RANGE"),
        RequestReaction::forge_response(Arc::new(move |f: RequestFrame| {
            let cols = [
                ("seq".to_string(), "bigint".to_string()),
                ("body".to_string(), "blob".to_string()),
            ];
            rows(
                &f,
                "room_events",
                &cols,
                &[vec![1i64.to_be_bytes().to_vec(), body.clone()]],
            )
        })),
    );
    h.script(vec![timeout, stored]);
    assert_eq!(
        h.store.append_room_events("room-b", 0, &event).await,
        Ok(())
    );
    assert_eq!(count(&mut rx), 1);
    let _ = h.proxy.finish().await;
}

/// A conditional batch that is not applied is a `Conflict`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_applied_append_is_a_conflict() {
    let mut h = Harness::start().await;
    let refused = RequestRule(
        batches("ROOM_EVENT_INSERT"),
        RequestReaction::forge_response(Arc::new(|f: RequestFrame| applied_rows(&f, false))),
    );
    h.script(vec![refused]);
    let r = h
        .store
        .append_room_events("room", 0, &enc([room_event(1, "x")]))
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let _ = h.proxy.finish().await;
}

/// A key-value conditional batch that timed out is settled by reading its
/// keys at LOCAL_SERIAL; not visible → `Unavailable`, never `Ok(false)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_lwt_timeout_reads_serially() {
    let mut h = Harness::start().await;
    let (rule, mut rx) = failing(
        batches("KV_PUT_IF_ABSENT"),
        RequestReaction::forge().write_timeout(),
    );
    h.script(vec![rule]);
    let batch = KvBatch::default()
        .if_absent("account", "u1")
        .put("account", "u1", vec![1])
        .put("email", "a@b.example", vec![2]);
    assert_unavailable(h.store.apply(batch).await, "kv timeout");
    assert_eq!(count(&mut rx), 1, "not retried");
    assert_eq!(
        h.answered(),
        vec![("KV_GET".to_string(), LOCAL_SERIAL)],
        "one serial read, no write to the other partition"
    );
    let _ = h.proxy.finish().await;
}

/// `/ready`: health is red while the cluster answers overloaded, green
/// again once it stops, with the same store (no reconnect needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_goes_red_then_green() {
    let mut h = Harness::start().await;
    Store::health(&*h.store).await.expect("green");
    let (rule, mut rx) = failing(
        executes("SCHEMA_VERSIONS"),
        RequestReaction::forge().overloaded(),
    );
    h.script(vec![rule]);
    assert_unavailable(Store::health(&*h.store).await, "red");
    assert_eq!(count(&mut rx), 1, "a probe is not retried");
    h.script(Vec::new());
    Store::health(&*h.store).await.expect("green again");
    let _ = h.proxy.finish().await;
}

/// Group commit: ten calls for one room issued at once go out in one or
/// two batches (whatever queued while the first was in flight, which the
/// proxy holds 200 ms, goes out together next); the head is read once (the
/// store remembers the head it wrote).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_to_one_room_share_batches() {
    let mut h = Harness::start().await;
    let (tx, mut batches_seen) = mpsc::unbounded_channel();
    let slow = RequestRule(
        batches("ROOM_EVENT_INSERT"),
        RequestReaction::forge_response_with_delay(
            Duration::from_millis(200),
            Arc::new(|f: RequestFrame| applied_rows(&f, true)),
        )
        .with_feedback_when_performed(tx),
    );
    h.script(vec![slow]);
    let events: Vec<_> = (1..=10).map(|s| enc([room_event(s, "g")])).collect();
    // Polled in order: the calls queue in seq order, as the room actor's do.
    let calls = events
        .iter()
        .map(|e| h.store.append_room_events("room-g", 0, e));
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r, Ok(()));
    }
    let n = count(&mut batches_seen);
    assert!((1..=2).contains(&n), "{n} batches for 10 calls");
    let names: Vec<String> = h.answered().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["ROOM_HEAD"], "the head is read once");
    let _ = h.proxy.finish().await;
}

/// A cursor update that timed out is not repeated blindly: the cursor is
/// read again at LOCAL_SERIAL, and since it shows the new positions the
/// call is done (one conditional update in all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_timeout_rereads_serially() {
    let mut h = Harness::start().await;
    let (gets_tx, mut gets) = mpsc::unbounded_channel();
    let stored = RequestRule(
        executes("CURSOR_GET"),
        RequestReaction::forge_response(Arc::new(|f: RequestFrame| {
            // Before the update: (3, 1); read serially after it: (5, 5).
            let (d, r) = if consistency(&f) == LOCAL_SERIAL {
                (5i64, 5i64)
            } else {
                (3, 1)
            };
            let cols = [
                ("delivered".to_string(), "bigint".to_string()),
                ("read".to_string(), "bigint".to_string()),
            ];
            let row = vec![d.to_be_bytes().to_vec(), r.to_be_bytes().to_vec()];
            rows(&f, "read_cursors", &cols, &[row])
        }))
        .with_feedback_when_performed(gets_tx),
    );
    let (timeout, mut updates) = failing(
        executes("CURSOR_UPDATE"),
        RequestReaction::forge().write_timeout(),
    );
    h.script(vec![stored, timeout]);
    let c = chalktalk_protocol::Cursor {
        user: "athlete".into(),
        delivered: 5,
        read: 5,
    };
    assert_eq!(h.store.put_cursor("thread", &c).await, Ok(()));
    assert_eq!(count(&mut updates), 1, "the update is not repeated");
    let mut levels = Vec::new();
    while let Ok((f, _)) = gets.try_recv() {
        levels.push(consistency(&f));
    }
    assert_eq!(levels, vec![0x0006, LOCAL_SERIAL]);
    let _ = h.proxy.finish().await;
}
