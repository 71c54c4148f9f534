//! Cluster membership between three `chalktalk serve` processes on
//! 127.0.0.1: they find each other through their seeds and show each
//! other up in `/api/v1/ops/cluster`; a frozen node (SIGSTOP, TCP still
//! open) goes suspect and then down within the timeout and comes back up
//! after SIGCONT; a node killed with -9 goes down and, restarted, is dialed
//! again; the view is for admins only. With mutual TLS between nodes,
//! nodes with certificates of the cluster's CA form the cluster (and a
//! room's frames reach a member on the other node over the relay link,
//! under TLS too), and a node with another CA's certificate or without TLS
//! never joins it.

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

/// Makes a CA and a node certificate under it (SAN DNS:chalktalk-cluster)
/// with `openssl` in `dir`, as `{tag}-ca.pem`, `{tag}-node.pem`,
/// `{tag}-node.key`.
fn certificates(dir: &std::path::Path, tag: &str) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian package openssl)");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let (ca, ca_key) = (format!("{tag}-ca.pem"), format!("{tag}-ca.key"));
    let (cert, key, csr) = (
        format!("{tag}-node.pem"),
        format!("{tag}-node.key"),
        format!("{tag}-node.csr"),
    );
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=test cluster CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=node"]);
    run(&args);
    let ext = format!("{tag}-ext.cnf");
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=DNS:chalktalk-cluster\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("write ext");
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        &ext,
    ]);
}

async fn tls_node(
    name: &str,
    port: u16,
    seeds: &[u16],
    certs: Option<(&std::path::Path, &str)>,
    store: Option<&str>,
) -> TestServer {
    let mut b = cluster::builder(name, port, seeds);
    if let Some(store) = store {
        b = b.env("CHALKTALK_STORE", store);
    }
    if let Some((dir, tag)) = certs {
        let path = |f: &str| dir.join(format!("{tag}-{f}")).display().to_string();
        b = b
            .env("CHALKTALK_CLUSTER_TLS_CERT", &path("node.pem"))
            .env("CHALKTALK_CLUSTER_TLS_KEY", &path("node.key"))
            .env("CHALKTALK_CLUSTER_TLS_CA", &path("ca.pem"));
    }
    b.start().await
}

/// Whether `s` sees `peer` up.
async fn sees_up(s: &TestServer, peer: &str) -> bool {
    view(s).await["members"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["node"] == peer && m["status"] == "up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_only_nodes_of_the_clusters_ca_join() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path(), "ours");
    certificates(dir.path(), "theirs");
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let ours = Some((dir.path(), "ours"));
    // n1 and n2 share a PostgreSQL, for a room across them below.
    let (_pg, store) = common::postgres::start().await;
    let a = tls_node("n1", ports[0], &[ports[1]], ours, Some(&store)).await;
    let b = tls_node("n2", ports[1], &[ports[0]], ours, Some(&store)).await;
    until(&a, "n2", "up", Duration::from_secs(15)).await;
    until(&b, "n1", "up", Duration::from_secs(15)).await;
    // Another CA's certificate, and no TLS at all: never members.
    let rogue = tls_node(
        "n3",
        ports[2],
        &[ports[0], ports[1]],
        Some((dir.path(), "theirs")),
        None,
    )
    .await;
    let plain = tls_node("n4", ports[3], &[ports[0], ports[1]], None, None).await;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        for (s, peer) in [
            (&a, "n3"),
            (&a, "n4"),
            (&b, "n3"),
            (&b, "n4"),
            (&rogue, "n1"),
            (&plain, "n1"),
        ] {
            assert!(
                !sees_up(s, peer).await,
                "{peer} joined a TLS cluster without its CA's certificate"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The members still see each other.
    assert!(sees_up(&a, "n2").await && sees_up(&b, "n1").await);

    // A room on n1 with a member on n2: requests go up on the cluster link
    // and frames come down on a relay link, both under TLS.
    use chalktalk_protocol::Reply;
    let coach = a.connect("coach", Role::Coach, "laptop").await;
    let room = common::create_room(&coach, "video-1").await;
    common::invite(&coach, &room, "athlete").await;
    common::join(&coach, &room, None).await;
    let mut athlete = b.connect("athlete", Role::Athlete, "phone").await;
    assert!(matches!(
        common::join(&athlete, &room, None).await,
        Reply::Joined { .. }
    ));
    let (seq, _) = common::ack(&coach, common::add(&room, "c-1", common::line("c-1", 10))).await;
    assert!(
        common::saw_event(&mut athlete, &room, seq).await,
        "the coach's op reached n2 through TLS"
    );
    let (seq2, _) = common::ack(&athlete, common::add(&room, "a-1", common::line("a-1", 20))).await;
    assert_eq!(seq2, seq + 1, "the athlete's op acked through the relay");
    let metrics = a.get("/metrics", None).await.text();
    assert!(
        metrics.contains("chalktalk_relay_batches_lost_total 0"),
        "no batch lost on the way:\n{metrics}"
    );
}
