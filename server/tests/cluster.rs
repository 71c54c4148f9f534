//! Cluster membership between three `chalktalk serve` processes on
//! 127.0.0.1: they find each other through their seeds and show each
//! other up in `/api/v1/ops/cluster`; a frozen node (SIGSTOP, TCP still
//! open) goes suspect and then down within the timeout and comes back up
//! after SIGCONT; a node killed with -9 goes down and, restarted, is dialed
//! again; the view is for admins only.

mod common;

use std::time::Duration;

use chalktalk_protocol::Role;
use common::TestServer;
use common::cluster::{self, free_port, signal, until, view};

async fn node(name: &str, port: u16, seeds: &[u16]) -> TestServer {
    cluster::node(name, port, seeds, None, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_see_each_other_fail_and_return() {
    let ports = [free_port(), free_port(), free_port()];
    let mut a = node("n1", ports[0], &[ports[1], ports[2]]).await;
    let mut b = node("n2", ports[1], &[ports[0], ports[2]]).await;
    let mut c = node("n3", ports[2], &[ports[0], ports[1]]).await;
    for (s, peers) in [(&a, ["n2", "n3"]), (&b, ["n1", "n3"]), (&c, ["n1", "n2"])] {
        for p in peers {
            until(s, p, "up", Duration::from_secs(15)).await;
        }
    }
    let v = view(&a).await;
    assert_eq!(v["clustered"], true);
    assert_eq!(v["me"]["node"], "n1");
    let n2 = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["node"] == "n2")
        .unwrap()
        .clone();
    assert_eq!(n2["http"], b.addr().to_string());
    assert!(n2["heartbeat_age_ms"].as_u64().unwrap() < 1_000, "{n2}");
    assert!(
        n2["info"]["rss_bytes"].as_u64().unwrap() > 1_000_000,
        "{n2}"
    );

    // Frozen: the TCP connection stays, the heartbeats stop.
    signal(&c, libc::SIGSTOP);
    until(&a, "n3", "suspect", Duration::from_secs(3)).await;
    let down = until(&a, "n3", "down", Duration::from_secs(4)).await;
    until(&b, "n3", "down", Duration::from_secs(4)).await;
    signal(&c, libc::SIGCONT);
    until(&a, "n3", "up", Duration::from_secs(5)).await;
    let events = view(&a).await["events"].clone();
    let n3: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"] == "n3")
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert!(
        n3.ends_with(&["suspect", "down", "up"]),
        "{events:#}; down after {down:?}"
    );

    // Killed, then restarted on the same cluster port: dialed again.
    b.kill9();
    until(&a, "n2", "down", Duration::from_secs(4)).await;
    b.restart().await;
    until(&a, "n2", "up", Duration::from_secs(15)).await;
    until(&b, "n1", "up", Duration::from_secs(15)).await;
    until(&b, "n3", "up", Duration::from_secs(15)).await;

    let metrics = a.get("/metrics", None).await.text();
    assert!(
        metrics.contains("chalktalk_cluster_members_up 2"),
        "{metrics}"
    );

    // Admins only.
    let coach = a.token("coach", Role::Coach);
    assert_eq!(a.get("/api/v1/ops/cluster", Some(&coach)).await.status, 403);
    assert_eq!(a.get("/api/v1/ops/cluster", None).await.status, 401);
    for s in [&mut a, &mut b, &mut c] {
        s.stop().await;
    }
}
