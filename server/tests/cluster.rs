//! Cluster membership between three `chalktalk serve` processes on
//! 127.0.0.1: they find each other through their seeds and show each
//! other up in `/api/v1/ops/cluster`; a frozen node (SIGSTOP, TCP still
//! open) goes suspect and then down within the timeout and comes back up
//! after SIGCONT; a node killed with -9 goes down and, restarted, is dialed
//! again; the view is for admins only.

mod common;

use std::time::{Duration, Instant};

use chalktalk_protocol::Role;
use common::TestServer;
use serde_json::Value;

const COOKIE: &str = "a-test-cluster-cookie";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

async fn node(name: &str, port: u16, seeds: &[u16]) -> TestServer {
    let seeds: Vec<String> = seeds.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    TestServer::builder()
        .child()
        .env("CHALKTALK_NODE_NAME", name)
        .env("CHALKTALK_CLUSTER_LISTEN", &format!("127.0.0.1:{port}"))
        .env("CHALKTALK_CLUSTER_SEEDS", &seeds.join(","))
        .env("CHALKTALK_CLUSTER_COOKIE", COOKIE)
        .env("CHALKTALK_CLUSTER_HEARTBEAT_MS", "200")
        .env("CHALKTALK_CLUSTER_SUSPECT_MS", "700")
        .env("CHALKTALK_CLUSTER_DOWN_MS", "1500")
        .start()
        .await
}

async fn view(s: &TestServer) -> Value {
    let token = s.token("ops-admin", Role::Admin);
    let r = s.get("/api/v1/ops/cluster", Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Waits until `s` sees `peer` with `status`; returns how long it took.
async fn until(s: &TestServer, peer: &str, status: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let v = view(s).await;
        let seen = v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["node"] == peer)
            .map(|m| m["status"].as_str().unwrap_or_default().to_string());
        if seen.as_deref() == Some(status) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{peer} not {status} within {within:?}; view: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(s: &TestServer, sig: i32) {
    // SAFETY: kill(2) with a pid of our own child.
    let r = unsafe { libc::kill(s.pid() as i32, sig) };
    assert_eq!(r, 0, "kill({sig})");
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
