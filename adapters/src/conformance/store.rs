//! The conformance suite every `Store` adapter must pass, written only
//! against the trait. Each check uses ids with a random suffix, so the suite
//! can run against a shared, non-empty store (a ScyllaDB keyspace). Checks
//! panic (`assert!`) on the first mismatch, comparing whole values.

use std::sync::Arc;

use chalktalk_actors::store::{
    EncodedEvent, MembershipKind, RoomMeta, Snapshot, Store, StoreError, ThreadMeta,
};
use chalktalk_protocol::{
    Annotation, Attachment, Cursor, Effect, InboxEvent, Message, Notice, Point, RoomEvent, RoomOp,
    Shape, Style, ThreadKind,
};

/// Runs every check, one after another.
pub async fn run_all(store: Arc<dyn Store>) {
    rooms(&*store).await;
    room_events(&*store).await;
    room_event_conflicts(&*store).await;
    snapshots(&*store).await;
    threads(&*store).await;
    messages(&*store).await;
    message_conflicts(&*store).await;
    cursors(&*store).await;
    inbox(&*store).await;
    memberships(&*store).await;
    concurrent_appends(store.clone()).await;
    concurrent_conflict_fails_alone(store.clone()).await;
    super::fence::run_all(store.clone()).await;
    super::members::run_all(store.clone()).await;
}

/// A fresh id: `prefix` plus a random suffix.
pub fn unique(prefix: &str) -> String {
    let n = getrandom::u64().expect("random id suffix");
    format!("{prefix}-{n:016x}")
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

/// A room event with a small annotation, distinct per (seq, tag).
pub fn room_event(seq: u64, tag: &str) -> RoomEvent {
    let ann = Annotation {
        id: format!("a{seq}-{tag}"),
        author: "coach".into(),
        t_ms: 1000 + seq,
        dur_ms: Some(1500),
        style: Style::default(),
        shape: Shape::Line {
            a: Point(0.1, 0.2),
            b: Point(0.3, 0.4),
        },
    };
    RoomEvent {
        seq,
        by: "coach".into(),
        op_id: format!("op-{seq}-{tag}"),
        at_ms: 1_700_000_000_000 + seq,
        op: RoomOp::Add { ann: ann.clone() },
        target: None,
        effects: vec![Effect::Put { ann }],
    }
}

/// Events as the room hands them to the store: encoded once.
pub fn enc(events: impl IntoIterator<Item = RoomEvent>) -> Vec<EncodedEvent> {
    events.into_iter().map(EncodedEvent::new).collect()
}

pub fn room_events_range(from: u64, to: u64) -> Vec<RoomEvent> {
    (from..=to).map(|s| room_event(s, "x")).collect()
}

fn message(seq: u64) -> Message {
    Message {
        seq,
        id: format!("m{seq}"),
        from: if seq.is_multiple_of(2) {
            "coach"
        } else {
            "athlete"
        }
        .into(),
        at_ms: 1_700_000_000_000 + seq,
        text: format!("message {seq}"),
        attachments: if seq.is_multiple_of(3) {
            vec![Attachment {
                kind: "video".into(),
                ref_id: format!("v{seq}"),
                name: Some("squat.mp4".into()),
            }]
        } else {
            vec![]
        },
        reply_to: seq
            .checked_sub(1)
            .filter(|s| *s > 0 && seq.is_multiple_of(4)),
        // Edits and deletions are stored like any message.
        edit: seq
            .checked_sub(1)
            .filter(|s| *s > 0 && seq.is_multiple_of(7))
            .map(|of| chalktalk_protocol::MsgEdit::Edit { of }),
    }
}

pub fn messages_range(from: u64, to: u64) -> Vec<Message> {
    (from..=to).map(message).collect()
}

pub fn room_meta(id: &str) -> RoomMeta {
    RoomMeta {
        id: id.into(),
        video_id: "video-1".into(),
        owner: "coach".into(),
        aspect: 16.0 / 9.0,
        fps: 59.94,
        created_ms: 1_700_000_000_000,
    }
}

/// Create, idempotent create, read back, missing room.
pub async fn rooms(store: &dyn Store) {
    let id = unique("room");
    let meta = room_meta(&id);
    assert_eq!(store.room(&id).await.unwrap(), None);
    assert!(store.create_room(&meta).await.unwrap());
    let mut other = meta.clone();
    other.video_id = "video-2".into();
    other.owner = "someone-else".into();
    assert!(
        !store.create_room(&other).await.unwrap(),
        "second create must return false"
    );
    assert_eq!(
        store.room(&id).await.unwrap(),
        Some(meta),
        "first create wins"
    );
    assert_eq!(store.room(&unique("room-missing")).await.unwrap(), None);
}

/// Append, read from the start, after a seq, limits, head.
pub async fn room_events(store: &dyn Store) {
    let room = unique("room");
    assert_eq!(store.room_head(&room).await.unwrap(), 0);
    assert_eq!(store.room_events(&room, 0, 100).await.unwrap(), vec![]);
    store
        .append_room_events(&room, 0, &enc(room_events_range(1, 3)))
        .await
        .unwrap();
    store
        .append_room_events(&room, 0, &enc(room_events_range(4, 4)))
        .await
        .unwrap();
    store
        .append_room_events(&room, 0, &enc(room_events_range(5, 7)))
        .await
        .unwrap();
    store.append_room_events(&room, 0, &enc([])).await.unwrap();
    assert_eq!(store.room_head(&room).await.unwrap(), 7);
    assert_eq!(
        store.room_events(&room, 0, 100).await.unwrap(),
        room_events_range(1, 7)
    );
    assert_eq!(
        store.room_events(&room, 2, 3).await.unwrap(),
        room_events_range(3, 5)
    );
    assert_eq!(
        store.room_events(&room, 6, 100).await.unwrap(),
        room_events_range(7, 7)
    );
    assert_eq!(store.room_events(&room, 7, 100).await.unwrap(), vec![]);
    assert_eq!(store.room_events(&room, 100, 100).await.unwrap(), vec![]);
    assert_eq!(store.room_events(&room, 0, 0).await.unwrap(), vec![]);
    assert_eq!(
        store.room_events(&room, 0, 1).await.unwrap(),
        room_events_range(1, 1)
    );
    // Another room is unaffected and vice versa.
    let other = unique("room");
    store
        .append_room_events(&other, 0, &enc(room_events_range(1, 1)))
        .await
        .unwrap();
    assert_eq!(store.room_head(&other).await.unwrap(), 1);
    assert_eq!(store.room_head(&room).await.unwrap(), 7);
    assert_eq!(
        store.room_events(&other, 0, 100).await.unwrap(),
        room_events_range(1, 1)
    );
}

/// Duplicate, gapped and non-consecutive appends are `Conflict`s and write
/// nothing of the call.
pub async fn room_event_conflicts(store: &dyn Store) {
    let room = unique("room");
    assert_conflict(
        store
            .append_room_events(&room, 0, &enc(room_events_range(2, 3)))
            .await,
        "first append not at seq 1",
    );
    assert_eq!(store.room_head(&room).await.unwrap(), 0);
    store
        .append_room_events(&room, 0, &enc(room_events_range(1, 3)))
        .await
        .unwrap();

    let dup = vec![room_event(3, "dup"), room_event(4, "dup")];
    assert_conflict(
        store.append_room_events(&room, 0, &enc(dup)).await,
        "seq 3 again",
    );
    assert_conflict(
        store
            .append_room_events(&room, 0, &enc(room_events_range(1, 1)))
            .await,
        "seq 1 again",
    );
    assert_conflict(
        store
            .append_room_events(&room, 0, &enc(room_events_range(5, 6)))
            .await,
        "gap after head",
    );
    let jumpy = vec![room_event(4, "j"), room_event(6, "j")];
    assert_conflict(
        store.append_room_events(&room, 0, &enc(jumpy)).await,
        "gap inside call",
    );
    let backwards = vec![room_event(4, "b"), room_event(4, "b")];
    assert_conflict(
        store.append_room_events(&room, 0, &enc(backwards)).await,
        "repeat inside call",
    );
    assert_eq!(store.room_head(&room).await.unwrap(), 3);
    assert_eq!(
        store.room_events(&room, 0, 100).await.unwrap(),
        room_events_range(1, 3)
    );

    // Still appendable at head + 1.
    store
        .append_room_events(&room, 0, &enc(room_events_range(4, 5)))
        .await
        .unwrap();
    assert_eq!(
        store.room_events(&room, 0, 100).await.unwrap(),
        room_events_range(1, 5)
    );
}

/// A snapshot is replaced only by a strictly newer one.
pub async fn snapshots(store: &dyn Store) {
    let room = unique("room");
    assert_eq!(store.room_snapshot(&room).await.unwrap(), None);
    let s5 = Snapshot {
        seq: 5,
        bytes: vec![5; 300],
    };
    store.put_room_snapshot(&room, &s5).await.unwrap();
    assert_eq!(store.room_snapshot(&room).await.unwrap(), Some(s5.clone()));
    let older = Snapshot {
        seq: 3,
        bytes: vec![3],
    };
    store.put_room_snapshot(&room, &older).await.unwrap();
    assert_eq!(
        store.room_snapshot(&room).await.unwrap(),
        Some(s5.clone()),
        "older ignored"
    );
    let same = Snapshot {
        seq: 5,
        bytes: vec![0xee],
    };
    store.put_room_snapshot(&room, &same).await.unwrap();
    assert_eq!(
        store.room_snapshot(&room).await.unwrap(),
        Some(s5),
        "same seq ignored"
    );
    let s9 = Snapshot {
        seq: 9,
        bytes: vec![],
    };
    store.put_room_snapshot(&room, &s9).await.unwrap();
    assert_eq!(store.room_snapshot(&room).await.unwrap(), Some(s9));
    assert_eq!(store.room_snapshot(&unique("room")).await.unwrap(), None);
}

/// Create, idempotent create, read back, missing thread.
pub async fn threads(store: &dyn Store) {
    let id = unique("thread");
    let meta = ThreadMeta {
        id: id.clone(),
        kind: ThreadKind::Group,
        title: Some("Squad — week 3".into()),
        created_by: "coach".into(),
        members: vec!["athlete-1".into(), "athlete-2".into(), "coach".into()],
        created_ms: 1_700_000_000_000,
    };
    assert_eq!(store.thread(&id).await.unwrap(), None);
    assert!(store.create_thread(&meta).await.unwrap());
    let mut other = meta.clone();
    other.kind = ThreadKind::Direct;
    other.title = None;
    assert!(
        !store.create_thread(&other).await.unwrap(),
        "second create must return false"
    );
    assert_eq!(store.thread(&id).await.unwrap(), Some(meta));
    let direct = ThreadMeta {
        id: unique("thread"),
        kind: ThreadKind::Direct,
        title: None,
        created_by: "coach".into(),
        members: vec!["athlete-1".into(), "coach".into()],
        created_ms: 1,
    };
    assert!(store.create_thread(&direct).await.unwrap());
    assert_eq!(store.thread(&direct.id).await.unwrap(), Some(direct));
    assert_eq!(store.thread(&unique("thread")).await.unwrap(), None);
}

/// Paging forwards and backwards with exact boundaries.
pub async fn messages(store: &dyn Store) {
    let thread = unique("thread");
    assert_eq!(store.thread_head(&thread).await.unwrap(), 0);
    assert_eq!(store.messages_after(&thread, 0, 10).await.unwrap(), vec![]);
    assert_eq!(
        store.messages_before(&thread, u64::MAX, 10).await.unwrap(),
        vec![]
    );
    store
        .append_messages(&thread, &messages_range(1, 4))
        .await
        .unwrap();
    store
        .append_messages(&thread, &messages_range(5, 10))
        .await
        .unwrap();
    store.append_messages(&thread, &[]).await.unwrap();
    assert_eq!(store.thread_head(&thread).await.unwrap(), 10);

    let after = |a, l| store.messages_after(&thread, a, l);
    assert_eq!(after(0, 100).await.unwrap(), messages_range(1, 10));
    assert_eq!(after(3, 4).await.unwrap(), messages_range(4, 7));
    assert_eq!(after(9, 4).await.unwrap(), messages_range(10, 10));
    assert_eq!(after(10, 4).await.unwrap(), vec![]);
    assert_eq!(after(0, 0).await.unwrap(), vec![]);

    let before = |b, l| store.messages_before(&thread, b, l);
    assert_eq!(before(11, 3).await.unwrap(), messages_range(8, 10));
    assert_eq!(before(u64::MAX, 3).await.unwrap(), messages_range(8, 10));
    assert_eq!(before(10, 3).await.unwrap(), messages_range(7, 9));
    assert_eq!(before(8, 3).await.unwrap(), messages_range(5, 7));
    assert_eq!(before(4, 10).await.unwrap(), messages_range(1, 3));
    assert_eq!(before(2, 10).await.unwrap(), messages_range(1, 1));
    assert_eq!(before(1, 10).await.unwrap(), vec![]);
    assert_eq!(before(0, 10).await.unwrap(), vec![]);
    assert_eq!(before(11, 0).await.unwrap(), vec![]);
    assert_eq!(before(11, 100).await.unwrap(), messages_range(1, 10));

    // Paging backwards page by page visits every message exactly once.
    let mut seen = Vec::new();
    let mut cursor = u64::MAX;
    loop {
        let page = before(cursor, 3).await.unwrap();
        let Some(first) = page.first() else { break };
        cursor = first.seq;
        seen.splice(0..0, page);
    }
    assert_eq!(seen, messages_range(1, 10));
}

/// Duplicate and gapped message appends are `Conflict`s and write nothing.
pub async fn message_conflicts(store: &dyn Store) {
    let thread = unique("thread");
    assert_conflict(
        store.append_messages(&thread, &messages_range(2, 2)).await,
        "not at 1",
    );
    store
        .append_messages(&thread, &messages_range(1, 2))
        .await
        .unwrap();
    assert_conflict(
        store.append_messages(&thread, &messages_range(2, 3)).await,
        "seq 2 again",
    );
    assert_conflict(
        store.append_messages(&thread, &messages_range(4, 4)).await,
        "gap",
    );
    let jumpy = vec![message(3), message(5)];
    assert_conflict(
        store.append_messages(&thread, &jumpy).await,
        "gap inside call",
    );
    assert_eq!(store.thread_head(&thread).await.unwrap(), 2);
    assert_eq!(
        store.messages_after(&thread, 0, 100).await.unwrap(),
        messages_range(1, 2)
    );
    store
        .append_messages(&thread, &messages_range(3, 3))
        .await
        .unwrap();
    assert_eq!(
        store.messages_after(&thread, 0, 100).await.unwrap(),
        messages_range(1, 3)
    );
}

pub fn cursor(user: &str, delivered: u64, read: u64) -> Cursor {
    Cursor {
        user: user.into(),
        delivered,
        read,
    }
}

/// Cursors merge per field with the stored one and never move backwards.
pub async fn cursors(store: &dyn Store) {
    let thread = unique("thread");
    let sorted = |mut v: Vec<Cursor>| {
        v.sort_by(|a, b| a.user.cmp(&b.user));
        v
    };
    assert_eq!(store.cursors(&thread).await.unwrap(), vec![]);
    store
        .put_cursor(&thread, &cursor("coach", 3, 1))
        .await
        .unwrap();
    assert_eq!(
        store.cursors(&thread).await.unwrap(),
        vec![cursor("coach", 3, 1)]
    );
    store
        .put_cursor(&thread, &cursor("coach", 2, 2))
        .await
        .unwrap();
    assert_eq!(
        store.cursors(&thread).await.unwrap(),
        vec![cursor("coach", 3, 2)]
    );
    store
        .put_cursor(&thread, &cursor("athlete", 5, 5))
        .await
        .unwrap();
    store
        .put_cursor(&thread, &cursor("coach", 0, 0))
        .await
        .unwrap();
    store
        .put_cursor(&thread, &cursor("athlete", 4, 6))
        .await
        .unwrap();
    assert_eq!(
        sorted(store.cursors(&thread).await.unwrap()),
        vec![cursor("athlete", 5, 6), cursor("coach", 3, 2)]
    );
    store
        .put_cursor(&thread, &cursor("coach", 9, 8))
        .await
        .unwrap();
    assert_eq!(
        sorted(store.cursors(&thread).await.unwrap()),
        vec![cursor("athlete", 5, 6), cursor("coach", 9, 8)]
    );
    // Cursors of another thread are separate.
    let other = unique("thread");
    store
        .put_cursor(&other, &cursor("coach", 1, 1))
        .await
        .unwrap();
    assert_eq!(
        store.cursors(&other).await.unwrap(),
        vec![cursor("coach", 1, 1)]
    );
    assert_eq!(
        sorted(store.cursors(&thread).await.unwrap()),
        vec![cursor("athlete", 5, 6), cursor("coach", 9, 8)]
    );
}

pub fn inbox_event(seq: u64) -> InboxEvent {
    let notice = match seq % 3 {
        0 => Notice::Invited {
            room: format!("room-{seq}"),
            video_id: "video-1".into(),
            by: "coach".into(),
        },
        1 => Notice::AddedToThread {
            thread: format!("thread-{seq}"),
            by: "coach".into(),
        },
        _ => Notice::NewMessage {
            thread: "thread-1".into(),
            seq,
            from: "coach".into(),
            preview: format!("preview {seq}"),
        },
    };
    InboxEvent {
        seq,
        at_ms: 1_700_000_000_000 + seq,
        notice,
    }
}

/// Inbox append (seq must be head + 1), reads after a seq, head.
pub async fn inbox(store: &dyn Store) {
    let user = unique("user");
    assert_eq!(store.inbox_head(&user).await.unwrap(), 0);
    assert_eq!(store.inbox_after(&user, 0, 10).await.unwrap(), vec![]);
    assert_conflict(
        store.append_inbox(&user, &inbox_event(2)).await,
        "first not at 1",
    );
    assert_conflict(store.append_inbox(&user, &inbox_event(0)).await, "seq 0");
    for seq in 1..=5 {
        store.append_inbox(&user, &inbox_event(seq)).await.unwrap();
    }
    assert_conflict(
        store.append_inbox(&user, &inbox_event(5)).await,
        "seq 5 again",
    );
    assert_conflict(
        store.append_inbox(&user, &inbox_event(3)).await,
        "seq 3 again",
    );
    assert_conflict(store.append_inbox(&user, &inbox_event(7)).await, "gap");
    assert_eq!(store.inbox_head(&user).await.unwrap(), 5);
    let all: Vec<InboxEvent> = (1..=5).map(inbox_event).collect();
    assert_eq!(store.inbox_after(&user, 0, 100).await.unwrap(), all);
    assert_eq!(
        store.inbox_after(&user, 1, 2).await.unwrap(),
        all[1..3].to_vec()
    );
    assert_eq!(
        store.inbox_after(&user, 4, 100).await.unwrap(),
        all[4..].to_vec()
    );
    assert_eq!(store.inbox_after(&user, 5, 100).await.unwrap(), vec![]);
    assert_eq!(store.inbox_after(&user, 0, 0).await.unwrap(), vec![]);
    store.append_inbox(&user, &inbox_event(6)).await.unwrap();
    assert_eq!(store.inbox_head(&user).await.unwrap(), 6);
    assert_eq!(store.inbox_head(&unique("user")).await.unwrap(), 0);
}

/// Memberships are idempotent (adding and removing), separated by kind and
/// user, sorted by id.
pub async fn memberships(store: &dyn Store) {
    let user = unique("user");
    let other = unique("user");
    let r = |s: &str| format!("{user}-room-{s}");
    assert_eq!(
        store
            .memberships(&user, MembershipKind::Room)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    for id in ["b", "a", "c", "a", "b"] {
        store
            .add_membership(&user, MembershipKind::Room, &r(id))
            .await
            .unwrap();
    }
    store
        .add_membership(&user, MembershipKind::Thread, "t-z")
        .await
        .unwrap();
    store
        .add_membership(&user, MembershipKind::Thread, "t-y")
        .await
        .unwrap();
    store
        .add_membership(&user, MembershipKind::Thread, "t-z")
        .await
        .unwrap();
    store
        .add_membership(&other, MembershipKind::Room, "only-other")
        .await
        .unwrap();
    assert_eq!(
        store
            .memberships(&user, MembershipKind::Room)
            .await
            .unwrap(),
        vec![r("a"), r("b"), r("c")]
    );
    assert_eq!(
        store
            .memberships(&user, MembershipKind::Thread)
            .await
            .unwrap(),
        vec!["t-y".to_string(), "t-z".to_string()]
    );
    assert_eq!(
        store
            .memberships(&other, MembershipKind::Room)
            .await
            .unwrap(),
        vec!["only-other".to_string()]
    );
    assert_eq!(
        store
            .memberships(&other, MembershipKind::Thread)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    // Removal: idempotent, of one kind, user and id only; a removed
    // membership can be added again.
    for _ in 0..2 {
        store
            .remove_membership(&user, MembershipKind::Room, &r("b"))
            .await
            .unwrap();
    }
    store
        .remove_membership(&user, MembershipKind::Thread, &r("a"))
        .await
        .unwrap();
    store
        .remove_membership(&other, MembershipKind::Room, &r("c"))
        .await
        .unwrap();
    assert_eq!(
        store
            .memberships(&user, MembershipKind::Room)
            .await
            .unwrap(),
        vec![r("a"), r("c")]
    );
    assert_eq!(
        store
            .memberships(&other, MembershipKind::Room)
            .await
            .unwrap(),
        vec!["only-other".to_string()]
    );
    store
        .add_membership(&user, MembershipKind::Room, &r("b"))
        .await
        .unwrap();
    assert_eq!(
        store
            .memberships(&user, MembershipKind::Room)
            .await
            .unwrap(),
        vec![r("a"), r("b"), r("c")]
    );
}

/// 50 tasks append to 50 rooms at once (one event per call): all succeed and
/// every room reads back complete and in order. Exercises group commit.
pub async fn concurrent_appends(store: Arc<dyn Store>) {
    const TASKS: usize = 50;
    const EVENTS: u64 = 20;
    let rooms: Vec<String> = (0..TASKS).map(|_| unique("room")).collect();
    let mut tasks = Vec::new();
    for room in rooms.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 1..=EVENTS {
                store
                    .append_room_events(&room, 0, &enc([room_event(seq, &room)]))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.expect("append task");
    }
    for room in &rooms {
        let expected: Vec<RoomEvent> = (1..=EVENTS).map(|s| room_event(s, room)).collect();
        assert_eq!(store.room_events(room, 0, 1000).await.unwrap(), expected);
        assert_eq!(store.room_head(room).await.unwrap(), EVENTS);
    }
}

/// Ten tasks race to append seq 1 to the same room while ten others append
/// to their own rooms: exactly one racer wins, the losers get `Conflict`, the
/// others all succeed (a failed request does not fail its batch).
pub async fn concurrent_conflict_fails_alone(store: Arc<dyn Store>) {
    const RACERS: usize = 10;
    let contested = unique("room");
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = store.clone();
        let contested = contested.clone();
        tasks.push(tokio::spawn(async move {
            let tag = format!("racer-{i}");
            let result = store
                .append_room_events(&contested, 0, &enc([room_event(1, &tag)]))
                .await;
            (tag, result)
        }));
    }
    let mut own = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        let room = unique("room");
        own.push(room.clone());
        tasks.push(tokio::spawn(async move {
            let result = store
                .append_room_events(&room, 0, &enc(room_events_range(1, 2)))
                .await;
            (room, result)
        }));
    }
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (tag, result) = task.await.expect("append task");
        if i < RACERS {
            match result {
                Ok(()) => winners.push(tag),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("{tag}: expected Ok or Conflict, got {e:?}"),
            }
        } else {
            assert_eq!(result, Ok(()), "{tag}");
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer wins: {winners:?}");
    assert_eq!(
        store.room_events(&contested, 0, 100).await.unwrap(),
        vec![room_event(1, &winners[0])]
    );
    for room in &own {
        assert_eq!(
            store.room_events(room, 0, 100).await.unwrap(),
            room_events_range(1, 2)
        );
    }
}
