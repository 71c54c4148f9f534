//! Group threads: creation rules, membership limits.

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_threads_and_creation_rules() {
    let s = TestServer::start().await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let mut a1 = s.connect("athlete1", Role::Athlete, "phone").await;
    let mut a2 = s.connect("athlete2", Role::Athlete, "phone").await;
    sync(&a1).await;
    sync(&a2).await;

    let g = create_thread(
        &coach,
        ThreadKind::Group,
        &["athlete2", "athlete1"],
        Some("Squad"),
    )
    .await;
    assert_eq!(g.kind, ThreadKind::Group);
    assert_eq!(
        g.members,
        vec![
            "athlete1".to_string(),
            "athlete2".to_string(),
            "coach".to_string()
        ]
    );
    assert_eq!(g.title.as_deref(), Some("Squad"));
    assert_eq!(g.created_by, "coach");
    for c in [&mut a1, &mut a2] {
        assert_eq!(
            next_inbox(c).await.notice,
            Notice::AddedToThread {
                thread: g.id.clone(),
                by: "coach".into()
            }
        );
    }
    // Groups are not deduplicated like direct threads.
    let g2 = create_thread(&coach, ThreadKind::Group, &["athlete1", "athlete2"], None).await;
    assert_ne!(g2.id, g.id);

    // Every member sees the coach's message; athletes only write in
    // direct threads with their coach (the permission matrix).
    open(&coach, &g.id, None).await;
    open(&a1, &g.id, None).await;
    open(&a2, &g.id, None).await;
    assert_eq!(ack(&coach, send(&g.id, "hey", "hey all")).await, (1, false));
    for c in [&mut a1, &mut a2] {
        let m = next_msg(c, &g.id).await;
        assert_eq!(
            (m.seq, m.from.as_str(), m.text.as_str()),
            (1, "coach", "hey all")
        );
    }
    assert_eq!(
        err_code(a1.request(send(&g.id, "a1", "me too")).await),
        ErrorCode::Forbidden
    );

    let max = coach.welcome.limits.max_members as usize;
    let refused = [
        (create_msg(ThreadKind::Group, &[]), ErrorCode::Invalid),
        (
            create_msg(ThreadKind::Group, &["coach"]),
            ErrorCode::Invalid,
        ),
        (
            create_msg(ThreadKind::Direct, &["athlete1", "athlete2"]),
            ErrorCode::Invalid,
        ),
        (create_msg(ThreadKind::Direct, &[]), ErrorCode::Invalid),
        (
            create_msg(ThreadKind::Direct, &["coach"]),
            ErrorCode::Invalid,
        ),
        (
            create_msg(ThreadKind::Direct, &["not valid"]),
            ErrorCode::Invalid,
        ),
        (
            ClientMsg::CreateThread {
                kind: ThreadKind::Group,
                members: (0..max).map(|i| format!("u{i}")).collect(),
                title: None,
            },
            ErrorCode::Invalid,
        ),
        (
            ClientMsg::CreateThread {
                kind: ThreadKind::Group,
                members: vec!["athlete1".into()],
                title: Some("t".repeat(201)),
            },
            ErrorCode::TextTooLong,
        ),
    ];
    for (m, code) in refused {
        let what = format!("{m:?}");
        assert_eq!(
            err_code(coach.request(m).await),
            code,
            "{}",
            &what[..what.len().min(120)]
        );
    }
    // The largest group allowed: the creator and max-1 others.
    let big = create_thread(
        &coach,
        ThreadKind::Group,
        &(1..max)
            .map(|i| format!("u{i}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        None,
    )
    .await;
    assert_eq!(big.members.len(), max);
}
