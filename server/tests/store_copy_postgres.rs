//! `chalktalk store copy`: a deployment on the embedded store (an account,
//! a room with annotations) is copied into PostgreSQL by the real binary,
//! and a node on PostgreSQL with an empty data dir serves all of it: the
//! account signs in, the room has every annotation at the same seq.
//! Bad store names are refused with a message naming the flag.

mod common;

use chalktalk_protocol::{Reply, Role};
use common::{TestServer, add, create_room, line, postgres, snapshot};
use serde_json::json;

fn store_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_chalktalk"))
        .arg("store")
        .args(args)
        .output()
        .expect("run chalktalk store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_deployment_moves_to_postgres() {
    let (_pg, store) = postgres::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestServer::builder()
        .child()
        .in_dir(dir.path())
        .start()
        .await;
    let creds = json!({"email": "coach@example.com", "password": "a long enough passphrase", "device": "laptop"});
    let r = node
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "coach@example.com", "password": "a long enough passphrase", "role": "coach"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let coach = node.connect("coach", Role::Coach, "laptop").await;
    let room = create_room(&coach, "v1").await;
    let mut acked = Vec::new();
    for i in 0..25u64 {
        match coach
            .request(add(
                &room,
                &format!("op{i}"),
                line(&format!("a{i}"), 100 * i),
            ))
            .await
            .unwrap()
        {
            Reply::Ack { seq, .. } => acked.push(seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(coach);
    node.stop().await;

    let from = format!("embedded:{}", dir.path().display());
    let out = store_cli(&["copy", "--from", &from, "--to", &store]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("copied and verified: 1 rooms (25 events"),
        "{stdout}"
    );
    // Again: nothing new, still verified (resumable).
    let again = store_cli(&["copy", "--from", &from, "--to", &store]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let count = store_cli(&["count", "--store", &store]);
    assert!(
        String::from_utf8_lossy(&count.stdout).starts_with("1 rooms (25 events"),
        "{}",
        String::from_utf8_lossy(&count.stdout)
    );

    let mut node = TestServer::builder().postgres(&store).start().await;
    let r = node.post("/api/v1/auth/signin", None, creds).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let coach = node.connect("coach", Role::Coach, "laptop").await;
    let snap = snapshot(&coach, &room).await;
    assert_eq!(snap.seq, *acked.last().unwrap());
    let mut ids: Vec<_> = snap.annotations.iter().map(|a| a.id.clone()).collect();
    ids.sort();
    let mut want: Vec<_> = (0..25).map(|i| format!("a{i}")).collect();
    want.sort();
    assert_eq!(ids, want);
    node.stop().await;
}

#[test]
fn bad_store_names_are_refused_naming_the_flag() {
    let out = store_cli(&[
        "copy",
        "--from",
        "nosuch:x",
        "--to",
        "embedded:/nonexistent-dir-x",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--from nosuch:x: expected `embedded:DIR`"),
        "{err}"
    );
    let out = store_cli(&["copy", "--from", "embedded:a", "--to", "embedded:a"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("name the same store"));
    let out = store_cli(&["count", "--store", "scylla://127.0.0.1:1/ks"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("can be copied into, not yet out of"), "{err}");
    let out = store_cli(&["count", "--store", "postgres://u:secret@127.0.0.1:1/db"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--store postgres://u:***@127.0.0.1:1/db"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}
