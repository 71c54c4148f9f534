//! A bad network between a client and the node, through the harness's
//! proxy (tests/common/proxy.rs): a link that is cut costs a reconnect and
//! no event, and a link that stalls without failing is noticed by the node
//! (idle limit, presence) and resumed after it comes back.

use std::time::Duration;

use chalktalk_protocol::client::Client;
use chalktalk_protocol::{JoinMode, LiveEvent, Reply, Role, RoomOp, ServerFrame};

use crate::common::proxy::Proxy;
use crate::common::*;

/// A coach connected directly, an athlete through `proxy`; both joined.
async fn athlete_behind(s: &TestServer, proxy: &Proxy) -> (Client, Client, String) {
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let room = create_room(&coach, "video-1").await;
    let invite = RoomOp::Invite {
        user: "athlete".into(),
    };
    ack(&coach, op(&room, "invite-1", invite)).await;
    join(&coach, &room, None).await;
    let athlete = connect(&proxy.url(), s.token("athlete", Role::Athlete), "phone").await;
    join(&athlete, &room, None).await;
    // Past the presence frames of the joins: later checks see new ones.
    let mut coach = coach;
    coach_sees_phone(&mut coach, Some(true)).await;
    (coach, athlete, room)
}

/// Waits until the coach's presence shows the athlete's phone with
/// `connected` as given, or without it (`None`).
async fn coach_sees_phone(coach: &mut Client, want: Option<bool>) {
    let seen = coach
        .wait_for(WAIT, |f| match f {
            ServerFrame::Live {
                ev: LiveEvent::Presence { members },
                ..
            } => {
                let phone = members
                    .iter()
                    .find(|m| m.user == "athlete" && m.device == "phone")
                    .map(|m| m.connected);
                (phone == want).then_some(())
            }
            _ => None,
        })
        .await;
    assert!(
        seen.is_some(),
        "presence never showed the phone as {want:?}"
    );
}

/// Joins `room` again with `since` and collects the replayed seqs.
async fn resume(c: &mut Client, room: &str, since: u64) -> Vec<u64> {
    let Reply::Joined { mode, .. } = join(c, room, Some(since)).await else {
        panic!("join refused")
    };
    assert!(matches!(mode, JoinMode::Replay { .. }), "{mode:?}");
    drain_events(c, Duration::from_millis(400))
        .await
        .iter()
        .map(|e| e.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_costs_a_reconnect_and_no_event() {
    let s = TestServer::start().await;
    let proxy = s.proxy().await;
    let (mut coach, mut athlete, room) = athlete_behind(&s, &proxy).await;
    let (seq, _) = ack(&coach, add(&room, "o1", line("a1", 0))).await;
    assert_eq!(next_event(&mut athlete).await.seq, seq);

    proxy.cut();
    // Both ends see the socket close with no close frame.
    let closed = athlete.closed(WAIT).await;
    assert!(matches!(closed, Some((None, _))), "{closed:?}");
    // The node noticed: after the presence grace the phone is gone (the
    // drop itself was pushed as `connected: false` first, §7.7).
    coach_sees_phone(&mut coach, None).await;
    let missed = add_lines(&coach, &room, "m", 3).await;

    let mut back = connect(&proxy.url(), s.token("athlete", Role::Athlete), "phone").await;
    assert_eq!(
        resume(&mut back, &room, seq).await,
        missed,
        "no gap, no duplicate"
    );
    coach_sees_phone(&mut coach, Some(true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_link_is_dropped_by_the_idle_limit_and_resumed() {
    // Heartbeats of 200 ms: a peer silent for 600 ms is dropped.
    let s = TestServer::start_with(|c| c.heartbeat = Duration::from_millis(200)).await;
    let proxy = s.proxy().await;
    let (mut coach, mut athlete, room) = athlete_behind(&s, &proxy).await;
    let (seq, _) = ack(&coach, add(&room, "o1", line("a1", 0))).await;
    assert_eq!(next_event(&mut athlete).await.seq, seq);

    // Nothing arrives and nothing fails: only the node's idle limit can
    // tell. Freeze for well over three heartbeats.
    proxy.freeze();
    let (missed, _) = ack(&coach, add(&room, "m0", line("b0", 0))).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(athlete.close_info(), None, "the client cannot know yet");
    coach_sees_phone(&mut coach, None).await;

    proxy.thaw();
    let closed = athlete.closed(WAIT).await;
    assert!(closed.is_some(), "the node closed the stalled connection");
    let mut back = connect(&proxy.url(), s.token("athlete", Role::Athlete), "phone").await;
    assert_eq!(resume(&mut back, &room, seq).await, [missed]);
}
