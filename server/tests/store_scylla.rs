//! A node configured with `CHALKTALK_STORE=scylla://...` and no ScyllaDB
//! behind it (none can run here): `start` and `chalktalk migrate` stop with
//! a message naming the setting, without showing the password, and
//! quickly. The adapter itself is tested in chalktalk-adapters
//! (src/scylla/: statements against cql/, error paths through
//! scylla-proxy, the conformance suites when `CHALKTALK_TEST_SCYLLA` names
//! a cluster).

use std::time::{Duration, Instant};

use chalktalk::config::{Config, StoreConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_scylla_stops_start_naming_the_setting() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.store = StoreConfig::Scylla {
        url: format!("scylla://chalk:hunter2@127.0.0.1:{port}/chalktalk?timeout_ms=2000"),
    };
    let started = Instant::now();
    let err = match chalktalk::server::start(&config).await {
        Ok(_) => panic!("started without a cluster"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("CHALKTALK_STORE"), "{err}");
    assert!(err.contains("unreachable"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = chalktalk::migrate::run(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CHALKTALK_STORE") && !err.contains("hunter2"),
        "{err}"
    );
}
