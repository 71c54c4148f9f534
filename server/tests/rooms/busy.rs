//! Rooms as coaches really use them: a late joiner of a room with 10,000
//! long strokes (paged join), the same on a 1 Mbit/s link, a small reply
//! right behind relayed frames (no Nagle delay), and a member that stops
//! reading for longer than the old write stall limit.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chalktalk_protocol::client::{Client, ClientOptions};
use chalktalk_protocol::{
    Annotation, ClientMsg, JoinMode, LiveEvent, LiveStroke, Point, Reply, Role, RoomOp,
    RoomSnapshot, ServerFrame, Shape, StrokeIn, Style, encode,
};
use futures_util::StreamExt;

use crate::common::*;

fn stroke(id: &str, points: usize) -> Annotation {
    Annotation {
        id: id.into(),
        author: String::new(),
        t_ms: 1000,
        dur_ms: Some(2000),
        style: Style::default(),
        shape: Shape::Stroke {
            points: (0..points)
                .map(|i| Point(i as f32 / points as f32, 0.5))
                .collect(),
        },
    }
}

/// Adds `n` strokes of `points` points, 64 ops in flight.
async fn fill(c: &Client, room: &str, n: usize, points: usize) {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let id = format!("s{i}");
            c.request(add(room, &format!("op-{id}"), stroke(&id, points)))
        })
        .buffer_unordered(64)
        .for_each(|r| async move {
            assert!(matches!(r, Ok(Reply::Ack { .. })), "{r:?}");
        })
        .await;
}

/// A server whose frame limits let one connection fill a room quickly.
async fn roomy() -> TestServer {
    TestServer::start_with(|c| {
        c.core.limits.frames_per_sec = 100_000;
        c.core.limits.frame_burst = 100_000;
    })
    .await
}

/// A coach's room with `athlete` invited and filled with strokes.
async fn big_room(s: &TestServer, athlete: &str, n: usize, points: usize) -> (Client, String) {
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let room = create_room(&coach, "video-big").await;
    invite(&coach, &room, athlete).await;
    fill(&coach, &room, n, points).await;
    (coach, room)
}

fn snapshot_of(r: Reply) -> RoomSnapshot {
    match r {
        Reply::Joined {
            mode: JoinMode::Snapshot { snapshot },
            ..
        } => snapshot,
        other => panic!("expected a whole snapshot, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_10k_strokes_of_200_points_joins_in_bounded_pages() {
    let s = roomy().await;
    let (coach, room) = big_room(&s, "athlete", 10_000, 200).await;
    let phone = s.connect("athlete", Role::Athlete, "phone").await;

    for since in [None, Some(1)] {
        let r = join(&phone, &room, since).await;
        let Reply::Joined {
            mode:
                JoinMode::Paged {
                    snapshot,
                    annotations,
                    pages,
                },
            ..
        } = r
        else {
            panic!("expected a paged join, got {r:?}");
        };
        assert_eq!(annotations, 10_000);
        assert!(snapshot.annotations.is_empty());
        assert_eq!(snapshot.seq, 10_001, "invite + 10,000 adds");
        // ~2.2 MB of points per 1,000 strokes: many pages, none large.
        assert!(pages >= 60, "{pages} pages");
        let mut ids = BTreeSet::new();
        for page in 0..pages {
            let r = phone
                .request(ClientMsg::SnapshotPage {
                    room: room.clone(),
                    seq: snapshot.seq,
                    page,
                })
                .await
                .expect("page");
            let bytes = encode(&ServerFrame::Ok {
                id: 1,
                r: r.clone(),
            })
            .len();
            assert!(bytes <= 300 * 1024, "page {page} is {bytes} bytes");
            let Reply::SnapshotPage {
                annotations: got,
                page: p,
                pages: n,
                ..
            } = r
            else {
                panic!("expected snapshot_page, got {r:?}");
            };
            assert_eq!((p, n), (page, pages));
            for a in got {
                assert!(matches!(&a.shape, Shape::Stroke { points } if points.len() == 200));
                assert!(ids.insert(a.id), "an annotation sent twice");
            }
        }
        assert_eq!(ids.len(), 10_000);
        // Done paging: the snapshot is let go of.
        let again = phone
            .request(ClientMsg::SnapshotPage {
                room: room.clone(),
                seq: snapshot.seq,
                page: 0,
            })
            .await;
        assert!(
            matches!(&again, Err(chalktalk_protocol::client::ClientError::Server { code, .. }) if *code == chalktalk_protocol::ErrorCode::NotFound),
            "{again:?}"
        );
    }

    // Edits made while a joiner pages arrive as room events after the
    // snapshot's seq, and applying them gives the coach's state.
    let tablet = s.connect("athlete", Role::Athlete, "tablet").await;
    let mut tablet = tablet;
    let r = join(&tablet, &room, None).await;
    let Reply::Joined {
        mode: JoinMode::Paged {
            snapshot, pages, ..
        },
        ..
    } = r
    else {
        panic!("expected a paged join, got {r:?}");
    };
    ack(
        &coach,
        op(&room, "del-1", RoomOp::Delete { id: "s1".into() }),
    )
    .await;
    ack(&coach, add(&room, "late", stroke("late", 5))).await;
    let mut anns: BTreeSet<String> = BTreeSet::new();
    for page in 0..pages {
        let Reply::SnapshotPage { annotations, .. } = tablet
            .request(ClientMsg::SnapshotPage {
                room: room.clone(),
                seq: snapshot.seq,
                page,
            })
            .await
            .expect("page")
        else {
            panic!("not a page");
        };
        anns.extend(annotations.into_iter().map(|a| a.id));
    }
    assert!(anns.contains("s1") && !anns.contains("late"));
    for ev in drain_events(&mut tablet, Duration::from_millis(500)).await {
        assert!(ev.seq > snapshot.seq);
        for e in ev.effects {
            match e {
                chalktalk_protocol::Effect::Put { ann } => {
                    anns.insert(ann.id);
                }
                chalktalk_protocol::Effect::Remove { id } => {
                    anns.remove(&id);
                }
                _ => {}
            }
        }
    }
    assert_eq!(anns.len(), 10_000);
    assert!(!anns.contains("s1") && anns.contains("late"));
}

/// A phone on a 1 Mbit/s link joins a room whose state (~4.3 MB) used to
/// exceed the socket writer's 4 MiB buffer and drop the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_at_1_mbit_joins_a_room_of_4_mb() {
    let s = roomy().await;
    let (coach, room) = big_room(&s, "athlete", 2_500, 150).await;
    let mut opts = ClientOptions::new(s.token("athlete", Role::Athlete), "phone");
    opts.read_bytes_per_sec = Some(125_000);
    opts.recv_buffer = Some(16 * 1024);
    let phone = Client::connect(&s.url, opts).await.expect("connects");
    let started = Instant::now();
    let mut seen = Vec::new();
    let r = phone
        .join_room(&room, None, |got, of| seen.push((got, of)))
        .await
        .expect("a slow phone joins");
    let snapshot = snapshot_of(r);
    assert_eq!(snapshot.annotations.len(), 2_500);
    let pages = seen.last().expect("progress").1;
    assert!(pages > 1, "paged");
    assert_eq!(seen, (1..=pages).map(|p| (p, pages)).collect::<Vec<_>>());
    // It really was read at about 1 Mbit/s (4.3 MB in 30 s or more).
    assert!(
        started.elapsed() > Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    // And the connection is alive: an op round trip works.
    let (seq, _) = ack(&phone, add(&room, "hello", line("hello", 0))).await;
    assert_eq!(seq, snapshot.seq + 1);
    drop(coach);
}

/// A pong right after a relayed frame is not held by Nagle's algorithm
/// waiting for the client's delayed ACK (~40 ms on Linux): the server sets
/// TCP_NODELAY on every accepted socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pong_right_after_a_relayed_frame_is_not_delayed() {
    let s = roomy().await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    // A busy room: a relayed frame about every millisecond, so one is
    // usually unacknowledged when a pong is written.
    let drawing = {
        let room = room.clone();
        tokio::spawn(async move {
            for batch in 0..20_000u32 {
                let m = ClientMsg::Points(StrokeIn {
                    room: room.clone(),
                    live: LiveStroke {
                        stroke: "s".into(),
                        batch,
                        t_ms: 0,
                        style: Style::default(),
                        points: vec![Point(0.5, 0.5); 8],
                    },
                });
                if coach.send(m).is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            coach
        })
    };
    let mut rtts = Vec::new();
    for _ in 0..40 {
        let got = athlete
            .wait_for(WAIT, |f| {
                matches!(
                    f,
                    ServerFrame::Live {
                        ev: LiveEvent::Points { .. },
                        ..
                    }
                )
                .then_some(())
            })
            .await;
        assert!(got.is_some(), "relayed points");
        tokio::time::sleep(Duration::from_millis(2)).await;
        let t = Instant::now();
        assert!(matches!(
            athlete.request(ClientMsg::Ping).await,
            Ok(Reply::Pong { .. })
        ));
        rtts.push(t.elapsed());
    }
    drawing.abort();
    rtts.sort();
    let p90 = rtts[rtts.len() * 9 / 10];
    // Without TCP_NODELAY about half wait 35-45 ms; with it, about 1 ms.
    assert!(
        p90 < Duration::from_millis(25),
        "pong p90 {p90:?} behind relayed frames: {rtts:?}"
    );
}

/// A member that stops reading (a phone that pauses the app) for longer
/// than the old 10 s write stall is not dropped: it finds `resync` when it
/// reads again, and rejoining with `since` gives what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_reading_is_resynced_not_dropped() {
    let s = roomy().await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    let mut opts = ClientOptions::new(s.token("athlete", Role::Athlete), "paused");
    opts.recv_buffer = Some(16 * 1024);
    let mut paused = Client::connect(&s.url, opts).await.expect("connects");
    let snapshot = snapshot_of(join(&paused, &room, None).await);
    paused.pause_reading();
    // 1,500 durable events of ~11 KB: far more than the socket buffers
    // (a few MB) and the 1,024-frame queue hold.
    fill(&coach, &room, 1_500, 1_000).await;
    let head = snapshot.seq + 1_500;
    // Others are unaffected.
    let got = drain_events(&mut athlete, Duration::from_millis(500)).await;
    assert_eq!(got.last().map(|e| e.seq), Some(head));
    // Longer than the old write stall limit (10 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    paused.resume_reading();
    let mut last = snapshot.seq;
    let mut resync = None;
    while let Some(f) = paused.next_push(Duration::from_secs(2)).await {
        match f {
            ServerFrame::Room { ev, .. } => {
                assert_eq!(ev.seq, last + 1, "in order, no gap");
                last = ev.seq;
            }
            ServerFrame::Resync { reason, .. } => resync = Some(reason),
            _ => {}
        }
    }
    assert_eq!(paused.close_info(), None, "still connected");
    assert_eq!(
        resync.as_deref(),
        Some("too slow to receive room events"),
        "told to resync after seq {last}"
    );
    assert!(last < head);
    // Rejoin from the last applied seq: replay or snapshot, nothing lost.
    match join(&paused, &room, Some(last)).await {
        Reply::Joined {
            mode: JoinMode::Replay { since, head: h },
            ..
        } => {
            assert_eq!((since, h), (last, head));
            let evs = drain_events(&mut paused, Duration::from_millis(500)).await;
            assert_eq!(
                evs.iter().map(|e| e.seq).collect::<Vec<_>>(),
                (last + 1..=head).collect::<Vec<_>>()
            );
        }
        Reply::Joined {
            mode: JoinMode::Paged { snapshot, .. } | JoinMode::Snapshot { snapshot },
            ..
        } => assert_eq!(snapshot.seq, head),
        other => panic!("{other:?}"),
    }
}
