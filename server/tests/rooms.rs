//! End-to-end review room tests over real WebSockets: co-annotation, late
//! joiners, resume after a dropped connection, idempotent op ids, presence
//! with a grace period, supervised restart after a panic, and a slow
//! consumer that must not delay the others. Busy rooms (paged joins, slow
//! links, stalled readers) are in `busy`; a cut or stalled network
//! (through the harness's proxy) in `network`.

mod common;
/// The suite's other files, in tests/rooms/.
mod rooms {
    pub mod busy;
    pub mod members;
    pub mod network;
}

use std::time::{Duration, Instant};

use chalktalk_protocol::client::ClientOptions;
use chalktalk_protocol::{
    Activity, ClientMsg, Effect, ErrorCode, JoinMode, LiveEvent, LiveStroke, Point, Reply, Role,
    RoomOp, ServerFrame, Shape, StrokeBy, StrokeIn, Style, client::ClientError,
};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_co_annotate() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, room) = coach_and_athlete(&s).await;

    // Live preview: points stream to the other member, not back to the sender.
    coach
        .send(ClientMsg::Activity {
            room: room.clone(),
            activity: Activity::Drawing,
        })
        .unwrap();
    let points = vec![Point(0.1, 0.1), Point(0.2, 0.25)];
    coach
        .send(ClientMsg::Points(StrokeIn {
            room: room.clone(),
            live: LiveStroke {
                stroke: "s1".into(),
                batch: 0,
                t_ms: 1500,
                style: Style::default(),
                points: points.clone(),
            },
        }))
        .unwrap();
    // Presence (sent first) shows the coach drawing, then the points arrive.
    let drawing = athlete
        .wait_for(WAIT, |f| match f {
            ServerFrame::Live {
                ev: LiveEvent::Presence { members },
                ..
            } => members
                .iter()
                .find(|m| m.user == "coach" && m.activity == Activity::Drawing)
                .cloned(),
            _ => None,
        })
        .await;
    assert!(drawing.is_some(), "presence shows the coach drawing");
    let got = athlete
        .wait_for(WAIT, |f| match f {
            ServerFrame::Live {
                ev:
                    LiveEvent::Points(StrokeBy {
                        user,
                        live: LiveStroke { points, batch, .. },
                    }),
                ..
            } => Some((user.clone(), points.clone(), *batch)),
            _ => None,
        })
        .await
        .expect("live points reach the athlete");
    assert_eq!(got, ("coach".to_string(), points.clone(), 0));

    // The committed stroke is durable, acked with its seq and seen by both.
    let stroke = Shape::Stroke {
        points: points.clone(),
    };
    let mut ann = line("s1", 1500);
    ann.shape = stroke;
    let (seq, dup) = ack(&coach, add(&room, "op-1", ann.clone())).await;
    assert_eq!((seq, dup), (2, false), "seq 1 was the invite");
    for c in [&mut athlete, &mut coach] {
        let ev = next_event(c).await;
        assert_eq!(ev.seq, 2);
        let mut expected = ann.clone();
        expected.author = "coach".into();
        assert_eq!(ev.effects, vec![Effect::Put { ann: expected }]);
    }

    // An angle's degrees are computed by the server, aspect-true (16:9).
    let mut angle = line("ang", 2000);
    angle.shape = Shape::Angle {
        a: Point(0.5, 0.1),
        v: Point(0.5, 0.5),
        b: Point(0.9, 0.5),
        deg: 1.0,
    };
    let (seq, _) = ack(&athlete, add(&room, "op-a", angle)).await;
    let ev = next_event(&mut coach).await;
    assert_eq!(ev.seq, seq);
    match &ev.effects[..] {
        [Effect::Put { ann }] => match ann.shape {
            // Arms of 0.4 width units (x 16/9 px) and 0.4 height units.
            Shape::Angle { deg, .. } => assert!((deg - 90.0).abs() < 0.01, "{deg}"),
            _ => panic!("not an angle"),
        },
        other => panic!("{other:?}"),
    }

    // Only the author changes an annotation; undo reverts one's own op.
    let e = athlete
        .request(op(&room, "op-x", RoomOp::Update { ann: line("s1", 0) }))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{e:?}"
    );
    let (useq, _) = ack(&athlete, op(&room, "op-u", RoomOp::Undo)).await;
    let ev = next_event(&mut coach).await;
    assert_eq!((ev.seq, ev.target), (useq, Some(seq)));
    assert_eq!(ev.effects, vec![Effect::Remove { id: "ang".into() }]);
}

/// Live input goes from the reader straight to its room
/// (`chalktalk_actors::live`, no actor hop): it must still be checked the
/// same way and never overtake the requests sent before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_input_is_checked_and_kept_in_order() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, room) = coach_and_athlete(&s).await;
    let points = |room: &str, stroke: &str, p: Point| {
        ClientMsg::Points(StrokeIn {
            room: room.into(),
            live: LiveStroke {
                stroke: stroke.into(),
                batch: 0,
                t_ms: 0,
                style: Style::default(),
                points: vec![p],
            },
        })
    };
    let refused = |id: u32, code: ErrorCode| {
        move |f: &ServerFrame| match f {
            ServerFrame::Err { id: i, code: c, .. } if *i == id && *c == code => Some(()),
            _ => None,
        }
    };
    let live_points = |f: &ServerFrame| match f {
        ServerFrame::Live {
            ev:
                LiveEvent::Points(StrokeBy {
                    live: LiveStroke { stroke, .. },
                    ..
                }),
            ..
        } => Some(stroke.clone()),
        _ => None,
    };

    // Refused with the frame's id: bad coordinates, a bad stroke id, a
    // room not joined. None of it reaches the coach.
    let frame = |id, m| chalktalk_protocol::ClientFrame { id, m };
    athlete
        .send_frame(&frame(41, points(&room, "s1", Point(1.5, 0.2))))
        .unwrap();
    athlete
        .send_frame(&frame(42, points(&room, "bad stroke", Point(0.5, 0.2))))
        .unwrap();
    athlete
        .send_frame(&frame(43, points("r-elsewhere", "s1", Point(0.5, 0.2))))
        .unwrap();
    let codes = [
        (41, ErrorCode::InvalidCoordinates),
        (42, ErrorCode::Invalid),
        (43, ErrorCode::NotMember),
    ];
    for (id, code) in codes {
        let got = athlete.wait_for(WAIT, refused(id, code)).await;
        assert!(got.is_some(), "frame {id} refused with {code:?}");
    }

    // Valid input arrives; input sent right after a leave does not.
    athlete
        .send(points(&room, "s-ok", Point(0.5, 0.2)))
        .unwrap();
    assert_eq!(
        coach.wait_for(WAIT, live_points).await.as_deref(),
        Some("s-ok")
    );
    athlete
        .send_frame(&frame(50, ClientMsg::LeaveRoom { room: room.clone() }))
        .unwrap();
    athlete
        .send(points(&room, "s-after-leave", Point(0.5, 0.2)))
        .unwrap();
    let late = coach
        .wait_for(Duration::from_millis(800), live_points)
        .await;
    assert_eq!(late, None, "points sent after leaving must not arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_current_state() {
    let s = TestServer::start().await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let room = create_room(&coach, "v").await;
    ack(
        &coach,
        op(
            &room,
            "i",
            RoomOp::Invite {
                user: "late".into(),
            },
        ),
    )
    .await;
    join(&coach, &room, None).await;
    for i in 0..3 {
        ack(
            &coach,
            add(&room, &format!("a{i}"), line(&format!("ann{i}"), i * 1000)),
        )
        .await;
    }
    ack(&coach, op(&room, "d", RoomOp::Delete { id: "ann1".into() })).await;
    ack(&coach, op(&room, "r", RoomOp::Rate { rate: 0.25 })).await;

    let late = s.connect("late", Role::Athlete, "tablet").await;
    let Reply::Joined {
        mode: JoinMode::Snapshot { snapshot },
        presence,
        ..
    } = join(&late, &room, None).await
    else {
        panic!("a join without since gets a snapshot");
    };
    assert_eq!(snapshot.seq, 6);
    let ids: Vec<&str> = snapshot.annotations.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["ann0", "ann2"]);
    assert_eq!(snapshot.playback.rate, 0.25);
    assert_eq!(snapshot.members, ["coach", "late"]);
    assert!(presence.iter().any(|p| p.user == "coach"));
    assert!(
        presence
            .iter()
            .any(|p| p.user == "late" && p.device == "tablet")
    );

    // Not a member: refused.
    let stranger = s.connect("stranger", Role::Athlete, "x").await;
    let e = stranger
        .request(ClientMsg::JoinRoom {
            room: room.clone(),
            since: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::NotMember,
                ..
            }
        ),
        "{e:?}"
    );
    let activity = ClientMsg::Activity {
        room: room.clone(),
        activity: Activity::Idle,
    };
    let e = stranger.request(activity).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::NotMember,
                ..
            }
        ),
        "a refused join is not a join: {e:?}"
    );
    let e = stranger
        .request(add(&room, "sneak", line("z", 0)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::NotMember,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_receives_exactly_what_was_missed() {
    let s = TestServer::start().await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    ack(&coach, add(&room, "o1", line("a1", 0))).await;
    let seen = next_event(&mut athlete).await.seq;
    assert_eq!(seen, 2);

    // The network goes away (no close handshake).
    athlete.kill();
    let missed = add_lines(&coach, &room, "m", 5).await;
    assert_eq!(missed, [3, 4, 5, 6, 7]);

    let mut back = s.connect("athlete", Role::Athlete, "phone").await;
    let Reply::Joined { mode, .. } = join(&back, &room, Some(seen)).await else {
        panic!()
    };
    assert_eq!(mode, JoinMode::Replay { since: 2, head: 7 });
    // A live op racing the catch-up must come after it, once.
    ack(&coach, add(&room, "live", line("c", 0))).await;
    let got: Vec<u64> = drain_events(&mut back, Duration::from_millis(400))
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(got, [3, 4, 5, 6, 7, 8], "no gap, no duplicate");

    // Too far behind (or ahead of the server): a snapshot instead.
    let far = s.connect("athlete", Role::Athlete, "desk").await;
    let Reply::Joined { mode, .. } = join(&far, &room, Some(1000)).await else {
        panic!()
    };
    assert!(matches!(mode, JoinMode::Snapshot { snapshot } if snapshot.seq == 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_op_id_is_applied_once() {
    let s = TestServer::start().await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    let first = ack(&coach, add(&room, "same", line("x", 0))).await;
    let again = ack(&coach, add(&room, "same", line("x", 0))).await;
    assert_eq!(first, (2, false));
    assert_eq!(again, (2, true));
    // Pipelined duplicates (sent before the first is durable) too.
    let c = &coach;
    let (a, b) = tokio::join!(
        ack(c, add(&room, "twin", line("y", 0))),
        ack(c, add(&room, "twin", line("y", 0)))
    );
    assert_eq!(a.0, b.0);
    assert!(a.1 ^ b.1, "exactly one of the two is the original");
    let seqs: Vec<u64> = drain_events(&mut athlete, Duration::from_millis(300))
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [2, 3]);
    // The same op id from another user is a different op.
    let (seq, dup) = ack(&athlete, add(&room, "same", line("z", 0))).await;
    assert_eq!((seq, dup), (4, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_survives_a_quick_reconnect_and_expires_after_grace() {
    // Test config: grace 500 ms.
    let s = TestServer::start().await;
    let (mut coach, athlete, room) = coach_and_athlete(&s).await;
    while coach.next_push(Duration::from_millis(200)).await.is_some() {}
    athlete.kill();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let back = s.connect("athlete", Role::Athlete, "phone").await;
    join(&back, &room, Some(1)).await;
    // Within grace: the athlete never disappears from the coach's view.
    let deadline = Instant::now() + Duration::from_millis(900);
    while let Some(f) = coach
        .next_push(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        if let ServerFrame::Live {
            ev: LiveEvent::Presence { members },
            ..
        } = f
        {
            assert!(
                members.iter().any(|m| m.user == "athlete"),
                "flicker: {members:?}"
            );
        }
    }
    // Without a reconnect the athlete leaves after the grace period.
    back.kill();
    let gone = coach
        .wait_for(Duration::from_secs(3), |f| match f {
            ServerFrame::Live {
                ev: LiveEvent::Presence { members },
                ..
            } => (!members.iter().any(|m| m.user == "athlete")).then_some(()),
            _ => None,
        })
        .await;
    assert!(
        gone.is_some(),
        "presence drops the athlete after the grace period"
    );

    // The same user on two devices shows twice.
    let d1 = s.connect("athlete", Role::Athlete, "ipad").await;
    let d2 = s.connect("athlete", Role::Athlete, "iphone").await;
    join(&d1, &room, None).await;
    let Reply::Joined { presence, .. } = join(&d2, &room, None).await else {
        panic!()
    };
    let devices: Vec<&str> = presence
        .iter()
        .filter(|p| p.user == "athlete")
        .map(|p| p.device.as_str())
        .collect();
    assert_eq!(devices, ["ipad", "iphone"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_room_is_restarted_with_its_state() {
    let s = TestServer::start().await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    for i in 0..3 {
        ack(
            &coach,
            add(&room, &format!("p{i}"), line(&format!("a{i}"), 0)),
        )
        .await;
    }
    let last = drain_events(&mut athlete, Duration::from_millis(300))
        .await
        .last()
        .unwrap()
        .seq;
    assert_eq!(last, 4);
    let admin = s.connect("root", Role::Admin, "ops").await;
    admin
        .request(ClientMsg::DebugPanic { room: room.clone() })
        .await
        .unwrap();
    let resync = athlete
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::Resync { .. }).then_some(())
        })
        .await;
    assert!(
        resync.is_some(),
        "members of the crashed room are told to resync"
    );
    // Until it rejoins, live input to that room is refused, not dropped.
    let pointer = ClientMsg::Pointer {
        room: room.clone(),
        at: Some(Point(0.5, 0.5)),
    };
    let e = athlete.request(pointer).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::NotMember,
                ..
            }
        ),
        "{e:?}"
    );
    // Rejoin from where we were: nothing missed, state intact, ops work.
    let Reply::Joined { mode, .. } = join(&athlete, &room, Some(last)).await else {
        panic!()
    };
    assert_eq!(mode, JoinMode::Replay { since: 4, head: 4 });
    join(&coach, &room, Some(last)).await;
    let (seq, _) = ack(&coach, add(&room, "after", line("b", 0))).await;
    assert_eq!(seq, 5);
    assert_eq!(next_event(&mut athlete).await.seq, 5);
    let late = s.connect("coach", Role::Coach, "other").await;
    let Reply::Joined {
        mode: JoinMode::Snapshot { snapshot },
        ..
    } = join(&late, &room, None).await
    else {
        panic!()
    };
    assert_eq!(snapshot.annotations.len(), 4);
    // Debug hooks are refused to non-admins.
    let e = coach
        .request(ClientMsg::DebugPanic { room: room.clone() })
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        ClientError::Server {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_does_not_delay_others() {
    // The drawer here outpaces the per-session frame limit on purpose.
    let s = TestServer::start_with(|c| {
        c.core.limits.frames_per_sec = 100_000;
        c.core.limits.frame_burst = 100_000;
    })
    .await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let room = create_room(&coach, "v").await;
    for u in ["fast", "slow"] {
        ack(
            &coach,
            op(&room, &format!("i-{u}"), RoomOp::Invite { user: u.into() }),
        )
        .await;
    }
    join(&coach, &room, None).await;
    let mut fast = s.connect("fast", Role::Athlete, "a").await;
    let mut opts = ClientOptions::new(s.token("slow", Role::Athlete), "b");
    opts.recv_buffer = Some(4096);
    let slow = chalktalk_protocol::client::Client::connect(&s.url, opts)
        .await
        .unwrap();
    join(&fast, &room, None).await;
    join(&slow, &room, None).await;
    slow.pause_reading();

    // Big live batches fill the slow socket; durable ops interleave.
    let pts: Vec<Point> = (0..256).map(|i| Point(i as f32 / 256.0, 0.5)).collect();
    let mut worst_ack = Duration::ZERO;
    let mut acked = Vec::new();
    for i in 0..600u32 {
        coach
            .send(ClientMsg::Points(StrokeIn {
                room: room.clone(),
                live: LiveStroke {
                    stroke: "big".into(),
                    batch: i,
                    t_ms: 0,
                    style: Style::default(),
                    points: pts.clone(),
                },
            }))
            .unwrap();
        if i % 20 == 0 {
            let t = Instant::now();
            acked.push(
                ack(
                    &coach,
                    add(&room, &format!("o{i}"), line(&format!("a{i}"), 0)),
                )
                .await
                .0,
            );
            worst_ack = worst_ack.max(t.elapsed());
        }
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(
        worst_ack < Duration::from_secs(2),
        "acks delayed by a stalled member: {worst_ack:?}"
    );
    // The fast member got every durable event, in order.
    let mut seqs = Vec::new();
    while let Some(f) = fast.next_push(Duration::from_millis(500)).await {
        if let ServerFrame::Room { ev, .. } = f {
            seqs.push(ev.seq);
        }
    }
    assert_eq!(seqs, acked);
    // The stalled member was told to resync (or disconnected), never silently skipped.
    slow.resume_reading();
    let mut slow = slow;
    let mut told = false;
    let mut last_seq = 0;
    while let Some(f) = slow.next_push(Duration::from_millis(500)).await {
        match f {
            ServerFrame::Room { ev, .. } => {
                assert!(ev.seq > last_seq, "events in order");
                last_seq = ev.seq;
            }
            ServerFrame::Resync { .. } => told = true,
            _ => {}
        }
    }
    told |= slow.close_info().is_some();
    assert!(
        told || last_seq == *acked.last().unwrap(),
        "the slow member either got everything or was told to resync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_queue_answers_overloaded_and_resends_apply_once() {
    // A tiny queue so that a burst of ops overflows it.
    let s = TestServer::start_with(|c| {
        c.core.queue_limit = 2;
        c.core.limits.frames_per_sec = 100_000;
        c.core.limits.frame_burst = 100_000;
    })
    .await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    let coach = std::sync::Arc::new(coach);
    let burst = (0..128).map(|i| {
        let (c, room) = (coach.clone(), room.clone());
        async move {
            let id = format!("burst-{i}");
            let mut overloaded = 0;
            loop {
                match c.request(add(&room, &id, line(&id, 0))).await {
                    Ok(Reply::Ack { seq, .. }) => return (seq, overloaded),
                    Err(ClientError::Server {
                        code: ErrorCode::Overloaded,
                        ..
                    }) => {
                        overloaded += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    });
    let results = futures_util::future::join_all(burst).await;
    let mut seqs: Vec<u64> = results.iter().map(|(s, _)| *s).collect();
    let overloaded: u32 = results.iter().map(|(_, o)| o).sum();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 128, "every op applied exactly once");
    assert_eq!(seqs, (2..=129).collect::<Vec<_>>(), "gap-free seqs");
    assert!(
        overloaded > 0,
        "the burst should have overflowed a queue of 2"
    );
    let got: Vec<u64> = drain_events(&mut athlete, Duration::from_millis(400))
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(got, (2..=129).collect::<Vec<_>>());
}
