//! The PostgreSQL adapter against a real server started by the test
//! (`test_server.rs`): every conformance suite, two handles racing as two
//! nodes would, migrations, bad URLs, and the server going away and back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chalktalk_actors::store::{Store, StoreError};

use super::test_server::TestServer;
use super::{PgOptions, PgSetupError, PgStore, migrate};
use crate::conformance;
use crate::conformance::store::{enc, room_event, unique};

async fn open(url: &str) -> Arc<PgStore> {
    PgStore::connect(&PgOptions::new(url))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_every_suite() {
    let server = TestServer::start();
    let url = server.fresh_db().await;
    let a = open(&url).await;
    let b = open(&url).await;
    conformance::store::run_all(a.clone()).await;
    conformance::media::run_all(a.clone()).await;
    conformance::kv::run_all(a.clone()).await;
    conformance::programs::run_all(a.clone()).await;
    conformance::billing::run_all(a.clone()).await;
    conformance::races::run_store(a.clone(), b.clone()).await;
    conformance::races::run_kv(a.clone(), b.clone()).await;
    a.health().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_recorded_idempotent_and_guarded() {
    let server = TestServer::start();
    let url = server.fresh_db().await;

    let mut behind = PgOptions::new(&url);
    behind.migrate = false;
    match PgStore::connect(&behind).await {
        Err(PgSetupError::SchemaBehind { found: 0, known }) => {
            assert_eq!(known, migrate::latest())
        }
        other => panic!("expected SchemaBehind, got {:?}", other.err()),
    }

    drop(open(&url).await);
    // Again, and with migrations off: nothing to do, nothing refused.
    drop(open(&url).await);
    drop(PgStore::connect(&behind).await.unwrap());

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM chalktalk_schema_version ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known: Vec<i32> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, known);

    client
        .execute(
            "INSERT INTO chalktalk_schema_version (version, name) VALUES ($1, 'from the future')",
            &[&(migrate::latest() + 1)],
        )
        .await
        .unwrap();
    for opts in [PgOptions::new(&url), behind] {
        match PgStore::connect(&opts).await {
            Err(PgSetupError::SchemaTooNew { found, .. }) => {
                assert_eq!(found, migrate::latest() + 1)
            }
            other => panic!("expected SchemaTooNew, got {:?}", other.err()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_url_and_unreachable_server_are_setup_errors() {
    for url in ["not a url", "postgres://", "postgres://u@h:notaport/db"] {
        match PgStore::connect(&PgOptions::new(url)).await {
            Err(PgSetupError::BadUrl(_)) => {}
            other => panic!("{url}: expected BadUrl, got {:?}", other.err()),
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut opts = PgOptions::new(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    opts.timeout = Duration::from_secs(2);
    let started = Instant::now();
    match PgStore::connect(&opts).await {
        Err(PgSetupError::Unreachable(_)) => {}
        other => panic!("expected Unreachable, got {:?}", other.err()),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// The server stops under the store: writes and reads answer `Unavailable`
/// within the timeout (never a hang, never an ack), health goes red; once
/// the server is back the same store serves again and nothing acked is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_then_back() {
    let mut server = TestServer::start();
    if std::env::var_os("CHALKTALK_TEST_POSTGRES").is_some() {
        return; // cannot stop an outside server
    }
    let url = server.fresh_db().await;
    let mut opts = PgOptions::new(&url);
    opts.timeout = Duration::from_secs(2);
    let store = PgStore::connect(&opts).await.unwrap();
    let room = unique("room");
    store
        .append_room_events(&room, 0, &enc([room_event(1, "before")]))
        .await
        .unwrap();

    server.stop();
    let started = Instant::now();
    let err = store
        .append_room_events(&room, 0, &enc([room_event(2, "down")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store.room_head(&room).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(Store::health(&*store).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(15), "no hang");

    server.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store
            .append_room_events(&room, 0, &enc([room_event(2, "after")]))
            .await
        {
            Ok(()) => break,
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("after restart: {e:?}"),
        }
    }
    Store::health(&*store).await.unwrap();
    assert_eq!(
        store.room_events(&room, 0, 10).await.unwrap(),
        vec![room_event(1, "before"), room_event(2, "after")]
    );
}

/// Bytes that are not MessagePack are `Corrupt`, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_body_is_reported() {
    let server = TestServer::start();
    let url = server.fresh_db().await;
    let store = open(&url).await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute(
            "INSERT INTO room_events (room_id, seq, body) VALUES ('bad', 1, '\\xc1')",
            &[],
        )
        .await
        .unwrap();
    let err = store.room_events("bad", 0, 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert_eq!(store.room_head("bad").await.unwrap(), 1);
}

/// Concurrent appends share commits (group commit): 200 rooms appended at
/// once take far fewer than 200 transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits() {
    let server = TestServer::start();
    let store = open(&server.fresh_db().await).await;
    let before = store.commit_count();
    let rooms: Vec<String> = (0..200).map(|_| unique("room")).collect();
    let appends = rooms.iter().map(|room| {
        let store = store.clone();
        async move {
            store
                .append_room_events(room, 0, &enc([room_event(1, room)]))
                .await
        }
    });
    for result in futures_util::future::join_all(appends).await {
        result.unwrap();
    }
    let commits = store.commit_count() - before;
    assert!(commits < 100, "{commits} commits for 200 appends");
    for room in &rooms {
        assert_eq!(store.room_head(room).await.unwrap(), 1);
    }
}

/// Waits until a session of this database waits for a lock (the store's
/// writer, blocked by a test's open transaction).
async fn wait_for_lock_waiters(client: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A writer on another node inserts the same seq while this store's batch
/// is in flight: the server rejects the batch, it is replayed one request
/// per transaction, and only the request that lost the race fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writer_fails_only_its_request() {
    let server = TestServer::start();
    let url = server.fresh_db().await;
    let store = open(&url).await;
    let raw = |url: String| async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    };
    let mut holder = raw(url.clone()).await;
    let mut other_node = raw(url.clone()).await;
    let room = unique("room");
    let bystander = unique("room");

    // The writer is held on a key-value batch whose key `holder` locks.
    let hold = holder.transaction().await.unwrap();
    hold.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::kv::lock_id("conformance", "held")],
    )
    .await
    .unwrap();
    let held = {
        let store = store.clone();
        tokio::spawn(async move {
            crate::kv::Kv::apply(
                &*store,
                crate::kv::KvBatch::default().put("conformance", "held", vec![1]),
            )
            .await
        })
    };
    wait_for_lock_waiters(&other_node).await;
    // Meanwhile the other node has inserted seq 1 of `room`, not committed.
    let race = other_node.transaction().await.unwrap();
    race.execute(
        "INSERT INTO room_events (room_id, seq, body) VALUES ($1, 1, $2)",
        &[&room, &enc([room_event(1, "other-node")])[0].bytes.to_vec()],
    )
    .await
    .unwrap();
    // Both appends queue behind the held batch and go out as one batch.
    let contested = {
        let (store, room) = (store.clone(), room.clone());
        tokio::spawn(async move {
            store
                .append_room_events(&room, 0, &enc([room_event(1, "this-node")]))
                .await
        })
    };
    let free = {
        let (store, room) = (store.clone(), bystander.clone());
        tokio::spawn(async move {
            store
                .append_room_events(&room, 0, &enc([room_event(1, "bystander")]))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    hold.commit().await.unwrap();
    assert_eq!(held.await.unwrap(), Ok(true));
    // The batch's insert now waits on the other node's row; let it win.
    wait_for_lock_waiters(&holder).await;
    race.commit().await.unwrap();

    let contested = contested.await.unwrap();
    assert!(
        matches!(contested, Err(StoreError::Conflict(_))),
        "{contested:?}"
    );
    assert_eq!(free.await.unwrap(), Ok(()));
    assert!(store.replay_count() >= 1, "the batch was replayed");
    assert_eq!(
        store.room_events(&room, 0, 10).await.unwrap(),
        vec![room_event(1, "other-node")]
    );
    assert_eq!(
        store.room_events(&bystander, 0, 10).await.unwrap(),
        vec![room_event(1, "bystander")]
    );
}

/// `store copy` both ways: embedded into PostgreSQL (PostgreSQL's ports
/// write, its export verifies) and PostgreSQL into embedded (its export
/// reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_both_ways() {
    let server = TestServer::start();
    let pg = open(&server.fresh_db().await).await;
    let dir = tempfile::tempdir().unwrap();
    let embedded = crate::EmbeddedStore::open(dir.path()).unwrap();
    conformance::copy::copies_everything(&*embedded, &*pg).await;
    let pg2 = open(&server.fresh_db().await).await;
    let dir2 = tempfile::tempdir().unwrap();
    let embedded2 = crate::EmbeddedStore::open(dir2.path()).unwrap();
    conformance::copy::copies_everything(&*pg2, &*embedded2).await;
}

/// Leases on PostgreSQL, two handles as two nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_lease_suite() {
    let server = TestServer::start();
    let url = server.fresh_db().await;
    let a = Arc::new(crate::lease::KvLeases::new(open(&url).await));
    let b = Arc::new(crate::lease::KvLeases::new(open(&url).await));
    conformance::lease::run_all(a, b).await;
}
