//! `chalktalk store copy`: a deployment on the embedded store (an account,
//! a room with annotations, a program with an enrolled athlete's progress)
//! is copied into PostgreSQL by the real binary, and a node on PostgreSQL
//! with an empty data dir serves all of it: the account signs in, the room
//! has every annotation at the same seq, the athlete's progress is there.
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
    let program = free_program_done(&node).await;
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
    assert!(
        stdout.contains("1 programs (1 items), 1 entitlements, 1 items done"),
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
    let athlete = node.token(ATHLETE, Role::Athlete);
    let r = node
        .get(
            &format!("/api/v1/programs/{program}/progress"),
            Some(&athlete),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["progress"][0]["percent"], 100, "{}", r.text());
    node.stop().await;
}

const ATHLETE: &str = "program-athlete";

/// A free program of one drill, published; [`ATHLETE`] enrolls and marks
/// the drill done. Its id.
async fn free_program_done(node: &TestServer) -> String {
    let coach = node.token("program-coach", Role::Coach);
    let athlete = node.token(ATHLETE, Role::Athlete);
    let body = json!({
        "title": "Squat fundamentals", "description": "Four weeks", "sport": "weightlifting",
        "items": [{"kind": "drill", "id": "warmup", "title": "Warm-up", "text": "10 min easy"}],
        "price": {"kind": "free"}
    });
    let r = node.post("/api/v1/programs", Some(&coach), body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let r = node
        .post(
            &format!("/api/v1/programs/{id}/publish"),
            Some(&coach),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = node
        .post(
            &format!("/api/v1/programs/{id}/enroll"),
            Some(&athlete),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let done = format!("/api/v1/programs/{id}/items/warmup/done");
    let r = node.post(&done, Some(&athlete), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    id
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
