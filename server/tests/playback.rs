//! End-to-end tests of shared playback in a review room over a real server
//! and real WebSocket clients: only the leader controls play, pause, seek,
//! rate and frame step (each a durable event whose `playback` effect carries
//! the exact new clock), the range checks, handing control over, the
//! playback state in a late joiner's snapshot, and `ping`'s server clock.

mod common;

use chalktalk_protocol::client::Client;
use chalktalk_protocol::{
    ClientMsg, Effect, ErrorCode, JoinMode, PlaybackState, Reply, Role, RoomEvent, RoomOp,
    RoomSnapshot, ServerFrame,
};
use common::{TestServer, ack, err_code, join, next_event, now_ms, op};

const FPS: f32 = 25.0;
/// One frame at 25 fps.
const FRAME_MS: f64 = 40.0;

/// The playback state an event carries (its only effect).
fn playback(ev: &RoomEvent) -> PlaybackState {
    match ev.effects.as_slice() {
        [Effect::Playback { state }] => state.clone(),
        other => panic!("expected one playback effect, got {other:?}"),
    }
}

fn snapshot(r: Reply) -> RoomSnapshot {
    match r {
        Reply::Joined {
            mode: JoinMode::Snapshot { snapshot },
            ..
        } => snapshot,
        other => panic!("expected a snapshot join, got {other:?}"),
    }
}

/// Where a playback clock stands at server time `at`.
fn position_at(p: &PlaybackState, at: u64) -> f64 {
    if p.playing {
        p.position_ms + (at - p.at_server_ms) as f64 * f64::from(p.rate)
    } else {
        p.position_ms
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// Coach (owner) and athlete, both joined to a 25 fps room; returns the
/// coach's initial snapshot too.
async fn setup(s: &TestServer) -> (Client, Client, String, RoomSnapshot) {
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let athlete = s.connect("athlete", Role::Athlete, "phone").await;
    let room = match coach
        .request(ClientMsg::CreateRoom {
            video_id: "serve-1".into(),
            aspect: None,
            fps: Some(FPS),
        })
        .await
        .expect("create_room")
    {
        Reply::RoomCreated { room } => room,
        other => panic!("unexpected {other:?}"),
    };
    let snap = snapshot(join(&coach, &room, None).await);
    let (seq, _) = ack(
        &coach,
        op(
            &room,
            "invite-athlete",
            RoomOp::Invite {
                user: "athlete".into(),
            },
        ),
    )
    .await;
    assert_eq!(seq, 1);
    // The coach, joined already, receives the invite's event.
    let mut coach = coach;
    assert_eq!(next_event(&mut coach).await.seq, 1);
    join(&athlete, &room, None).await;
    (coach, athlete, room, snap)
}

/// Applies `o` as `by`, checks the ack, and returns the event both the
/// other member and `by` itself receive (asserted identical).
async fn apply(
    by: &mut Client,
    other: &mut Client,
    room: &str,
    op_id: &str,
    o: RoomOp,
) -> RoomEvent {
    let (seq, dup) = ack(by, op(room, op_id, o.clone())).await;
    assert!(!dup, "{op_id} is new");
    let ev = next_event(other).await;
    assert_eq!(ev.seq, seq, "the event's seq is the acked seq");
    assert_eq!(ev.by, by.welcome.user);
    assert_eq!(ev.op_id, op_id);
    assert_eq!(ev.op, o);
    assert_eq!(ev.target, None);
    assert_eq!(next_event(by).await, ev, "every member gets the same event");
    ev
}

/// The expected playback after an event at `ev.at_ms`: `prev` advanced to
/// that time, then changed by `f`.
fn expected(
    prev: &PlaybackState,
    ev: &RoomEvent,
    f: impl FnOnce(&mut PlaybackState),
) -> PlaybackState {
    let mut s = prev.clone();
    s.position_ms = position_at(prev, ev.at_ms);
    s.at_server_ms = ev.at_ms;
    f(&mut s);
    s
}

fn assert_playback(got: &PlaybackState, want: &PlaybackState) {
    assert!(
        got.playing == want.playing
            && close(got.position_ms, want.position_ms)
            && got.rate == want.rate
            && got.at_server_ms == want.at_server_ms
            && got.leader == want.leader,
        "playback\n got: {got:?}\nwant: {want:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_controls_playback_with_exact_effects() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, room, snap) = setup(&s).await;
    assert_eq!(snap.fps, FPS);
    let p0 = snap.playback;
    assert_eq!(
        (p0.playing, p0.position_ms, p0.rate, p0.leader.as_str()),
        (false, 0.0, 1.0, "coach"),
        "a new room is paused at 0, rate 1, led by its owner"
    );

    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "play",
        RoomOp::Play {
            position_ms: 1000.0,
        },
    )
    .await;
    assert!(ev.at_ms.abs_diff(now_ms()) < 5_000);
    let play_seq = ev.seq;
    let p1 = playback(&ev);
    assert_eq!(
        p1,
        PlaybackState {
            playing: true,
            position_ms: 1000.0,
            rate: 1.0,
            at_server_ms: ev.at_ms,
            leader: "coach".into(),
        }
    );

    // Rate while playing: the position is re-based to the event's time.
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "slowmo",
        RoomOp::Rate { rate: 0.25 },
    )
    .await;
    let p2 = playback(&ev);
    assert_playback(&p2, &expected(&p1, &ev, |s| s.rate = 0.25));
    assert!(p2.playing);
    assert!(
        p2.position_ms >= 1060.0,
        "60 ms at rate 1 passed: {}",
        p2.position_ms
    );

    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "pause",
        RoomOp::Pause {
            position_ms: 5000.0,
        },
    )
    .await;
    let p3 = playback(&ev);
    assert_eq!(
        p3,
        PlaybackState {
            playing: false,
            position_ms: 5000.0,
            rate: 0.25,
            at_server_ms: ev.at_ms,
            leader: "coach".into(),
        }
    );

    // Seek keeps pause.
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "seek",
        RoomOp::Seek {
            position_ms: 7000.0,
        },
    )
    .await;
    let p4 = playback(&ev);
    assert_playback(&p4, &expected(&p3, &ev, |s| s.position_ms = 7000.0));
    assert!(!p4.playing);

    // Step: one frame (40 ms at 25 fps) from the paused position.
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "step",
        RoomOp::Step { frames: 1 },
    )
    .await;
    let p5 = playback(&ev);
    assert_eq!(
        p5,
        PlaybackState {
            playing: false,
            position_ms: 7040.0,
            rate: 0.25,
            at_server_ms: ev.at_ms,
            leader: "coach".into(),
        }
    );
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "back3",
        RoomOp::Step { frames: -3 },
    )
    .await;
    let p6 = playback(&ev);
    assert!(close(p6.position_ms, 7040.0 - 3.0 * FRAME_MS), "{p6:?}");
    assert!(!p6.playing);

    // Seek keeps play; step while playing pauses one frame past "now".
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "play2",
        RoomOp::Play {
            position_ms: 2000.0,
        },
    )
    .await;
    let p7 = playback(&ev);
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "seek2",
        RoomOp::Seek {
            position_ms: 3000.0,
        },
    )
    .await;
    let p8 = playback(&ev);
    assert_playback(&p8, &expected(&p7, &ev, |s| s.position_ms = 3000.0));
    assert!(p8.playing, "seek keeps playing");
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "step2",
        RoomOp::Step { frames: 2 },
    )
    .await;
    let p9 = playback(&ev);
    let want = expected(&p8, &ev, |s| {
        s.playing = false;
        s.position_ms += 2.0 * FRAME_MS;
    });
    assert_playback(&p9, &want);
    assert!(p9.position_ms >= 3000.0 + 40.0 * 0.25 + 80.0);

    // Stepping back before the start stops at 0.
    apply(
        &mut coach,
        &mut athlete,
        &room,
        "zero",
        RoomOp::Seek { position_ms: 0.0 },
    )
    .await;
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "before0",
        RoomOp::Step { frames: -1 },
    )
    .await;
    assert_eq!(playback(&ev).position_ms, 0.0);

    // Resending an op id acks the original seq and emits nothing.
    assert_eq!(
        ack(
            &coach,
            op(
                &room,
                "play",
                RoomOp::Play {
                    position_ms: 1000.0
                }
            )
        )
        .await,
        (play_seq, true)
    );
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "last",
        RoomOp::Pause { position_ms: 10.0 },
    )
    .await;
    assert_eq!(ev.seq, 13, "no event was added by the resend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_ops_are_checked() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, room, _) = setup(&s).await;

    let refused = [
        (
            &athlete,
            RoomOp::Play { position_ms: 0.0 },
            ErrorCode::Forbidden,
        ),
        (
            &athlete,
            RoomOp::Pause { position_ms: 0.0 },
            ErrorCode::Forbidden,
        ),
        (
            &athlete,
            RoomOp::Seek { position_ms: 0.0 },
            ErrorCode::Forbidden,
        ),
        (&athlete, RoomOp::Rate { rate: 0.5 }, ErrorCode::Forbidden),
        (&athlete, RoomOp::Step { frames: 1 }, ErrorCode::Forbidden),
        (&coach, RoomOp::Rate { rate: 8.0 }, ErrorCode::Invalid),
        (&coach, RoomOp::Rate { rate: 0.05 }, ErrorCode::Invalid),
        (&coach, RoomOp::Rate { rate: 0.0 }, ErrorCode::Invalid),
        (&coach, RoomOp::Rate { rate: -1.0 }, ErrorCode::Invalid),
        (&coach, RoomOp::Rate { rate: f32::NAN }, ErrorCode::Invalid),
        (&coach, RoomOp::Step { frames: 0 }, ErrorCode::Invalid),
        (&coach, RoomOp::Step { frames: 601 }, ErrorCode::Invalid),
        (&coach, RoomOp::Step { frames: -601 }, ErrorCode::Invalid),
        (
            &coach,
            RoomOp::Play { position_ms: -1.0 },
            ErrorCode::Invalid,
        ),
        (
            &coach,
            RoomOp::Seek {
                position_ms: f64::NAN,
            },
            ErrorCode::Invalid,
        ),
        (
            &coach,
            RoomOp::Seek {
                position_ms: f64::INFINITY,
            },
            ErrorCode::Invalid,
        ),
        (
            &coach,
            RoomOp::Pause {
                position_ms: 24.0 * 3_600_000.0 + 1.0,
            },
            ErrorCode::Invalid,
        ),
    ];
    for (i, (who, o, code)) in refused.into_iter().enumerate() {
        let what = format!("{o:?} by {}", who.welcome.user);
        assert_eq!(
            err_code(who.request(op(&room, &format!("bad-{i}"), o)).await),
            code,
            "{what}"
        );
    }
    // Not a member at all.
    let stranger = s.connect("stranger", Role::Coach, "laptop").await;
    assert_eq!(
        err_code(
            stranger
                .request(op(&room, "x", RoomOp::Play { position_ms: 0.0 }))
                .await
        ),
        ErrorCode::NotMember
    );

    // The edges of the ranges are fine, and refusals consumed no seq.
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "min",
        RoomOp::Rate { rate: 0.0625 },
    )
    .await;
    assert_eq!(ev.seq, 2);
    assert_eq!(playback(&ev).rate, 0.0625);
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "max",
        RoomOp::Rate { rate: 4.0 },
    )
    .await;
    assert_eq!(playback(&ev).rate, 4.0);
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "far",
        RoomOp::Step { frames: 600 },
    )
    .await;
    assert!(close(playback(&ev).position_ms, 600.0 * FRAME_MS));
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "end",
        RoomOp::Seek {
            position_ms: 24.0 * 3_600_000.0,
        },
    )
    .await;
    assert_eq!(ev.seq, 5);

    // A refused op id was not remembered: once leader, the athlete's
    // "bad-0" is a new op, not a dup.
    apply(
        &mut coach,
        &mut athlete,
        &room,
        "give",
        RoomOp::HandOver {
            to: "athlete".into(),
        },
    )
    .await;
    let ev = apply(
        &mut athlete,
        &mut coach,
        &room,
        "bad-0",
        RoomOp::Play { position_ms: 0.0 },
    )
    .await;
    assert_eq!(ev.seq, 7);
    assert!(playback(&ev).playing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_over_moves_control() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, room, _) = setup(&s).await;
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "pause",
        RoomOp::Pause {
            position_ms: 1500.0,
        },
    )
    .await;
    let before = playback(&ev);

    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "give",
        RoomOp::HandOver {
            to: "athlete".into(),
        },
    )
    .await;
    let handed = playback(&ev);
    assert_eq!(
        handed,
        PlaybackState {
            leader: "athlete".into(),
            at_server_ms: ev.at_ms,
            ..before
        },
        "only the leader changes"
    );

    // The athlete leads now; the coach, though owner, does not.
    let ev = apply(
        &mut athlete,
        &mut coach,
        &room,
        "a-seek",
        RoomOp::Seek {
            position_ms: 1234.0,
        },
    )
    .await;
    let p = playback(&ev);
    assert_eq!(
        (p.position_ms, p.leader.as_str(), p.playing),
        (1234.0, "athlete", false)
    );
    for (i, o) in [
        RoomOp::Seek { position_ms: 0.0 },
        RoomOp::Play { position_ms: 0.0 },
        RoomOp::Rate { rate: 2.0 },
        RoomOp::Step { frames: 1 },
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            err_code(coach.request(op(&room, &format!("c-{i}"), o)).await),
            ErrorCode::Forbidden
        );
    }
    // Handing over to a non-member is refused, by the owner or the leader.
    let to_stranger = RoomOp::HandOver {
        to: "stranger".into(),
    };
    assert_eq!(
        err_code(coach.request(op(&room, "h1", to_stranger.clone())).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        err_code(athlete.request(op(&room, "h2", to_stranger)).await),
        ErrorCode::NotMember
    );
    // A member who neither leads nor owns cannot hand over.
    ack(
        &coach,
        op(
            &room,
            "invite-2",
            RoomOp::Invite {
                user: "athlete2".into(),
            },
        ),
    )
    .await;
    assert!(
        matches!(next_event(&mut athlete).await.effects.as_slice(), [Effect::Member { user }] if user == "athlete2")
    );
    next_event(&mut coach).await;
    let athlete2 = s.connect("athlete2", Role::Athlete, "phone").await;
    assert_eq!(
        err_code(
            athlete2
                .request(op(
                    &room,
                    "steal",
                    RoomOp::HandOver {
                        to: "athlete2".into()
                    }
                ))
                .await
        ),
        ErrorCode::Forbidden
    );
    // The owner may take control back, though it does not lead.
    let ev = apply(
        &mut coach,
        &mut athlete,
        &room,
        "take",
        RoomOp::HandOver { to: "coach".into() },
    )
    .await;
    assert_eq!(playback(&ev).leader, "coach");
    assert_eq!(playback(&ev).position_ms, 1234.0);
    assert_eq!(
        err_code(
            athlete
                .request(op(&room, "a-late", RoomOp::Seek { position_ms: 1.0 }))
                .await
        ),
        ErrorCode::Forbidden
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_snapshot_carries_playback() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, room, _) = setup(&s).await;
    apply(
        &mut coach,
        &mut athlete,
        &room,
        "slow",
        RoomOp::Rate { rate: 0.5 },
    )
    .await;
    apply(
        &mut coach,
        &mut athlete,
        &room,
        "give",
        RoomOp::HandOver {
            to: "athlete".into(),
        },
    )
    .await;
    apply(
        &mut athlete,
        &mut coach,
        &room,
        "seek",
        RoomOp::Seek {
            position_ms: 4321.0,
        },
    )
    .await;
    let ev = apply(
        &mut athlete,
        &mut coach,
        &room,
        "play",
        RoomOp::Play {
            position_ms: 4321.0,
        },
    )
    .await;
    let last = playback(&ev);
    assert!(last.playing);
    let (invite_seq, _) = ack(
        &coach,
        op(
            &room,
            "invite-2",
            RoomOp::Invite {
                user: "athlete2".into(),
            },
        ),
    )
    .await;

    let late = s.connect("athlete2", Role::Athlete, "tablet").await;
    let snap = snapshot(join(&late, &room, None).await);
    assert_eq!(
        snap.playback, last,
        "the snapshot's clock is the last playback event's"
    );
    assert_eq!(snap.seq, invite_seq);
    assert_eq!(snap.fps, FPS);
    assert_eq!(snap.owner, "coach");
    assert_eq!(snap.video_id, "serve-1");
    assert_eq!(snap.members, vec!["athlete", "athlete2", "coach"]);
    assert!(snap.annotations.is_empty());

    // Replaying the log from the start reaches the same clock.
    let mut replayer = s.connect("athlete2", Role::Athlete, "phone").await;
    match join(&replayer, &room, Some(0)).await {
        Reply::Joined {
            mode: JoinMode::Replay { since, head },
            ..
        } => assert_eq!((since, head), (0, invite_seq)),
        other => panic!("expected a replay, got {other:?}"),
    }
    let mut evs = Vec::new();
    while evs.len() < invite_seq as usize {
        evs.push(next_event(&mut replayer).await);
    }
    assert_eq!(
        evs.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=invite_seq).collect::<Vec<_>>()
    );
    let replayed = evs
        .iter()
        .flat_map(|e| &e.effects)
        .filter_map(|e| match e {
            Effect::Playback { state } => Some(state.clone()),
            _ => None,
        })
        .next_back()
        .expect("playback events in the log");
    assert_eq!(replayed, last);
    assert_eq!(
        replayer
            .wait_for(std::time::Duration::from_millis(200), |f| matches!(
                f,
                ServerFrame::Room { .. }
            )
            .then_some(()))
            .await,
        None,
        "nothing beyond the head"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_returns_the_server_clock() {
    let s = TestServer::start().await;
    let c = s.connect("coach", Role::Coach, "laptop").await;
    assert!(c.welcome.server_ms.abs_diff(now_ms()) < 5_000);
    for _ in 0..3 {
        let before = now_ms();
        let r = c.request(ClientMsg::Ping).await.expect("pong");
        let after = now_ms();
        match r {
            Reply::Pong { server_ms } => {
                // Same host: the server clock lies within the round trip,
                // give or take clock granularity.
                assert!(
                    server_ms + 50 >= before && server_ms <= after + 50,
                    "server_ms {server_ms} not within {before}..={after}"
                );
                assert!(server_ms.abs_diff(now_ms()) < 5_000);
            }
            other => panic!("expected pong, got {other:?}"),
        }
    }
}
