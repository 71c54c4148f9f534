//! End-to-end tests of chat threads over a real server and real WebSocket
//! clients: direct and group thread creation rules, messaging while viewing
//! (attachments, replies, limits, membership), idempotent sends, the typing
//! indicator, read/delivered cursors, backwards history paging, inbox
//! notices for threads not being viewed (multi-device, replay with
//! `inbox_since`), resuming an open thread with `since` after a dropped
//! connection, and what survives a server restart (inbox, resume and group
//! cases in tests/chat/).

mod common;
/// The suite's other files, in tests/chat/.
mod chat {
    pub mod edits;
    pub mod groups;
    pub mod inbox;
    pub mod mine;
    pub mod resume;
    pub mod typing;
}

use std::time::Duration;

use chalktalk_protocol::client::{Client, ClientOptions};
use chalktalk_protocol::{
    Attachment, ClientMsg, Cursor, ErrorCode, InboxEvent, Message, Notice, Reply, Role,
    ServerFrame, ThreadInfo, ThreadKind, ThreadLive,
};
use common::{TestServer, WAIT, ack, chat_send as send, err_code, now_ms, relate};

/// How long to listen when asserting that something does NOT arrive.
const QUIET: Duration = Duration::from_millis(300);

/// A request/reply round trip: everything the server did for earlier frames
/// of this session has at least been queued to the actors it talks to.
async fn sync(c: &Client) {
    match c.request(ClientMsg::Ping).await.expect("ping") {
        Reply::Pong { .. } => {}
        other => panic!("expected pong, got {other:?}"),
    }
}

async fn connect_since(s: &TestServer, user: &str, role: Role, device: &str, since: u64) -> Client {
    let mut opts = ClientOptions::new(s.token(user, role), device);
    opts.inbox_since = Some(since);
    Client::connect(&s.url, opts)
        .await
        .expect("client connects")
}

async fn create_thread(
    c: &Client,
    kind: ThreadKind,
    members: &[&str],
    title: Option<&str>,
) -> ThreadInfo {
    match c
        .request(ClientMsg::CreateThread {
            kind,
            members: members.iter().map(|m| m.to_string()).collect(),
            title: title.map(str::to_string),
        })
        .await
        .expect("create_thread")
    {
        Reply::ThreadCreated { thread } => thread,
        other => panic!("expected thread_created, got {other:?}"),
    }
}

fn create_msg(kind: ThreadKind, members: &[&str]) -> ClientMsg {
    ClientMsg::CreateThread {
        kind,
        members: members.iter().map(|m| m.to_string()).collect(),
        title: None,
    }
}

/// `OpenThread`; returns (thread, since, cursors).
async fn open(c: &Client, thread: &str, since: Option<u64>) -> (ThreadInfo, u64, Vec<Cursor>) {
    match c
        .request(ClientMsg::OpenThread {
            thread: thread.into(),
            since,
        })
        .await
        .expect("open_thread")
    {
        Reply::ThreadOpened {
            thread,
            since,
            cursors,
        } => (thread, since, cursors),
        other => panic!("expected thread_opened, got {other:?}"),
    }
}

fn history(thread: &str, before: Option<u64>, limit: u32) -> ClientMsg {
    ClientMsg::History {
        thread: thread.into(),
        before,
        limit,
    }
}

fn mark(thread: &str, delivered: Option<u64>, read: Option<u64>) -> ClientMsg {
    ClientMsg::Mark {
        thread: thread.into(),
        delivered,
        read,
    }
}

/// The next `msg` push of `thread`, skipping other pushes.
async fn next_msg(c: &mut Client, thread: &str) -> Message {
    c.wait_for(WAIT, |f| match f {
        ServerFrame::Msg { thread: t, msg } if t == thread => Some(msg.clone()),
        _ => None,
    })
    .await
    .expect("a thread message")
}

/// The next `n` messages of `thread`, in arrival order.
async fn next_msgs(c: &mut Client, thread: &str, n: usize) -> Vec<Message> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_msg(c, thread).await);
    }
    out
}

fn pick_inbox(f: &ServerFrame) -> Option<InboxEvent> {
    match f {
        ServerFrame::Inbox(ev) => Some(ev.clone()),
        _ => None,
    }
}

async fn next_inbox(c: &mut Client) -> InboxEvent {
    c.wait_for(WAIT, pick_inbox).await.expect("an inbox event")
}

fn pick_live(thread: &str) -> impl FnMut(&ServerFrame) -> Option<ThreadLive> + '_ {
    move |f| match f {
        ServerFrame::ThreadLive { thread: t, ev } if t == thread => Some(ev.clone()),
        _ => None,
    }
}

async fn next_live(c: &mut Client, thread: &str) -> ThreadLive {
    c.wait_for(WAIT, pick_live(thread))
        .await
        .expect("a thread_live event")
}

fn seqs(msgs: &[Message]) -> Vec<u64> {
    msgs.iter().map(|m| m.seq).collect()
}

fn cursor(user: &str, delivered: u64, read: u64) -> Cursor {
    Cursor {
        user: user.into(),
        delivered,
        read,
    }
}

/// Coach and athlete (an ACTIVE relationship) connected, with their
/// direct thread created.
async fn direct(s: &TestServer) -> (Client, Client, String) {
    relate(s, "coach", "athlete").await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let athlete = s.connect("athlete", Role::Athlete, "phone").await;
    let t = create_thread(&coach, ThreadKind::Direct, &["athlete"], None).await;
    (coach, athlete, t.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_thread_is_unique_per_pair_and_notifies_the_other_member() {
    let s = TestServer::start().await;
    // The athlete creates the same thread below: they work together.
    relate(&s, "coach", "athlete").await;
    // The athlete's other device is online before the thread exists.
    let mut tablet = s.connect("athlete", Role::Athlete, "tablet").await;
    sync(&tablet).await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let athlete = s.connect("athlete", Role::Athlete, "phone").await;

    let t = create_thread(&coach, ThreadKind::Direct, &["athlete"], None).await;
    assert_eq!(t.kind, ThreadKind::Direct);
    assert_eq!(t.members, vec!["athlete".to_string(), "coach".to_string()]);
    assert_eq!(t.created_by, "coach");
    assert_eq!(t.head, 0);
    assert_eq!(t.title, None);

    let ev = next_inbox(&mut tablet).await;
    assert_eq!(ev.seq, 1, "first notice of the athlete's inbox");
    assert_eq!(
        ev.notice,
        Notice::AddedToThread {
            thread: t.id.clone(),
            by: "coach".into()
        }
    );
    assert!(ev.at_ms.abs_diff(now_ms()) < 5_000);

    // Creating it again, from either side, is the same thread.
    let again = create_thread(&coach, ThreadKind::Direct, &["athlete"], None).await;
    assert_eq!(again, t);
    let from_athlete = create_thread(&athlete, ThreadKind::Direct, &["coach"], None).await;
    assert_eq!(
        from_athlete, t,
        "same id, members and creator from the other side"
    );
    // Listing the creator too changes nothing.
    let with_self = create_thread(&athlete, ThreadKind::Direct, &["coach", "athlete"], None).await;
    assert_eq!(with_self.id, t.id);

    // Another pair gets another thread.
    let other = create_thread(&coach, ThreadKind::Direct, &["athlete2"], None).await;
    assert_ne!(other.id, t.id);

    // Re-creating sent no further notice: the athlete's whole inbox is the
    // one AddedToThread, and the coach's inbox is empty.
    let mut fresh = connect_since(&s, "athlete", Role::Athlete, "laptop", 0).await;
    assert_eq!(next_inbox(&mut fresh).await, ev);
    assert_eq!(fresh.wait_for(QUIET, pick_inbox).await, None);
    assert_eq!(tablet.wait_for(QUIET, pick_inbox).await, None);
    let mut coach2 = connect_since(&s, "coach", Role::Coach, "phone", 0).await;
    assert_eq!(coach2.wait_for(QUIET, pick_inbox).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_viewers_and_are_validated() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, t) = direct(&s).await;
    let limits = coach.welcome.limits.clone();

    let (info, since, cursors) = open(&coach, &t, None).await;
    assert_eq!((info.head, since), (0, 0));
    assert!(cursors.is_empty());
    open(&athlete, &t, None).await;

    let (s1, dup) = ack(&coach, send(&t, "m1", "first")).await;
    assert_eq!((s1, dup), (1, false));
    let m1 = next_msg(&mut athlete, &t).await;
    assert_eq!(m1.seq, 1);
    assert_eq!(m1.id, "m1");
    assert_eq!(m1.from, "coach");
    assert_eq!(m1.text, "first");
    assert!(m1.attachments.is_empty());
    assert_eq!(m1.reply_to, None);
    assert!(m1.at_ms.abs_diff(now_ms()) < 5_000);

    let attachments = vec![
        Attachment {
            kind: "video".into(),
            ref_id: "vid-42".into(),
            name: Some("serve.mp4".into()),
        },
        Attachment {
            kind: "review".into(),
            ref_id: "r-1".into(),
            name: None,
        },
    ];
    let (s2, _) = ack(
        &coach,
        ClientMsg::Send {
            thread: t.clone(),
            msg_id: "m2".into(),
            text: "look at frame 120 ✔".into(),
            attachments: attachments.clone(),
            reply_to: Some(1),
        },
    )
    .await;
    assert_eq!(s2, 2);
    let m2 = next_msg(&mut athlete, &t).await;
    assert_eq!(m2.seq, s2, "the pushed seq is the acked seq");
    assert_eq!(m2.from, "coach");
    assert_eq!(m2.text, "look at frame 120 ✔");
    assert_eq!(m2.attachments, attachments);
    assert_eq!(m2.reply_to, Some(1));
    // The sender, viewing too, receives the very same messages.
    assert_eq!(
        next_msgs(&mut coach, &t, 2).await,
        vec![m1.clone(), m2.clone()]
    );

    // Refusals.
    let bad = |msg_id: &str, text: String, attachments: Vec<Attachment>, reply_to: Option<u64>| {
        ClientMsg::Send {
            thread: t.clone(),
            msg_id: msg_id.into(),
            text,
            attachments,
            reply_to,
        }
    };
    let max = limits.max_text_bytes as usize;
    let file = |i: usize| Attachment {
        kind: "file".into(),
        ref_id: format!("f-{i}"),
        name: None,
    };
    let cases: Vec<(ClientMsg, ErrorCode)> = vec![
        (
            bad("x1", "hi".into(), vec![], Some(99)),
            ErrorCode::NotFound,
        ),
        (bad("x2", "hi".into(), vec![], Some(0)), ErrorCode::NotFound),
        (
            bad("x3", "x".repeat(max + 1), vec![], None),
            ErrorCode::TextTooLong,
        ),
        // The limit is in bytes of UTF-8, not characters.
        (
            bad("x4", "é".repeat(max / 2 + 1), vec![], None),
            ErrorCode::TextTooLong,
        ),
        (bad("x5", String::new(), vec![], None), ErrorCode::Invalid),
        (bad("x6", "  \n ".into(), vec![], None), ErrorCode::Invalid),
        (
            bad(
                "x7",
                "many".into(),
                (0..=limits.max_attachments as usize).map(file).collect(),
                None,
            ),
            ErrorCode::Invalid,
        ),
        (
            bad(
                "x8",
                "exe".into(),
                vec![Attachment {
                    kind: "exe".into(),
                    ref_id: "a".into(),
                    name: None,
                }],
                None,
            ),
            ErrorCode::Invalid,
        ),
        (bad("bad id", "hi".into(), vec![], None), ErrorCode::Invalid),
    ];
    for (m, code) in cases {
        let what = format!("{m:?}");
        assert_eq!(
            err_code(coach.request(m).await),
            code,
            "{}",
            &what[..what.len().min(120)]
        );
    }
    // Boundaries that are fine: exactly max bytes, attachments without text.
    let (s3, _) = ack(&coach, bad("m3", "x".repeat(max), vec![], None)).await;
    let (s4, _) = ack(&coach, bad("m4", String::new(), vec![file(0)], None)).await;
    assert_eq!((s3, s4), (3, 4), "refused sends consume no seq");
    let rest = next_msgs(&mut athlete, &t, 2).await;
    assert_eq!(seqs(&rest), vec![3, 4]);
    assert_eq!(rest[0].text.len(), max);
    assert_eq!(rest[1].attachments, vec![file(0)]);

    // A non-member can neither open, send, mark nor read.
    let outsider = s.connect("outsider", Role::Athlete, "phone").await;
    assert_eq!(
        err_code(
            outsider
                .request(ClientMsg::OpenThread {
                    thread: t.clone(),
                    since: None
                })
                .await
        ),
        ErrorCode::NotMember
    );
    assert_eq!(
        err_code(outsider.request(send(&t, "o1", "let me in")).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        err_code(outsider.request(history(&t, None, 10)).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        err_code(outsider.request(mark(&t, None, Some(1))).await),
        ErrorCode::NotMember
    );
    // An unknown thread is not found.
    assert_eq!(
        err_code(coach.request(send("t-nope", "n1", "hello?")).await),
        ErrorCode::NotFound
    );

    // Nothing else reached the viewer: the next message is seq 5.
    let (s5, _) = ack(&athlete, send(&t, "a1", "ok coach")).await;
    assert_eq!(s5, 5);
    let m5 = next_msg(&mut athlete, &t).await;
    assert_eq!((m5.seq, m5.from.as_str()), (5, "athlete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_a_msg_id_is_idempotent() {
    let s = TestServer::start().await;
    let (coach, mut athlete, t) = direct(&s).await;
    open(&athlete, &t, None).await;

    // Two sends of the same id in flight at once, then one more later.
    let (a, b) = tokio::join!(
        coach.request(send(&t, "same", "hello")),
        coach.request(send(&t, "same", "hello"))
    );
    let (a, b) = match (a.expect("first"), b.expect("second")) {
        (Reply::Ack { seq: sa, dup: da }, Reply::Ack { seq: sb, dup: db }) => ((sa, da), (sb, db)),
        other => panic!("expected two acks, got {other:?}"),
    };
    assert_eq!((a.0, b.0), (1, 1), "both acks carry the original seq");
    assert_eq!((a.1, b.1), (false, true), "only the resend is a dup");
    assert_eq!(
        ack(&coach, send(&t, "same", "hello (edited)")).await,
        (1, true)
    );

    // Message ids are per sender: the athlete's "same" is a new message.
    assert_eq!(ack(&athlete, send(&t, "same", "hi")).await, (2, false));
    assert_eq!(ack(&coach, send(&t, "after", "after")).await, (3, false));

    let got = next_msgs(&mut athlete, &t, 3).await;
    assert_eq!(
        seqs(&got),
        vec![1, 2, 3],
        "exactly one copy of the resent message"
    );
    assert_eq!(got[0].text, "hello");
    assert_eq!(
        athlete
            .wait_for(QUIET, |f| matches!(f, ServerFrame::Msg { .. })
                .then_some(()))
            .await,
        None
    );

    let h = match coach.request(history(&t, None, 10)).await.unwrap() {
        Reply::History { messages, more } => {
            assert!(!more);
            messages
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(h, got, "history stores each message once, as pushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_other_viewers_only() {
    let s = TestServer::start().await;
    let (mut coach, mut athlete, t) = direct(&s).await;
    open(&coach, &t, None).await;
    open(&athlete, &t, None).await;

    athlete
        .send(ClientMsg::Typing {
            thread: t.clone(),
            on: true,
        })
        .unwrap();
    assert_eq!(
        next_live(&mut coach, &t).await,
        ThreadLive::Typing {
            user: "athlete".into(),
            on: true
        }
    );
    // The coach answers; the first live event the athlete sees is the
    // coach's, so its own indicator was not echoed back to it.
    coach
        .send(ClientMsg::Typing {
            thread: t.clone(),
            on: true,
        })
        .unwrap();
    assert_eq!(
        next_live(&mut athlete, &t).await,
        ThreadLive::Typing {
            user: "coach".into(),
            on: true
        }
    );

    // A non-member's typing is not relayed (it is ordered before the
    // athlete's next indicator by the ping round trip).
    let outsider = s.connect("outsider", Role::Athlete, "phone").await;
    outsider
        .send(ClientMsg::Typing {
            thread: t.clone(),
            on: true,
        })
        .unwrap();
    sync(&outsider).await;
    athlete
        .send(ClientMsg::Typing {
            thread: t.clone(),
            on: false,
        })
        .unwrap();
    assert_eq!(
        next_live(&mut coach, &t).await,
        ThreadLive::Typing {
            user: "athlete".into(),
            on: false
        }
    );
    assert_eq!(athlete.wait_for(QUIET, pick_live(&t)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_move_forward_only_and_are_shown_to_viewers() {
    let s = TestServer::start().await;
    let (mut coach, athlete, t) = direct(&s).await;
    open(&coach, &t, None).await;
    for i in 1..=3 {
        ack(&coach, send(&t, &format!("m{i}"), "msg")).await;
    }

    let cursor_of = |user: &'static str| {
        move |f: &ServerFrame| match f {
            ServerFrame::ThreadLive {
                ev: ThreadLive::Cursor { cursor },
                ..
            } if cursor.user == user => Some(cursor.clone()),
            _ => None,
        }
    };

    assert_eq!(
        athlete.request(mark(&t, None, Some(2))).await.unwrap(),
        Reply::Done
    );
    assert_eq!(
        coach.wait_for(WAIT, cursor_of("athlete")).await,
        Some(cursor("athlete", 2, 2))
    );

    // Delivered alone; delivered never trails read.
    assert_eq!(
        athlete.request(mark(&t, Some(3), None)).await.unwrap(),
        Reply::Done
    );
    assert_eq!(
        coach.wait_for(WAIT, cursor_of("athlete")).await,
        Some(cursor("athlete", 3, 2))
    );
    assert_eq!(
        athlete.request(mark(&t, None, Some(3))).await.unwrap(),
        Reply::Done
    );
    assert_eq!(
        coach.wait_for(WAIT, cursor_of("athlete")).await,
        Some(cursor("athlete", 3, 3))
    );

    // Beyond the newest message: refused, nothing moves.
    assert_eq!(
        err_code(athlete.request(mark(&t, None, Some(4))).await),
        ErrorCode::Invalid
    );
    assert_eq!(
        err_code(athlete.request(mark(&t, Some(4), None)).await),
        ErrorCode::Invalid
    );
    // Backwards: accepted but ignored.
    assert_eq!(
        athlete.request(mark(&t, Some(1), Some(1))).await.unwrap(),
        Reply::Done
    );
    assert_eq!(
        coach.wait_for(WAIT, cursor_of("athlete")).await,
        Some(cursor("athlete", 3, 3))
    );

    // A fresh open shows both cursors (the sender has read what it wrote),
    // sorted by user.
    let athlete2 = s.connect("athlete", Role::Athlete, "tablet").await;
    let (info, _, cursors) = open(&athlete2, &t, None).await;
    assert_eq!(info.head, 3);
    assert_eq!(
        cursors,
        vec![cursor("athlete", 3, 3), cursor("coach", 3, 3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_backwards() {
    let s = TestServer::start().await;
    let (coach, athlete, t) = direct(&s).await;
    let max = coach.welcome.limits.max_history_page;
    for i in 1..=25u64 {
        assert_eq!(
            ack(&coach, send(&t, &format!("m{i}"), &format!("text {i}")))
                .await
                .0,
            i
        );
    }
    let page = |r: Reply| match r {
        Reply::History { messages, more } => (messages, more),
        other => panic!("expected history, got {other:?}"),
    };

    let (p1, more) = page(athlete.request(history(&t, None, 10)).await.unwrap());
    assert_eq!(seqs(&p1), (16..=25).collect::<Vec<_>>());
    assert!(more);
    assert_eq!(p1[0].text, "text 16");
    assert_eq!(p1[0].id, "m16");
    let (p2, more) = page(athlete.request(history(&t, Some(16), 10)).await.unwrap());
    assert_eq!(seqs(&p2), (6..=15).collect::<Vec<_>>());
    assert!(more);
    let (p3, more) = page(athlete.request(history(&t, Some(6), 10)).await.unwrap());
    assert_eq!(seqs(&p3), (1..=5).collect::<Vec<_>>());
    assert!(!more);
    assert!(
        p3.iter()
            .all(|m| m.from == "coach" && m.text == format!("text {}", m.seq))
    );

    // A whole page; `before` past the head is the head.
    let (all, more) = page(
        athlete
            .request(history(&t, Some(1_000), max))
            .await
            .unwrap(),
    );
    assert_eq!(seqs(&all), (1..=25).collect::<Vec<_>>());
    assert!(!more);
    // Nothing before the first message.
    let (none, more) = page(athlete.request(history(&t, Some(1), 10)).await.unwrap());
    assert!(none.is_empty());
    assert!(!more);

    assert_eq!(
        err_code(athlete.request(history(&t, None, 0)).await),
        ErrorCode::Invalid
    );
    assert_eq!(
        err_code(athlete.request(history(&t, None, max + 1)).await),
        ErrorCode::Invalid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_before_zero_is_an_empty_page() {
    let s = TestServer::start().await;
    let (coach, _athlete, t) = direct(&s).await;
    ack(&coach, send(&t, "m1", "one")).await;
    // `before: 0` asks for messages with seq < 0: there are none. It must
    // not be an error.
    assert_eq!(
        coach.request(history(&t, Some(0), 10)).await,
        Ok(Reply::History {
            messages: vec![],
            more: false
        })
    );
}
