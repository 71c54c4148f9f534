//! Chat threads and inboxes across three `chalktalk serve` processes
//! sharing a real PostgreSQL (started by the test). A thread lives on the
//! node where it was first opened; viewers connected to other nodes reach
//! it through their node's relay: messages, typing and read marks cross
//! nodes, each viewer sees every message once and in seq order, and a
//! late viewer on a third node gets the history. Inbox notices written on
//! one node reach the user's devices on every node live, and when threads
//! owned by two nodes notify one user at the same time, the user's inbox
//! still gets every notice once, under consecutive seqs (a notice that
//! lost its seq to the other node is numbered again, never dropped), and
//! notices forwarded to an inbox owner that dies before storing them are
//! sent again to the next owner.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chalktalk_protocol::client::{Client, ClientOptions};
use chalktalk_protocol::{
    ClientMsg, InboxEvent, Message, Notice, Reply, Role, ServerFrame, ThreadKind, ThreadLive,
};
use common::cluster;
use common::{TestServer, WAIT, postgres};
use serde_json::json;

/// `coach` invites `athlete` (REST on `s`) and the athlete accepts.
async fn relate(s: &TestServer, coach: &str, athlete: &str) {
    let r = s
        .post(
            "/api/v1/relationships",
            Some(&s.token(coach, Role::Coach)),
            json!({ "athlete": athlete }),
        )
        .await;
    assert_eq!(r.status, 201, "invite: {}", r.text());
    let r = s
        .post(
            &format!("/api/v1/relationships/{coach}/{athlete}/accept"),
            Some(&s.token(athlete, Role::Athlete)),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "accept: {}", r.text());
}

async fn create_thread(c: &Client, kind: ThreadKind, members: &[&str]) -> String {
    match c
        .request(ClientMsg::CreateThread {
            kind,
            members: members.iter().map(|m| m.to_string()).collect(),
            title: None,
        })
        .await
        .expect("create_thread")
    {
        Reply::ThreadCreated { thread } => thread.id,
        other => panic!("thread_created expected, got {other:?}"),
    }
}

async fn open(c: &Client, thread: &str, since: Option<u64>) {
    match c
        .request(ClientMsg::OpenThread {
            thread: thread.into(),
            since,
        })
        .await
    {
        Ok(Reply::ThreadOpened { .. }) => {}
        other => panic!("thread_opened expected, got {other:?}"),
    }
}

async fn send(c: &Client, thread: &str, id: &str) -> u64 {
    match c
        .request(ClientMsg::Send {
            thread: thread.into(),
            msg_id: id.into(),
            text: format!("text of {id}"),
            attachments: vec![],
            reply_to: None,
        })
        .await
    {
        Ok(Reply::Ack { seq, dup: false }) => seq,
        other => panic!("send {id}: {other:?}"),
    }
}

/// Messages of `thread` pushed to `c` until `want` arrived (or 10 s).
async fn msgs_until(c: &mut Client, thread: &str, want: u64) -> Vec<Message> {
    let mut got: Vec<Message> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.last().map_or(0, |m| m.seq) < want && Instant::now() < deadline {
        if let Some(ServerFrame::Msg { thread: t, msg }) =
            c.next_push(Duration::from_millis(200)).await
            && t == thread
        {
            got.push(msg);
        }
    }
    got
}

/// Inbox events pushed to `c` until `n` arrived (or 10 s).
async fn inbox(c: &mut Client, n: usize) -> Vec<InboxEvent> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < n && Instant::now() < deadline {
        if let Some(ServerFrame::Inbox(ev)) = c.next_push(Duration::from_millis(200)).await {
            got.push(ev);
        }
    }
    got
}

async fn connect_since(s: &TestServer, user: &str, role: Role, since: u64) -> Client {
    let mut opts = ClientOptions::new(s.token(user, role), "replay");
    opts.inbox_since = Some(since);
    Client::connect(&s.url, opts).await.expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_on_three_nodes_share_one_thread_and_every_inbox() {
    let (_pg, store) = postgres::start().await;
    let nodes = cluster::three(&store).await;
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    relate(n1, "coach", "athlete").await;

    // The athlete is online on n2 before the coach (on n1) creates their
    // thread: the notice written on n1 reaches n2 live.
    let mut athlete = n2.connect("athlete", Role::Athlete, "phone").await;
    let coach = n1.connect("coach", Role::Coach, "laptop").await;
    let mut coach = coach;
    let thread = create_thread(&coach, ThreadKind::Direct, &["athlete"]).await;
    let added = inbox(&mut athlete, 1).await;
    assert_eq!(
        added
            .iter()
            .map(|e| (e.seq, e.notice.clone()))
            .collect::<Vec<_>>(),
        vec![(
            1,
            Notice::AddedToThread {
                thread: thread.clone(),
                by: "coach".into()
            }
        )],
        "the notice written on n1, on the athlete's device on n2"
    );

    // The thread starts on n1 (opened there first); the athlete reaches
    // it through n2's relay. Messages from both sides: each viewer sees
    // every message once, in seq order.
    open(&coach, &thread, None).await;
    open(&athlete, &thread, None).await;
    let mut acked = Vec::new();
    for n in 0..10 {
        let (c, who) = if n % 2 == 0 {
            (&coach, "c")
        } else {
            (&athlete, "a")
        };
        acked.push(send(c, &thread, &format!("{who}-{n}")).await);
    }
    assert_eq!(acked, (1..=10).collect::<Vec<u64>>(), "consecutive seqs");
    for (who, c) in [("coach", &mut coach), ("athlete", &mut athlete)] {
        let seqs: Vec<u64> = msgs_until(c, &thread, 10)
            .await
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, acked, "{who}: no gap, no duplicate");
    }

    // Typing and read marks cross nodes.
    athlete
        .send(ClientMsg::Typing {
            thread: thread.clone(),
            on: true,
        })
        .expect("typing");
    let typing = coach
        .wait_for(WAIT, |f| match f {
            ServerFrame::ThreadLive {
                ev: ThreadLive::Typing { user, on },
                ..
            } => Some((user.clone(), *on)),
            _ => None,
        })
        .await;
    assert_eq!(typing, Some(("athlete".to_string(), true)));
    match athlete
        .request(ClientMsg::Mark {
            thread: thread.clone(),
            delivered: None,
            read: Some(10),
        })
        .await
    {
        Ok(Reply::Done) => {}
        other => panic!("mark through the relay: {other:?}"),
    }
    let read = coach
        .wait_for(WAIT, |f| match f {
            ServerFrame::ThreadLive {
                ev: ThreadLive::Cursor { cursor },
                ..
            } if cursor.user == "athlete" => Some(cursor.read),
            _ => None,
        })
        .await;
    assert_eq!(read, Some(10), "the athlete's read mark, seen on n1");

    // History through the relay, from a late viewer on n3.
    let late = n3.connect("athlete", Role::Athlete, "tablet").await;
    match late
        .request(ClientMsg::History {
            thread: thread.clone(),
            before: None,
            limit: 50,
        })
        .await
    {
        Ok(Reply::History { messages, more }) => {
            assert_eq!(messages.iter().map(|m| m.seq).collect::<Vec<_>>(), acked);
            assert!(!more);
        }
        other => panic!("history from n3: {other:?}"),
    }

    // The athlete closes the thread; the coach's next message is a notice
    // in the athlete's inbox, written on n1, pushed to n2 and n3.
    match athlete
        .request(ClientMsg::CloseThread {
            thread: thread.clone(),
        })
        .await
    {
        Ok(Reply::Done) => {}
        other => panic!("close through the relay: {other:?}"),
    }
    let mut late = late;
    let seq = send(&coach, &thread, "c-after-close").await;
    for (who, c) in [("phone on n2", &mut athlete), ("tablet on n3", &mut late)] {
        let evs = inbox(c, 1).await;
        let got: Vec<_> = evs
            .iter()
            .filter_map(|e| match &e.notice {
                Notice::NewMessage { thread: t, seq, .. } if *t == thread => Some((e.seq, *seq)),
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![(2, seq)], "{who}");
    }

    // Two threads owned by two different nodes notify the athlete at the
    // same time: the athlete's inbox holds every notice once, under
    // consecutive seqs, and each device saw them in that order.
    relate(n3, "coach3", "athlete").await;
    let coach3 = n3.connect("coach3", Role::Coach, "laptop").await;
    let other = create_thread(&coach3, ThreadKind::Direct, &["athlete"]).await;
    open(&coach3, &other, None).await; // lives on n3
    let before = inbox(&mut athlete, 1).await; // added to `other`
    assert_eq!(before.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    let (a, b) = tokio::join!(
        async {
            for i in 0..40 {
                send(&coach, &thread, &format!("race-1-{i}")).await;
            }
        },
        async {
            for i in 0..40 {
                send(&coach3, &other, &format!("race-3-{i}")).await;
            }
        }
    );
    let ((), ()) = (a, b);
    let live = inbox(&mut athlete, 80).await;
    let live_seqs: Vec<u64> = live.iter().map(|e| e.seq).collect();
    assert_eq!(
        live_seqs,
        (4..=83).collect::<Vec<u64>>(),
        "live on n2: every notice once, in seq order"
    );
    let notified: BTreeSet<(String, u64)> = live
        .iter()
        .filter_map(|e| match &e.notice {
            Notice::NewMessage { thread, seq, .. } => Some((thread.clone(), *seq)),
            _ => None,
        })
        .collect();
    assert_eq!(notified.len(), 80, "one notice per message");
    // A device replaying from 0 on any node reads the same log.
    let mut replay = connect_since(n1, "athlete", Role::Athlete, 0).await;
    let all: Vec<u64> = inbox(&mut replay, 83).await.iter().map(|e| e.seq).collect();
    assert_eq!(all, (1..=83).collect::<Vec<u64>>(), "the stored inbox");
}

/// Two inbox actors (two nodes that disagree on who owns a user's inbox)
/// write one user's inbox at once on one real store: every notice is
/// stored once, under consecutive seqs; those that lost their seq to the
/// other writer were numbered again, none dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_of_one_inbox_lose_no_notice() {
    use chalktalk_actors::inbox::{Inbox, InboxArgs, InboxMsg};
    use chalktalk_actors::store::Store;
    use ractor::Actor;

    let dir = tempfile::tempdir().expect("tempdir");
    let store: std::sync::Arc<dyn Store> =
        chalktalk_adapters::EmbeddedStore::open(dir.path()).expect("store");
    let mut inboxes = Vec::new();
    for _ in 0..2 {
        let (a, _) = Actor::spawn(
            None,
            Inbox,
            InboxArgs {
                store: store.clone(),
                relay: None,
            },
        )
        .await
        .expect("inbox");
        inboxes.push(a);
    }
    const EACH: u64 = 150;
    for i in 0..EACH {
        for (w, inbox) in inboxes.iter().enumerate() {
            inbox
                .cast(InboxMsg::Deliver {
                    user: "athlete".into(),
                    notice: Notice::NewMessage {
                        thread: format!("t-{w}"),
                        seq: i + 1,
                        from: "coach".into(),
                        preview: String::new(),
                    },
                })
                .expect("cast");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.inbox_head("athlete").await.expect("head") < 2 * EACH {
        assert!(Instant::now() < deadline, "notices missing after 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let evs = store.inbox_after("athlete", 0, 1000).await.expect("read");
    assert_eq!(
        evs.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=2 * EACH).collect::<Vec<_>>(),
        "consecutive seqs"
    );
    let mut notices: Vec<(String, u64)> = evs
        .iter()
        .filter_map(|e| match &e.notice {
            Notice::NewMessage { thread, seq, .. } => Some((thread.clone(), *seq)),
            _ => None,
        })
        .collect();
    notices.sort();
    notices.dedup();
    assert_eq!(notices.len() as u64, 2 * EACH, "each notice once");
    for a in inboxes {
        a.stop(None);
    }
}

/// Messages acked to the writers: msg id → seq.
type Acked = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>;

/// A writer on `node` sending messages to `thread` one after another,
/// recording each ack; on any failure it reconnects (to the same node)
/// and sends the same msg id again (idempotent), until `stop`.
fn spawn_writer(
    w: usize,
    url: String,
    token: String,
    thread: String,
    acked: Acked,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    tokio::spawn(async move {
        let connect = || async {
            loop {
                match Client::connect(&url, ClientOptions::new(token.clone(), format!("w{w}")))
                    .await
                {
                    Ok(c) => return c,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        };
        let mut c = connect().await;
        let mut n = 0u64;
        let mut pending: Option<String> = None;
        while !stop.load(Ordering::Relaxed) {
            if c.close_info().is_some() {
                c = connect().await;
            }
            let id = pending.take().unwrap_or_else(|| {
                n += 1;
                format!("w{w}-{n}")
            });
            let sent = c
                .request(ClientMsg::Send {
                    thread: thread.clone(),
                    msg_id: id.clone(),
                    text: format!("text of {id}"),
                    attachments: vec![],
                    reply_to: None,
                })
                .await;
            match sent {
                Ok(Reply::Ack { seq, .. }) => {
                    let prev = acked.lock().unwrap().insert(id.clone(), seq);
                    assert!(
                        prev.is_none_or(|p| p == seq),
                        "{id} acked at {prev:?} then {seq}"
                    );
                }
                Ok(other) => panic!("writer {w}: {other:?}"),
                // unavailable while the thread moves, a timeout when its
                // owner died with the request, a closed connection.
                Err(e) => {
                    if matches!(&e, chalktalk_protocol::client::ClientError::Server { code, .. } if *code != chalktalk_protocol::ErrorCode::Unavailable)
                    {
                        panic!("writer {w}: {e}");
                    }
                    pending = Some(id);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

/// kill -9 of a thread's owner while members on the two other nodes post
/// through their relays: another node serves the thread within the lease
/// time, and every acked message is stored under the seq it was acked
/// with, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_of_a_thread_owner_loses_no_acked_message() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let (_pg, store) = postgres::start().await;
    let mut nodes = cluster::three(&store).await;
    relate(&nodes[0], "coach", "athlete").await;
    let coach = nodes[0].connect("coach", Role::Coach, "owner").await;
    let thread = create_thread(&coach, ThreadKind::Direct, &["athlete"]).await;
    open(&coach, &thread, None).await; // the thread lives on n1

    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [
        (0usize, 1usize, "athlete", Role::Athlete),
        (1, 2, "athlete", Role::Athlete),
        (2, 1, "coach", Role::Coach),
        (3, 2, "coach", Role::Coach),
    ]
    .into_iter()
    .map(|(w, n, user, role)| {
        spawn_writer(
            w,
            nodes[n].url.clone(),
            nodes[n].token(user, role),
            thread.clone(),
            acked.clone(),
            stop.clone(),
        )
    })
    .collect();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let before = acked.lock().unwrap().len();
    assert!(before > 20, "too little load through the relays: {before}");
    nodes[0].kill9();
    let resumed = cluster::resumed(|| acked.lock().unwrap().len(), before).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }

    // Every ack is stored under its seq; no seq was acked twice.
    let acked = acked.lock().unwrap().clone();
    let checker = nodes[1].connect("athlete", Role::Athlete, "check").await;
    let mut stored: std::collections::BTreeMap<u64, String> = Default::default();
    let mut before_seq: Option<u64> = None;
    loop {
        match checker
            .request(ClientMsg::History {
                thread: thread.clone(),
                before: before_seq,
                limit: 100,
            })
            .await
        {
            Ok(Reply::History { messages, more }) => {
                for m in &messages {
                    assert!(
                        stored.insert(m.seq, m.id.clone()).is_none(),
                        "seq {} twice",
                        m.seq
                    );
                }
                before_seq = messages.first().map(|m| m.seq);
                if !more || messages.is_empty() {
                    break;
                }
            }
            other => panic!("history: {other:?}"),
        }
    }
    let mut seqs = BTreeSet::new();
    for (id, seq) in &acked {
        assert!(seqs.insert(*seq), "seq {seq} acked twice");
        assert_eq!(stored.get(seq), Some(id), "acked {id} at {seq}");
    }
    let ids: BTreeSet<&String> = stored.values().collect();
    assert_eq!(ids.len(), stored.len(), "a msg id stored twice");
    let token = nodes[1].token("ops-admin", Role::Admin);
    let p = nodes[1]
        .get(
            &format!("/api/v1/ops/threads/{thread}/placement"),
            Some(&token),
        )
        .await
        .json();
    assert_eq!(p["thread"], thread.as_str(), "{p}");
    assert!(p["owner"] == "n2" || p["owner"] == "n3", "a new owner: {p}");
    assert_eq!(p["epoch"], p["fence"], "its epoch fences the thread: {p}");
    assert!(p["epoch"].as_u64() >= Some(2), "{p}");
    eprintln!(
        "thread: writes resumed {resumed:?} after kill -9 of its owner; {} acked, {} stored",
        acked.len(),
        stored.len()
    );
}

/// Notices forwarded to a user's inbox owner that freezes and is killed
/// before storing them are sent again to the next owner: the user gets
/// every one, once (before, they were lost with the owner).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_forwarded_to_an_inbox_owner_that_dies_are_not_lost() {
    use chalktalk_actors::relay::rendezvous;
    let (_pg, store) = postgres::start().await;
    let nodes = cluster::three(&store).await;
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    // An athlete whose inbox n3 writes while all three are up.
    let athlete = (0..)
        .map(|i| format!("athlete-{i}"))
        .find(|u| {
            ["n1", "n2", "n3"]
                .iter()
                .max_by_key(|n| (rendezvous(n, u), n.to_string()))
                == Some(&"n3")
        })
        .expect("some user lands on n3");
    relate(n1, "coach", &athlete).await;
    // The "added to thread" notice is stored (by n3) and pushed to the
    // athlete on n2 before n3 freezes.
    let mut a = n2.connect(&athlete, Role::Athlete, "phone").await;
    let coach = n1.connect("coach", Role::Coach, "laptop").await;
    let thread = create_thread(&coach, ThreadKind::Direct, &[athlete.as_str()]).await;
    assert_eq!(inbox(&mut a, 1).await.len(), 1, "the first notice");
    drop(a);
    open(&coach, &thread, None).await;

    // n3 freezes; at once the coach posts: n1 still sees n3 up and
    // forwards each notice there, where nothing stores it. Then n3 dies.
    cluster::signal(n3, libc::SIGSTOP);
    const K: u64 = 5;
    for i in 0..K {
        send(&coach, &thread, &format!("m-{i}")).await;
    }
    cluster::signal(n3, libc::SIGKILL);

    // Once n1 sees n3 down, it sends the notices again to the owner of
    // the moment; the athlete on n2 gets each message's notice once.
    let mut a = connect_since(n2, &athlete, Role::Athlete, 1).await;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < K as usize && Instant::now() < deadline {
        got.extend(inbox(&mut a, K as usize - got.len()).await);
    }
    let seqs: Vec<u64> = got
        .iter()
        .filter_map(|e| match &e.notice {
            Notice::NewMessage { thread: t, seq, .. } if *t == thread => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        seqs,
        (1..=K).collect::<Vec<u64>>(),
        "every message's notice, once and in order: {got:?}"
    );
    assert_eq!(
        got.iter().map(|e| e.seq).collect::<Vec<u64>>(),
        (2..=K + 1).collect::<Vec<u64>>(),
        "the inbox's seqs continue"
    );
    // Nothing more arrives (no duplicate).
    let quiet = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet {
        if let Some(ServerFrame::Inbox(ev)) = a.next_push(Duration::from_millis(200)).await {
            panic!("a notice more than expected: {ev:?}");
        }
    }
}
