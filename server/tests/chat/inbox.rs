//! Inbox notices of chat threads not being viewed: every device of a
//! member, replay with `inbox_since`, numbering under group commit.

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_notices_reach_every_device_of_a_member_not_viewing() {
    let s = TestServer::start().await;
    let mut phone = s.connect("athlete", Role::Athlete, "phone").await;
    let mut tablet = s.connect("athlete", Role::Athlete, "tablet").await;
    sync(&phone).await;
    sync(&tablet).await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let t = create_thread(&coach, ThreadKind::Direct, &["athlete"], None)
        .await
        .id;
    assert_eq!(next_inbox(&mut phone).await.seq, 1);
    assert_eq!(next_inbox(&mut tablet).await.seq, 1);

    // Nobody views the thread (the coach sends without opening it).
    let text = "Ä".repeat(100);
    assert_eq!(ack(&coach, send(&t, "m1", &text)).await.0, 1);
    let on_phone = next_inbox(&mut phone).await;
    let on_tablet = next_inbox(&mut tablet).await;
    assert_eq!(on_phone, on_tablet, "both devices get the same event");
    assert_eq!(on_phone.seq, 2);
    assert_eq!(
        on_phone.notice,
        Notice::NewMessage {
            thread: t.clone(),
            seq: 1,
            from: "coach".into(),
            preview: "Ä".repeat(80),
        }
    );

    // A device that saw up to seq-1 gets exactly the one it missed.
    let mut laptop = connect_since(&s, "athlete", Role::Athlete, "laptop", on_phone.seq - 1).await;
    assert_eq!(next_inbox(&mut laptop).await, on_phone);
    assert_eq!(laptop.wait_for(QUIET, pick_inbox).await, None);

    // While the athlete views the thread (on one device), no notice for it
    // on any device.
    open(&phone, &t, None).await;
    assert_eq!(ack(&coach, send(&t, "m2", "while viewing")).await.0, 2);
    let m = next_msg(&mut phone, &t).await;
    // The open page replays m1 first.
    assert_eq!(m.seq, 1);
    assert_eq!(next_msg(&mut phone, &t).await.seq, 2);
    assert_eq!(
        phone
            .request(ClientMsg::CloseThread { thread: t.clone() })
            .await
            .unwrap(),
        Reply::Done
    );
    assert_eq!(ack(&coach, send(&t, "m3", "after closing")).await.0, 3);
    // Inbox seqs are gap-free: had m2 produced a notice this would be 4.
    let ev = next_inbox(&mut tablet).await;
    assert_eq!(ev.seq, 3);
    assert_eq!(
        ev.notice,
        Notice::NewMessage {
            thread: t.clone(),
            seq: 3,
            from: "coach".into(),
            preview: "after closing".into(),
        }
    );
    assert_eq!(next_inbox(&mut phone).await, ev);
    assert_eq!(next_inbox(&mut laptop).await, ev);

    // The sender gets no notice of its own messages.
    let mut coach2 = connect_since(&s, "coach", Role::Coach, "phone", 0).await;
    assert_eq!(coach2.wait_for(QUIET, pick_inbox).await, None);
}

/// Many members, many messages, nobody viewing: each member's inbox gets
/// every notice, numbered 1.. without gap or duplicate, although the inbox
/// group-commits notices of many users and messages at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_notices_stay_numbered_under_group_commit() {
    let s = TestServer::start().await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let members: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let thread = create_thread(&coach, ThreadKind::Group, &refs, None).await;
    let sends =
        (0..20).map(|i| coach.request(send(&thread.id, &format!("g{i}"), &format!("note {i}"))));
    for r in futures_util::future::join_all(sends).await {
        assert!(matches!(r, Ok(Reply::Ack { dup: false, .. })), "{r:?}");
    }
    for m in ["m0", "m17", "m29"] {
        let mut c = connect_since(&s, m, Role::Athlete, "phone", 0).await;
        let mut got = Vec::new();
        while let Some(ev) = c.wait_for(Duration::from_secs(2), pick_inbox).await {
            got.push(ev);
            if got.len() == 21 {
                break;
            }
        }
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=21).collect::<Vec<_>>(), "{m}");
        let previews: Vec<String> = got[1..]
            .iter()
            .map(|e| match &e.notice {
                Notice::NewMessage { preview, .. } => preview.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        let mut sorted = previews.clone();
        sorted.sort_by_key(|p| p[5..].parse::<u32>().unwrap());
        assert_eq!(previews.len(), 20);
        assert_eq!(
            sorted,
            (0..20).map(|i| format!("note {i}")).collect::<Vec<_>>(),
            "{m}"
        );
    }
}

/// A device far behind gets its whole backlog, page after page (500 per
/// page), in order and once each, while new notices keep arriving; then
/// live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_replay_continues_past_one_page() {
    use chalktalk_actors::inbox::InboxMsg;
    let s = TestServer::start().await;
    let inbox = s.app().directory.inbox().clone();
    let deliver = |i: u64| InboxMsg::Deliver {
        user: "athlete".into(),
        notice: Notice::AddedToThread {
            thread: format!("t-{i}"),
            by: "coach".into(),
        },
    };
    let total = 1_234u64;
    for i in 1..=total {
        inbox.cast(deliver(i)).expect("inbox runs");
    }
    // Stored: a device that saw everything gets nothing.
    let deadline = std::time::Instant::now() + WAIT;
    while s.app().perms.store.inbox_head("athlete").await.unwrap() < total {
        assert!(std::time::Instant::now() < deadline, "notices not stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut phone = connect_since(&s, "athlete", Role::Athlete, "phone", 100).await;
    // More arrive during the replay: they come after it, in order.
    for i in total + 1..=total + 20 {
        inbox.cast(deliver(i)).expect("inbox runs");
    }
    let mut seqs = Vec::new();
    while let Some(ev) = phone.wait_for(WAIT, pick_inbox).await {
        let Notice::AddedToThread { thread, .. } = &ev.notice else {
            panic!("{ev:?}");
        };
        assert_eq!(thread, &format!("t-{}", ev.seq));
        seqs.push(ev.seq);
        if ev.seq == total + 20 {
            break;
        }
    }
    assert_eq!(seqs, (101..=total + 20).collect::<Vec<u64>>());
    // Then live.
    inbox.cast(deliver(total + 21)).expect("inbox runs");
    assert_eq!(next_inbox(&mut phone).await.seq, total + 21);
    assert_eq!(phone.wait_for(QUIET, pick_inbox).await, None);
}
