//! The `store copy` suite: a source filled with every kind of record (the
//! program and billing records of [`super::copy_records`] too) is copied
//! into a target (through the target's ports), verified, copied again
//! (nothing changes: the copy resumes, and picks up what changed since),
//! and a record that differs on the target is found by the verification.

use chalktalk_actors::encoder::JobState;
use chalktalk_actors::store::{MembershipKind, Snapshot, ThreadMeta};
use chalktalk_protocol::ThreadKind;

use super::copy_records::{self, add_filled, fill_records, same_records};
use super::media::{asset, job};
use super::store::{cursor, enc, inbox_event, messages_range, room_event, room_meta, unique};
use crate::billing::AuditEntry;
use crate::copy::{Backend, CopyError, Summary, copy, summarize};
use crate::kv::KvBatch;
use crate::programs::OrderStatus;

/// Fills `store` with `n` of everything; ids carry `tag`.
pub async fn fill(store: &dyn Backend, tag: &str, n: u64) {
    for i in 0..n {
        let room = format!("room-{tag}-{i}");
        assert!(store.create_room(&room_meta(&room)).await.unwrap());
        // More events than one page of the copy (500) in the first room.
        let events = if i == 0 { 1_203 } else { 7 };
        for chunk in (1..=events).collect::<Vec<u64>>().chunks(300) {
            let evs = enc(chunk.iter().map(|s| room_event(*s, tag)));
            store.append_room_events(&room, 0, &evs).await.unwrap();
        }
        if i % 2 == 0 {
            let snap = Snapshot {
                seq: 5,
                bytes: vec![i as u8; 64],
            };
            store.put_room_snapshot(&room, &snap).await.unwrap();
        }
        let thread = format!("thread-{tag}-{i}");
        let meta = ThreadMeta {
            id: thread.clone(),
            kind: ThreadKind::Group,
            title: Some(format!("group {i}")),
            created_by: "coach".into(),
            members: vec!["coach".into(), format!("athlete-{tag}-{i}")],
            created_ms: 1_700_000_000_000,
        };
        assert!(store.create_thread(&meta).await.unwrap());
        store
            .append_messages(&thread, &messages_range(1, 12))
            .await
            .unwrap();
        store
            .put_cursor(&thread, &cursor("coach", 12, 10))
            .await
            .unwrap();
        let user = format!("athlete-{tag}-{i}");
        store
            .put_cursor(&thread, &cursor(&user, 3, 2))
            .await
            .unwrap();
        for s in 1..=4 {
            store.append_inbox(&user, &inbox_event(s)).await.unwrap();
        }
        store
            .add_membership(&user, MembershipKind::Room, &room)
            .await
            .unwrap();
        store
            .add_membership(&user, MembershipKind::Thread, &thread)
            .await
            .unwrap();
        store
            .put_asset(&asset(&format!("asset-{tag}-{i}")))
            .await
            .unwrap();
        let state = if i % 2 == 0 {
            JobState::Queued
        } else {
            JobState::Done
        };
        store
            .put_job(&job(&format!("job-{tag}-{i}"), 1_000 + i, state))
            .await
            .unwrap();
        let b = KvBatch::default()
            .put(
                "account",
                user.clone(),
                format!("account of {user}").into_bytes(),
            )
            .put("session", format!("{user}/s{i}"), vec![0, 1, 2, 255])
            .put(
                "email",
                format!("{user}@example.com"),
                user.clone().into_bytes(),
            )
            .put("empty", user.clone(), Vec::new());
        assert!(store.apply(b).await.unwrap());
        fill_records(store, tag, i).await;
    }
}

/// What [`fill`] puts in a store, `n` of each.
pub fn filled(n: u64) -> Summary {
    let mut s = Summary {
        rooms: n,
        room_events: 1_203 + 7 * n.saturating_sub(1),
        snapshots: n.div_ceil(2),
        threads: n,
        messages: 12 * n,
        cursors: 2 * n,
        inboxes: n,
        inbox_events: 4 * n,
        memberships: 2 * n,
        kv_rows: 4 * n,
        assets: n,
        jobs: n,
        ..Summary::default()
    };
    add_filled(&mut s, n);
    s
}

/// Copies a filled `from` into an empty `to` and checks the result.
pub async fn copies_everything(from: &dyn Backend, to: &dyn Backend) {
    let tag = unique("c");
    fill(from, &tag, 3).await;
    let before = summarize(from, None).await.unwrap();
    assert_eq!(before, filled(3));
    copy_records::pages_continue(from).await;
    let pages = std::sync::Mutex::new(Vec::new());
    let progress = |what: &str, n: u64| pages.lock().unwrap().push((what.to_string(), n));
    copy(from, to, &progress).await.unwrap();
    assert!(pages.lock().unwrap().contains(&("Kv".to_string(), 12)));
    assert_eq!(summarize(from, Some(to)).await.unwrap(), filled(3));
    assert_eq!(summarize(to, None).await.unwrap(), filled(3));
    // Contents, not only counts.
    let room = format!("room-{tag}-0");
    let ours = from.room_events(&room, 0, 2_000).await.unwrap();
    assert_eq!(to.room_events(&room, 0, 2_000).await.unwrap(), ours);
    assert_eq!(
        to.room_snapshot(&room).await.unwrap(),
        from.room_snapshot(&room).await.unwrap()
    );
    let thread = format!("thread-{tag}-1");
    assert_eq!(
        to.messages_after(&thread, 0, 100).await.unwrap(),
        from.messages_after(&thread, 0, 100).await.unwrap()
    );
    let user = format!("athlete-{tag}-2");
    assert_eq!(
        to.inbox_after(&user, 0, 10).await.unwrap(),
        from.inbox_after(&user, 0, 10).await.unwrap()
    );
    assert_eq!(
        to.get("session", &format!("{user}/s2")).await.unwrap(),
        Some(vec![0, 1, 2, 255])
    );
    assert_eq!(to.get("empty", &user).await.unwrap(), Some(Vec::new()));
    let unfinished: Vec<String> = to
        .unfinished_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.spec.id)
        .collect();
    assert!(
        unfinished.contains(&format!("job-{tag}-0")),
        "{unfinished:?}"
    );
    assert!(
        !unfinished.contains(&format!("job-{tag}-1")),
        "{unfinished:?}"
    );

    for i in 0..3 {
        same_records(from, to, &tag, i).await;
    }
    copy_records::pages_continue(to).await;

    // Again, unchanged: nothing to write, still verified.
    copy(from, to, &|_, _| {}).await.unwrap();
    assert_eq!(summarize(from, Some(to)).await.unwrap(), filled(3));
    assert_eq!(summarize(to, None).await.unwrap(), filled(3));
    for i in 0..3 {
        same_records(from, to, &tag, i).await;
    }

    // Again after writes on the source: it resumes after the target's
    // heads, so nothing is doubled, and versioned records step on.
    from.append_room_events(&room, 0, &enc([room_event(1_204, &tag)]))
        .await
        .unwrap();
    let order_id = format!("order-{tag}-1");
    let mut o = from.order(&order_id).await.unwrap().expect("order");
    o.version += 1;
    o.status = OrderStatus::Refunded;
    assert!(from.put_order(&o).await.unwrap());
    let evt = format!("evt-{tag}-1-pending");
    let mut r = from.receipt(&evt).await.unwrap().expect("receipt");
    r.applied_ms = Some(9_000);
    r.note = None;
    from.update_receipt(&r).await.unwrap();
    copy(from, to, &|_, _| {}).await.unwrap();
    let mut more = filled(3);
    more.room_events += 1;
    more.pending_receipts -= 1;
    assert_eq!(summarize(from, Some(to)).await.unwrap(), more);
    assert_eq!(to.order(&order_id).await.unwrap(), Some(o));
    assert_eq!(to.receipt(&evt).await.unwrap(), Some(r));
    let pending = to.pending_receipts(1_000).await.unwrap();
    assert!(pending.iter().all(|p| p.id != evt), "{pending:?}");

    // A target that lacks a program or billing record fails the
    // verification, naming it.
    let athlete = copy_records::user(&tag, 0);
    from.add_audit(&AuditEntry {
        id: format!("audit-{tag}-late"),
        subject: athlete.clone(),
        actor: "admin".into(),
        at_ms: 9_000,
        action: "plan_override_cleared".into(),
        detail: "late".into(),
    })
    .await
    .unwrap();
    match summarize(from, Some(to)).await {
        Err(CopyError::Differs(m)) => assert!(m.contains(&athlete), "{m}"),
        other => panic!("expected Differs, got {other:?}"),
    }

    // A target that lacks something fails the verification.
    from.append_inbox(&user, &inbox_event(5)).await.unwrap();
    match summarize(from, Some(to)).await {
        Err(CopyError::Differs(m)) => assert!(m.contains(&user), "{m}"),
        other => panic!("expected Differs, got {other:?}"),
    }
}
