//! A node on PostgreSQL (`CHALKTALK_STORE=postgres://...`) against a real
//! server started by the test (Debian's initdb/pg_ctl in a temp dir, see
//! chalktalk_adapters::postgres::test_server): it serves, `/ready` turns
//! red when the database stops and green again when it is back, without a
//! restart; a store URL that cannot be reached stops `start` with a message
//! naming the setting; `chalktalk migrate` is idempotent; the database
//! stopped under load refuses ops (never acks them) and the node serves
//! again once it is back, with every acked op kept.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chalktalk::config::{Config, StoreConfig};
use chalktalk_protocol::client::ClientError;
use chalktalk_protocol::{ErrorCode, Reply, Role};
use common::{TestServer, add, line, postgres};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` over plain HTTP/1.1; the status code (0 if no answer:
/// unlike the common client, it neither panics nor waits long).
async fn status(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn wait_for(addr: SocketAddr, code: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = status(addr, "/ready").await;
        if got == code {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/ready stayed {got}, wanted {code}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_on_postgres_goes_red_and_back() {
    let (mut pg, store) = postgres::start().await;
    let external = postgres::outside();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.store = StoreConfig::Postgres { url: store.clone() };
    // `migrate` first, then again: nothing to do the second time.
    let first = chalktalk::migrate::run(&config).await.unwrap();
    assert!(first.contains("applied"), "{first}");
    let again = chalktalk::migrate::run(&config).await.unwrap();
    assert!(again.contains("nothing to do"), "{again}");

    let mut node = TestServer::builder().postgres(&store).start().await;
    wait_for(node.addr(), 200).await;
    if !external {
        pg.stop();
        wait_for(node.addr(), 503).await;
        pg.resume();
        wait_for(node.addr(), 200).await;
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_store_stops_start_naming_the_setting() {
    let port = common::closed_port();
    common::refused_unreachable_store(StoreConfig::Postgres {
        url: format!("postgres://chalk:hunter2@127.0.0.1:{port}/chalktalk"),
    })
    .await;
}

/// Sends op `op-{n}`; `Some((op id, seq))` if acked within 10 s.
async fn send(c: &chalktalk_protocol::client::Client, room: &str, n: u64) -> Option<(String, u64)> {
    let id = format!("op-{n}");
    let msg = add(room, &id, line(&id, n));
    match tokio::time::timeout(Duration::from_secs(10), c.request(msg)).await {
        Ok(Ok(Reply::Ack { seq, .. })) => Some((id, seq)),
        _ => None,
    }
}

/// PostgreSQL stopped (`pg_ctl stop`) while a client streams ops into a
/// room of a running node, then started again: while it is down no op is
/// acknowledged (each gets an error or no answer); once it is back the same
/// node, never restarted, acknowledges ops again, and every op acked before,
/// during or after is in the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_mid_load_then_back() {
    if postgres::outside() {
        return; // cannot stop an outside server
    }
    let (mut pg, store) = postgres::start().await;
    let mut node = TestServer::builder().postgres(&store).start().await;
    let c = node.connect("coach", Role::Coach, "d").await;
    let room = common::create_room(&c, "v").await;
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut n = 0u64;
    for _ in 0..50 {
        n += 1;
        let (id, seq) = send(&c, &room, n).await.expect("ack before the stop");
        acked.insert(id, seq);
    }

    pg.stop();
    let mut refused = 0;
    let mut unavailable = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        n += 1;
        let id = format!("op-{n}");
        let msg = add(&room, &id, line(&id, n));
        match tokio::time::timeout(Duration::from_secs(10), c.request(msg)).await {
            Ok(Ok(r)) => panic!("{id} answered {r:?} with the database down"),
            Ok(Err(ClientError::Server {
                code: ErrorCode::Unavailable,
                ..
            })) => unavailable += 1,
            // The room restarting after its failed commit.
            Ok(Err(ClientError::Server {
                code: ErrorCode::Internal,
                msg,
            })) if msg.contains("restarted") => {}
            Ok(Err(e)) => panic!("{id} refused with {e:?}, not `unavailable`"),
            Err(_) => {}
        }
        refused += 1;
        // Refusals come back at once: stay under the frame rate limit.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused > 0);
    assert!(
        unavailable > 0,
        "a write with the database down is answered `unavailable`"
    );

    pg.resume();
    let deadline = Instant::now() + Duration::from_secs(60);
    let c = loop {
        // The room may have been stopped by its supervisor: a new
        // connection and a new op bring it back from the store.
        let c = node.connect("coach", Role::Coach, "again").await;
        n += 1;
        if let Some((id, seq)) = send(&c, &room, n).await {
            acked.insert(id, seq);
            break c;
        }
        assert!(Instant::now() < deadline, "the node never served again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for _ in 0..20 {
        n += 1;
        let (id, seq) = send(&c, &room, n).await.expect("ack after the restart");
        acked.insert(id, seq);
    }
    let snapshot = common::snapshot(&c, &room).await;
    let have: std::collections::BTreeSet<&str> =
        snapshot.annotations.iter().map(|a| a.id.as_str()).collect();
    for (id, seq) in &acked {
        assert!(have.contains(id.as_str()), "acked {id} (seq {seq}) lost");
    }
    node.stop().await;
}
