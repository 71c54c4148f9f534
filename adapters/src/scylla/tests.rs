//! The ScyllaDB adapter against a REAL cluster, when
//! `CHALKTALK_TEST_SCYLLA=host:port` is set (for example a
//! `docker run -p 9042:9042 scylladb/scylla --smp 1` elsewhere, see
//! docs/OPERATIONS.md): every conformance suite, two handles racing as two
//! nodes would, migrations, paging across message buckets. Each test works
//! in a fresh keyspace (SimpleStrategy, replication 1, tablets disabled
//! where the server knows them: LWT on tablets needs a newer cluster
//! feature). Without the variable every test prints why it skipped and
//! passes: no ScyllaDB or Cassandra server can run where CI runs.

use std::sync::Arc;

use chalktalk_actors::store::Store;
use chalktalk_protocol::Message;

use super::{ScyllaOptions, ScyllaSetupError, ScyllaStore, migrate};
use crate::conformance;
use crate::conformance::store::unique;

/// The cluster to use, or `None` (printed) when the variable is unset.
fn target(test: &str) -> Option<String> {
    match std::env::var("CHALKTALK_TEST_SCYLLA") {
        Ok(addr) if !addr.trim().is_empty() => Some(addr.trim().to_string()),
        _ => {
            eprintln!(
                "{test}: skipped, no ScyllaDB here (set CHALKTALK_TEST_SCYLLA=host:port to run it)"
            );
            None
        }
    }
}

/// Options for a fresh keyspace on `addr`, created by the first connect.
fn fresh(addr: &str) -> ScyllaOptions {
    let n = getrandom::u64().expect("random keyspace suffix");
    let mut opts = ScyllaOptions::from_url(&format!("scylla://{addr}/chalktalk_test_{n:016x}"))
        .expect("test URL");
    opts.create_keyspace = Some("{'class': 'SimpleStrategy', 'replication_factor': 1}".into());
    opts.disable_tablets = true;
    opts
}

/// Connects, creating the keyspace; retries without the tablets option
/// for servers that do not know it (Cassandra, ScyllaDB before 6).
async fn open(opts: &mut ScyllaOptions) -> Arc<ScyllaStore> {
    match ScyllaStore::connect(opts).await {
        Ok(s) => s,
        Err(ScyllaSetupError::Migration {
            version: 0,
            message,
        }) if opts.disable_tablets => {
            eprintln!("keyspace with tablets disabled refused ({message}); trying without");
            opts.disable_tablets = false;
            ScyllaStore::connect(opts)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"))
        }
        Err(e) => panic!("connect: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_every_suite() {
    let Some(addr) = target("passes_every_suite") else {
        return;
    };
    let mut opts = fresh(&addr);
    let a = open(&mut opts).await;
    let b = open(&mut opts).await;
    conformance::store::run_all(a.clone()).await;
    conformance::media::run_all(a.clone()).await;
    conformance::kv::run_all(a.clone()).await;
    conformance::programs::run_all(a.clone()).await;
    conformance::billing::run_all(a.clone()).await;
    conformance::races::run_store(a.clone(), b.clone()).await;
    conformance::races::run_kv(a.clone(), b.clone()).await;
    conformance::lease::run_all(
        Arc::new(crate::lease::KvLeases::new(a.clone())),
        Arc::new(crate::lease::KvLeases::new(b.clone())),
    )
    .await;
    // `store copy` into ScyllaDB, program and billing records too (it
    // cannot be a source: no `Export`).
    let dir = tempfile::tempdir().expect("tempdir");
    let embedded = crate::EmbeddedStore::open(dir.path()).expect("open");
    let tag = conformance::store::unique("scylla-copy");
    conformance::copy::fill(&*embedded, &tag, 2).await;
    crate::copy::copy(&*embedded, &*a, &|_, _| {})
        .await
        .expect("copy");
    let verified = crate::copy::summarize(&*embedded, Some(&*a))
        .await
        .expect("verify");
    assert_eq!(verified, conformance::copy::filled(2));
    Store::health(&*a).await.expect("healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_recorded_idempotent_and_guarded() {
    let Some(addr) = target("migrations_are_recorded_idempotent_and_guarded") else {
        return;
    };
    let mut opts = fresh(&addr);
    let mut behind = opts.clone();
    behind.migrate = false;
    match ScyllaStore::connect(&behind).await {
        Err(ScyllaSetupError::NoKeyspace(_)) => {}
        other => panic!("expected NoKeyspace, got {:?}", other.err()),
    }
    drop(open(&mut opts).await);
    drop(open(&mut opts).await);
    behind.disable_tablets = opts.disable_tablets;
    drop(ScyllaStore::connect(&behind).await.expect("schema current"));
    let done = super::migrate_url(&opts).await.expect("migrate again");
    assert_eq!(done.from, migrate::latest());
    assert!(done.applied.is_empty());

    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(&addr)
        .build()
        .await
        .expect("raw session");
    session
        .query_unpaged(
            format!(
                "INSERT INTO {}.schema_version (scope, version, name, applied_ms) VALUES ('chalktalk', ?, 'from the future', 0)",
                opts.keyspace
            ),
            (migrate::latest() + 1,),
        )
        .await
        .expect("future version");
    for o in [opts, behind] {
        match ScyllaStore::connect(&o).await {
            Err(ScyllaSetupError::SchemaTooNew { found, .. }) => {
                assert_eq!(found, migrate::latest() + 1)
            }
            other => panic!("expected SchemaTooNew, got {:?}", other.err()),
        }
    }
}

fn message(seq: u64) -> Message {
    Message {
        seq,
        id: format!("m{seq}"),
        from: "coach".into(),
        at_ms: 1_700_000_000_000 + seq,
        text: format!("message {seq}"),
        attachments: vec![],
        reply_to: None,
        edit: None,
    }
}

/// A thread of 2,600 messages spans three buckets (seq / 1024): reads in
/// both directions cross bucket boundaries, an append that crosses one
/// works, and the head is found in the last bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_threads_page_across_buckets() {
    let Some(addr) = target("long_threads_page_across_buckets") else {
        return;
    };
    let mut opts = fresh(&addr);
    let store = open(&mut opts).await;
    let thread = unique("thread");
    const N: u64 = 2600;
    let mut seq = 1;
    while seq <= N {
        // 100 at a time: calls 1001..1100 and 2001..2100 cross a boundary.
        let end = (seq + 99).min(N);
        let msgs: Vec<Message> = (seq..=end).map(message).collect();
        store.append_messages(&thread, &msgs).await.expect("append");
        seq = end + 1;
    }
    assert_eq!(store.thread_head(&thread).await.unwrap(), N);
    let all = store.messages_after(&thread, 0, 10_000).await.unwrap();
    assert_eq!(all.len() as u64, N);
    assert!(all.iter().zip(1..).all(|(m, s)| m.seq == s));
    let mid: Vec<u64> = store
        .messages_after(&thread, 1020, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(mid, (1021..=1030).collect::<Vec<_>>());
    let back: Vec<u64> = store
        .messages_before(&thread, 1030, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(back, (1020..=1029).collect::<Vec<_>>());
    // Page backwards from the end, 300 at a time: every message once.
    let mut seen = Vec::new();
    let mut cursor = u64::MAX;
    loop {
        let page = store.messages_before(&thread, cursor, 300).await.unwrap();
        let Some(first) = page.first() else { break };
        cursor = first.seq;
        seen.splice(0..0, page.into_iter().map(|m| m.seq));
    }
    assert_eq!(seen, (1..=N).collect::<Vec<_>>());
    // A seq already stored in the last bucket is a conflict.
    let dup = store.append_messages(&thread, &[message(N)]).await;
    assert!(dup.is_err(), "{dup:?}");
}
