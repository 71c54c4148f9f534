//! Cluster nodes for the end-to-end tests: `chalktalk serve` children with
//! the cluster settings (short heartbeat and timeouts), their ports, and a
//! wait for one node to see another up.

use std::time::{Duration, Instant};

use chalktalk_protocol::Role;
use serde_json::Value;

use super::TestServer;

pub const COOKIE: &str = "a-test-cluster-cookie";

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// A node named `name` with its cluster listener on `port`, seeded with
/// the listeners `seeds`, on `store` (`None`: its own embedded store), with
/// a lease time of `lease_ms` (the default when `None`).
pub async fn node(
    name: &str,
    port: u16,
    seeds: &[u16],
    store: Option<&str>,
    lease_ms: Option<u64>,
) -> TestServer {
    let mut b = builder(name, port, seeds);
    if let Some(store) = store {
        b = b.env("CHALKTALK_STORE", store);
    }
    if let Some(ms) = lease_ms {
        b = b.env("CHALKTALK_CLUSTER_LEASE_MS", &ms.to_string());
    }
    b.start().await
}

/// The child builder of a node named `name` listening on `port`, seeded
/// with `seeds`, with the tests' short heartbeat and timeouts (more
/// settings can be added before `start`).
pub fn builder(name: &str, port: u16, seeds: &[u16]) -> super::server::Builder {
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
}

/// `s`'s view of the cluster (`GET /api/v1/ops/cluster`, as an admin).
pub async fn view(s: &TestServer) -> Value {
    let token = s.token("ops-admin", Role::Admin);
    let r = s.get("/api/v1/ops/cluster", Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Waits until `s` sees `peer` with `status`; returns how long it took.
pub async fn until(s: &TestServer, peer: &str, status: &str, within: Duration) -> Duration {
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

/// Where `room` lives as `s` reads it (`GET /api/v1/ops/rooms/{id}/placement`,
/// as an admin): owner, epoch, expiry, fence.
pub async fn placement(s: &TestServer, room: &str) -> Value {
    let token = s.token("ops-admin", Role::Admin);
    let r = s
        .get(&format!("/api/v1/ops/rooms/{room}/placement"), Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Sends `sig` to a child node.
pub fn signal(s: &TestServer, sig: i32) {
    // SAFETY: kill(2) with a pid of our own child.
    let r = unsafe { libc::kill(s.pid() as i32, sig) };
    assert_eq!(r, 0, "kill({sig})");
}

/// Three nodes n1..n3 on `store` (lease 1.5 s), each seeded with the
/// other two, once all see each other.
pub async fn three(store: &str) -> Vec<TestServer> {
    three_with(store, &[]).await
}

/// [`three`] with more settings (`env` pairs) on every node.
pub async fn three_with(store: &str, env: &[(&str, &str)]) -> Vec<TestServer> {
    let ports = [free_port(), free_port(), free_port()];
    let mut nodes = Vec::new();
    for (i, name) in ["n1", "n2", "n3"].iter().enumerate() {
        let seeds: Vec<u16> = ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| *p)
            .collect();
        let mut b = builder(name, ports[i], &seeds)
            .env("CHALKTALK_STORE", store)
            .env("CHALKTALK_CLUSTER_LEASE_MS", "1500");
        for (k, v) in env {
            b = b.env(k, v);
        }
        nodes.push(b.start().await);
    }
    formed(&nodes).await;
    nodes
}

/// Waits until every node of `nodes` sees all the others up (20 s at
/// most).
pub async fn formed(nodes: &[TestServer]) {
    let start = Instant::now();
    'wait: loop {
        for n in nodes {
            let v = view(n).await;
            let up = v["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["status"] == "up")
                .count();
            if up + 1 < nodes.len() {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "cluster not formed: {v}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue 'wait;
            }
        }
        return;
    }
}

/// Waits until `acked()` grew by 20 over `before` (writes resumed after a
/// node was killed); returns how long it took (15 s at most).
pub async fn resumed(acked: impl Fn() -> usize, before: usize) -> Duration {
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if acked() > before + 20 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "writes did not resume"
        );
    }
}
