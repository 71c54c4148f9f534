//! Room lifecycle against the real embedded store: a commit that fails
//! (the disk says no) restarts the room from what is stored, the senders get
//! `internal` and nothing acked is lost or renumbered; an empty room stops
//! itself after writing a snapshot and comes back with its state.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chalktalk_actors::store::{
    EncodedEvent, MembershipKind, RoomMeta, Snapshot, Store, StoreError, ThreadMeta,
};
use chalktalk_adapters::EmbeddedStore;
use chalktalk_protocol::client::ClientError;
use chalktalk_protocol::{
    Cursor, ErrorCode, InboxEvent, JoinMode, Message, Reply, Role, RoomEvent, ServerFrame,
};
use common::*;

/// The embedded store, except that room appends fail while `broken` is set
/// (as when the disk is full or gone).
struct Faulty {
    inner: Arc<EmbeddedStore>,
    broken: AtomicBool,
}

#[async_trait]
impl Store for Faulty {
    async fn health(&self) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected: disk unavailable".into()));
        }
        self.inner.health().await
    }
    async fn create_room(&self, meta: &RoomMeta) -> Result<bool, StoreError> {
        self.inner.create_room(meta).await
    }
    async fn room(&self, id: &str) -> Result<Option<RoomMeta>, StoreError> {
        self.inner.room(id).await
    }
    async fn append_room_events(
        &self,
        room: &str,
        epoch: u64,
        events: &[EncodedEvent],
    ) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected: disk unavailable".into()));
        }
        self.inner.append_room_events(room, epoch, events).await
    }
    async fn fence_room(&self, room: &str, epoch: u64) -> Result<(), StoreError> {
        self.inner.fence_room(room, epoch).await
    }
    async fn room_fence(&self, room: &str) -> Result<u64, StoreError> {
        self.inner.room_fence(room).await
    }
    async fn room_events(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        self.inner.room_events(room, after, limit).await
    }
    async fn room_head(&self, room: &str) -> Result<u64, StoreError> {
        self.inner.room_head(room).await
    }
    async fn put_room_snapshot(&self, room: &str, snap: &Snapshot) -> Result<(), StoreError> {
        self.inner.put_room_snapshot(room, snap).await
    }
    async fn room_snapshot(&self, room: &str) -> Result<Option<Snapshot>, StoreError> {
        self.inner.room_snapshot(room).await
    }
    async fn create_thread(&self, meta: &ThreadMeta) -> Result<bool, StoreError> {
        self.inner.create_thread(meta).await
    }
    async fn thread(&self, id: &str) -> Result<Option<ThreadMeta>, StoreError> {
        self.inner.thread(id).await
    }
    async fn set_thread_member(
        &self,
        thread: &str,
        user: &str,
        member: bool,
    ) -> Result<bool, StoreError> {
        self.inner.set_thread_member(thread, user, member).await
    }
    async fn append_messages_at(
        &self,
        thread: &str,
        epoch: u64,
        msgs: &[Message],
    ) -> Result<(), StoreError> {
        self.inner.append_messages_at(thread, epoch, msgs).await
    }
    async fn fence_thread(&self, thread: &str, epoch: u64) -> Result<(), StoreError> {
        self.inner.fence_thread(thread, epoch).await
    }
    async fn thread_fence(&self, thread: &str) -> Result<u64, StoreError> {
        self.inner.thread_fence(thread).await
    }
    async fn messages_after(
        &self,
        thread: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.messages_after(thread, after, limit).await
    }
    async fn messages_before(
        &self,
        thread: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.messages_before(thread, before, limit).await
    }
    async fn thread_head(&self, thread: &str) -> Result<u64, StoreError> {
        self.inner.thread_head(thread).await
    }
    async fn put_cursor(&self, thread: &str, cursor: &Cursor) -> Result<(), StoreError> {
        self.inner.put_cursor(thread, cursor).await
    }
    async fn cursors(&self, thread: &str) -> Result<Vec<Cursor>, StoreError> {
        self.inner.cursors(thread).await
    }
    async fn append_inbox(&self, user: &str, event: &InboxEvent) -> Result<(), StoreError> {
        self.inner.append_inbox(user, event).await
    }
    async fn inbox_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        self.inner.inbox_after(user, after, limit).await
    }
    async fn inbox_head(&self, user: &str) -> Result<u64, StoreError> {
        self.inner.inbox_head(user).await
    }
    async fn add_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError> {
        self.inner.add_membership(user, kind, id).await
    }
    async fn remove_membership(
        &self,
        user: &str,
        kind: MembershipKind,
        id: &str,
    ) -> Result<(), StoreError> {
        self.inner.remove_membership(user, kind, id).await
    }
    async fn memberships(
        &self,
        user: &str,
        kind: MembershipKind,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.memberships(user, kind).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commit_restarts_the_room_without_losing_acked_ops() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Arc::new(Faulty {
        inner: EmbeddedStore::open(dir.path()).unwrap(),
        broken: AtomicBool::new(false),
    });
    let s = TestServer::builder()
        .in_dir(dir.path())
        .store(faulty.clone())
        .start()
        .await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    let (acked, _) = ack(&coach, add(&room, "a", line("kept", 0))).await;
    assert_eq!(next_event(&mut athlete).await.seq, acked);

    let ready = |addr: std::net::SocketAddr| {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out.split_whitespace().nth(1).unwrap_or("").to_string()
    };
    let addr = s.addr();
    assert_eq!(
        tokio::task::spawn_blocking(move || ready(addr))
            .await
            .unwrap(),
        "200"
    );
    faulty.broken.store(true, Ordering::SeqCst);
    assert_eq!(
        tokio::task::spawn_blocking(move || ready(addr))
            .await
            .unwrap(),
        "503",
        "/ready reports a failing store"
    );
    let e = coach
        .request(add(&room, "b", line("lost", 0)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::Unavailable,
                ..
            }
        ),
        "an op that was not stored is not acked, and says the store is unavailable: {e:?}"
    );
    let resync = athlete
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::Resync { .. }).then_some(())
        })
        .await;
    assert!(resync.is_some(), "the room restarted from the store");
    faulty.broken.store(false, Ordering::SeqCst);
    assert_eq!(
        tokio::task::spawn_blocking(move || ready(addr))
            .await
            .unwrap(),
        "200"
    );

    // Rejoin from the last applied seq: nothing to replay, nothing invented.
    let Reply::Joined { mode, .. } = join(&athlete, &room, Some(acked)).await else {
        panic!()
    };
    assert_eq!(
        mode,
        JoinMode::Replay {
            since: acked,
            head: acked
        }
    );
    join(&coach, &room, Some(acked)).await;
    // The refused op can be resent under the same id and gets the next seq.
    let (seq, dup) = ack(&coach, add(&room, "b", line("lost", 0))).await;
    assert_eq!((seq, dup), (acked + 1, false));
    assert_eq!(next_event(&mut athlete).await.seq, acked + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_room_stops_and_comes_back_with_its_state() {
    let s = TestServer::start_with(|c| c.core.idle_stop = Duration::from_millis(300)).await;
    let (coach, athlete, room) = coach_and_athlete(&s).await;
    for i in 0..3 {
        ack(
            &coach,
            add(&room, &format!("o{i}"), line(&format!("a{i}"), 0)),
        )
        .await;
    }
    let dir = &s.app().directory;
    assert_eq!(dir.counts().await.0, 1);
    coach
        .request(chalktalk_protocol::ClientMsg::LeaveRoom { room: room.clone() })
        .await
        .unwrap();
    athlete
        .request(chalktalk_protocol::ClientMsg::LeaveRoom { room: room.clone() })
        .await
        .unwrap();
    let mut stopped = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if dir.counts().await.0 == 0 {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the room actor stops once empty");
    let late = s.connect("coach", Role::Coach, "tablet").await;
    let Reply::Joined {
        mode: JoinMode::Snapshot { snapshot },
        ..
    } = join(&late, &room, None).await
    else {
        panic!()
    };
    assert_eq!(snapshot.seq, 4);
    assert_eq!(snapshot.annotations.len(), 3);
    assert_eq!(dir.counts().await.0, 1);
}

/// The value of the sample `name` (exact, labels included) in a scrape.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_node_does() {
    let s = TestServer::start().await;
    let before = s.get("/metrics", None).await;
    assert_eq!(before.status, 200);
    assert_eq!(
        before.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let before = before.text();
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let room = create_room(&coach, "v1").await;
    for i in 0..5u64 {
        let reply = coach
            .request(add(&room, &format!("op{i}"), line(&format!("a{i}"), i)))
            .await
            .unwrap();
        assert!(matches!(reply, Reply::Ack { .. }), "{reply:?}");
    }
    let after = s.get("/metrics", None).await.text();
    // Counters are per process (other tests of this binary may add more).
    let grew = |name: &str, by: f64| {
        let (a, b) = (sample(&before, name), sample(&after, name));
        assert!(b - a >= by, "{name}: {a} -> {b}, expected +{by}");
    };
    grew("chalktalk_frames_in_total", 6.0);
    grew("chalktalk_frames_out_total", 6.0);
    grew("chalktalk_sessions_opened_total", 1.0);
    grew("chalktalk_store_commit_seconds_count", 5.0);
    grew("chalktalk_fanout_seconds_count", 5.0);
    assert!(sample(&after, "chalktalk_connections") >= 1.0);
    assert!(sample(&after, "chalktalk_rooms") >= 1.0);
    // The coach's device is registered with the inbox.
    assert!(sample(&after, "chalktalk_inboxes") >= 1.0);
    assert_eq!(sample(&after, "chalktalk_store_up"), 1.0);
    assert!(sample(&after, "chalktalk_process_resident_memory_bytes") > 1e6);
    assert!(after.contains("# TYPE chalktalk_store_commit_seconds histogram"));
    assert!(after.contains("chalktalk_store_commit_seconds_bucket{le=\"+Inf\"}"));
    // Alone, the ops view says so.
    let admin = s.token("ops", Role::Admin);
    let ops = s.get("/api/v1/ops/cluster", Some(&admin)).await;
    assert_eq!(ops.status, 200, "{}", ops.text());
    let ops = ops.json();
    assert_eq!(ops["clustered"], false);
    assert!(
        ops["me"]["info"]["connections"].as_u64().unwrap() >= 1,
        "{ops}"
    );
}

/// The browser app (server/src/webapp.rs): `/` and `/app/...` answer the
/// app's index.html, `/web/...` its files with their types; bad paths are
/// 404; the API and health routes are untouched; without a built app `/`
/// says how to build it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_is_served_at_the_root() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><p>the app</p>",
    )
    .unwrap();
    std::fs::write(web.path().join("app.js"), "console.log(1)").unwrap();
    let dir = web.path().to_path_buf();
    let server = TestServer::start_with(move |c| c.web_dir = Some(dir)).await;
    let get = |path: &'static str| common::client::send(server.addr(), "GET", path, &[], vec![]);
    for path in ["/", "/app", "/app/room/r-1"] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.text().contains("the app"), "{path}");
    }
    let js = get("/web/app.js").await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.text(), "console.log(1)");
    for path in [
        "/web/missing.js",
        "/web/../index.html",
        "/web/%2e%2e/x",
        "/web/a%2Fb",
    ] {
        assert_eq!(get(path).await.status, 404, "{path}");
    }
    assert_eq!(get("/health").await.text(), "ok");
    assert_eq!(get("/api/v1/me").await.status, 401);
    assert_eq!(get("/api/v1/nope").await.status, 404);
    drop(server);

    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("dist");
    let server = TestServer::start_with(move |c| c.web_dir = Some(missing)).await;
    let r = common::client::send(server.addr(), "GET", "/", &[], vec![]).await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("scripts/build-web.sh"));
}
