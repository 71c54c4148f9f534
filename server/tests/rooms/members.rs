//! Room membership changes: a member leaves (`leave` op), the owner
//! removes a member (`remove` op); the one gone is told, loses the room at
//! once (`resync`, `join_room` refused with `not_member`, gone from
//! `GET /api/v1/me/rooms`), gets a `removed` notice, and playback control
//! goes back to the owner. Presence: a dropped connection is pushed as
//! `connected: false` at once and removed after the grace period.

use chalktalk_protocol::client::Client;
use chalktalk_protocol::{InboxEvent, Notice, PresenceEntry};

use crate::*;

fn rooms_of(body: &serde_json::Value) -> Vec<String> {
    body["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|r| r["room"].as_str().map(str::to_string))
        .collect()
}

/// Waits until `GET /api/v1/me/rooms` lists exactly `want` (the index is
/// written just after a commit).
async fn listed(s: &TestServer, token: &str, want: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = rooms_of(&s.api().get("/api/v1/me/rooms", Some(token)).await.json());
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "listed {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn resynced(c: &mut Client, room: &str) -> String {
    c.wait_for(WAIT, |f| match f {
        ServerFrame::Resync { room: r, reason } if r == room => Some(reason.clone()),
        _ => None,
    })
    .await
    .expect("a resync")
}

async fn next_presence(c: &mut Client) -> Vec<PresenceEntry> {
    c.wait_for(Duration::from_secs(3), |f| match f {
        ServerFrame::Live {
            ev: LiveEvent::Presence { members },
            ..
        } => Some(members.clone()),
        _ => None,
    })
    .await
    .expect("a presence update")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_removes_a_member_who_is_told_and_loses_access() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, room) = coach_and_athlete(&s).await;
    let tok = s.token("athlete", Role::Athlete);
    listed(&s, &tok, &[room.as_str()]).await;
    // The athlete leads playback when removed: control goes back to the owner.
    ack(
        &coach,
        op(
            &room,
            "h1",
            RoomOp::HandOver {
                to: "athlete".into(),
            },
        ),
    )
    .await;
    // Refusals: only the owner removes; not the owner; not a non-member.
    let r = athlete
        .request(op(
            &room,
            "x1",
            RoomOp::Remove {
                user: "coach".into(),
            },
        ))
        .await;
    assert_eq!(err_code(r), ErrorCode::Forbidden);
    let r = coach
        .request(op(
            &room,
            "x2",
            RoomOp::Remove {
                user: "coach".into(),
            },
        ))
        .await;
    assert_eq!(err_code(r), ErrorCode::Conflict);
    let r = coach
        .request(op(
            &room,
            "x3",
            RoomOp::Remove {
                user: "nobody".into(),
            },
        ))
        .await;
    assert_eq!(err_code(r), ErrorCode::NotMember);
    let r = coach.request(op(&room, "x4", RoomOp::Leave)).await;
    assert_eq!(err_code(r), ErrorCode::Conflict, "the owner cannot leave");
    drain_events(&mut athlete, Duration::from_millis(200)).await;
    drain_events(&mut coach, Duration::from_millis(50)).await;

    let (seq, _) = ack(
        &coach,
        op(
            &room,
            "rm",
            RoomOp::Remove {
                user: "athlete".into(),
            },
        ),
    )
    .await;
    // Both see the event; the athlete's connection is then dropped from
    // the room.
    for c in [&mut coach, &mut athlete] {
        let ev = next_event(c).await;
        assert_eq!(ev.seq, seq);
        assert!(ev.effects.contains(&Effect::Unmember {
            user: "athlete".into()
        }));
        assert!(
            ev.effects
                .iter()
                .any(|e| matches!(e, Effect::Playback { state } if state.leader == "coach"))
        );
    }
    assert_eq!(
        resynced(&mut athlete, &room).await,
        "you are no longer a member of this room"
    );
    let notice = athlete
        .wait_for(WAIT, |f| match f {
            ServerFrame::Inbox(InboxEvent { notice, .. }) => Some(notice.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        notice,
        Some(Notice::Removed {
            room: room.clone(),
            by: "coach".into()
        })
    );
    // Gone: no join, no op, no live input, not in presence, not listed.
    let r = athlete
        .request(ClientMsg::JoinRoom {
            room: room.clone(),
            since: None,
        })
        .await;
    assert_eq!(err_code(r), ErrorCode::NotMember);
    let r = athlete.request(add(&room, "late", line("late", 0))).await;
    assert_eq!(err_code(r), ErrorCode::NotMember);
    let r = athlete
        .request(ClientMsg::Pointer {
            room: room.clone(),
            at: None,
        })
        .await;
    assert_eq!(err_code(r), ErrorCode::NotMember);
    let presence = next_presence(&mut coach).await;
    assert!(presence.iter().all(|p| p.user != "athlete"), "{presence:?}");
    // The index forgets the room (written just after the commit).
    listed(&s, &tok, &[]).await;
    // The same op id again is a duplicate, not a refusal.
    assert_eq!(
        ack(
            &coach,
            op(
                &room,
                "rm",
                RoomOp::Remove {
                    user: "athlete".into()
                }
            )
        )
        .await,
        (seq, true)
    );
    // Invited again, the athlete is back.
    ack(
        &coach,
        op(
            &room,
            "i2",
            RoomOp::Invite {
                user: "athlete".into(),
            },
        ),
    )
    .await;
    join(&athlete, &room, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaves_on_every_device_and_the_op_is_idempotent() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, room) = coach_and_athlete(&s).await;
    let mut tablet = s.connect("athlete", Role::Athlete, "tablet").await;
    join(&tablet, &room, None).await;
    drain_events(&mut coach, Duration::from_millis(100)).await;

    let (seq, dup) = ack(&athlete, op(&room, "bye", RoomOp::Leave)).await;
    assert!(!dup);
    for c in [&mut athlete, &mut tablet] {
        assert_eq!(next_event(c).await.seq, seq);
        resynced(c, &room).await;
    }
    let ev = next_event(&mut coach).await;
    assert_eq!((ev.seq, ev.op.clone()), (seq, RoomOp::Leave));
    assert_eq!(
        ev.effects,
        vec![Effect::Unmember {
            user: "athlete".into()
        }]
    );
    // A resend after leaving gets its ack again; a new leave is refused.
    assert_eq!(
        ack(&athlete, op(&room, "bye", RoomOp::Leave)).await,
        (seq, true)
    );
    let r = athlete.request(op(&room, "bye2", RoomOp::Leave)).await;
    assert_eq!(err_code(r), ErrorCode::NotMember);
    let r = tablet
        .request(ClientMsg::JoinRoom {
            room: room.clone(),
            since: Some(seq),
        })
        .await;
    assert_eq!(err_code(r), ErrorCode::NotMember);
    // A late joiner's snapshot has the member list without the athlete.
    let late = s.connect("coach", Role::Coach, "desk").await;
    assert_eq!(
        snapshot(&late, &room).await.members,
        vec!["coach".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_shows_disconnected_at_once_then_goes() {
    // Test config: grace 500 ms.
    let s = TestServer::start().await;
    let (mut coach, athlete, _room) = coach_and_athlete(&s).await;
    while coach.next_push(Duration::from_millis(200)).await.is_some() {}
    let phone = |members: &[PresenceEntry]| {
        members
            .iter()
            .find(|p| p.user == "athlete" && p.device == "phone")
            .map(|p| p.connected)
    };
    let dropped = Instant::now();
    athlete.kill();
    let first = next_presence(&mut coach).await;
    assert_eq!(phone(&first), Some(false), "{first:?}");
    assert!(
        dropped.elapsed() < Duration::from_millis(400),
        "pushed before the grace ends"
    );
    let second = next_presence(&mut coach).await;
    assert_eq!(phone(&second), None, "{second:?}");
}

/// Invites and removals in quick succession: the membership index ends as
/// the last op says (its writes keep commit order per room).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follows_quick_invites_and_removals_in_order() {
    let s = TestServer::start().await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let room = create_room(&coach, "video-1").await;
    let tok = s.token("athlete", Role::Athlete);
    let user = || "athlete".to_string();
    for i in 0..20 {
        let (a, b) = tokio::join!(
            coach.request(op(&room, &format!("i{i}"), RoomOp::Invite { user: user() })),
            coach.request(op(&room, &format!("r{i}"), RoomOp::Remove { user: user() }))
        );
        assert!(matches!(a, Ok(Reply::Ack { .. })), "{a:?}");
        assert!(matches!(b, Ok(Reply::Ack { .. })), "{b:?}");
    }
    listed(&s, &tok, &[]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    listed(&s, &tok, &[]).await;
    ack(&coach, op(&room, "last", RoomOp::Invite { user: user() })).await;
    listed(&s, &tok, &[room.as_str()]).await;
}
