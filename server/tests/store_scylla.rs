//! A node configured with `CHALKTALK_STORE=scylla://...` and no ScyllaDB
//! behind it (none can run here): `start` and `chalktalk migrate` stop with
//! a message naming the setting, without showing the password, and
//! quickly. The adapter itself is tested in chalktalk-adapters
//! (src/scylla/: statements against cql/, error paths through
//! scylla-proxy, the conformance suites when `CHALKTALK_TEST_SCYLLA` names
//! a cluster).

mod common;

use chalktalk::config::StoreConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_scylla_stops_start_naming_the_setting() {
    let port = common::closed_port();
    let err = common::refused_unreachable_store(StoreConfig::Scylla {
        url: format!("scylla://chalk:hunter2@127.0.0.1:{port}/chalktalk?timeout_ms=2000"),
    })
    .await;
    assert!(err.contains("unreachable"), "{err}");
}
