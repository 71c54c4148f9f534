//! The binary as a user runs it: `chalktalk serve` on embedded defaults with
//! a generated dev secret, `chalktalk token` minting a token that server
//! accepts, `/health` and `/ready`, JSON logs, and a clear error for a bad
//! setting.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Command;
use std::time::Duration;

use chalktalk_protocol::{Reply, Role};
use common::{TestServer, connect};

const BIN: &str = env!("CARGO_BIN_EXE_chalktalk");

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_token_share_the_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::builder()
        .child()
        .in_dir(dir.path())
        .env("CHALKTALK_LOG_FORMAT", "json")
        .env("CHALKTALK_LOG", "info")
        .env_remove("CHALKTALK_JWT_SECRET")
        .capture_stderr()
        .start()
        .await;
    let port = server.addr().port();
    // JSON logs: the first line is a JSON object saying where it listens.
    let stderr = server.take_stderr();
    let mut lines = BufReader::new(stderr).lines();
    let mut listening = None;
    for _ in 0..20 {
        let Some(Ok(line)) = lines.next() else { break };
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "chalktalk listening" {
            listening = Some(v);
            break;
        }
    }
    let listening = listening.expect("a JSON 'listening' log line");
    assert_eq!(listening["level"], "INFO");
    std::thread::spawn(move || for _ in lines {});

    assert_eq!(http_get(port, "/health"), (200, "ok".to_string()));
    assert_eq!(http_get(port, "/ready"), (200, "ready".to_string()));
    assert_eq!(http_get(port, "/nope").0, 404);

    let out = Command::new(BIN)
        .args(["token", "--user", "coach-1", "--role", "coach"])
        .env("CHALKTALK_DATA_DIR", dir.path())
        .env_remove("CHALKTALK_JWT_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let c = connect(&format!("ws://127.0.0.1:{port}/ws"), token, "laptop").await;
    assert_eq!(c.welcome.user, "coach-1");
    assert_eq!(c.welcome.role, Role::Coach);
    assert!(matches!(
        c.request(chalktalk_protocol::ClientMsg::Ping).await,
        Ok(Reply::Pong { .. })
    ));

    // The secret file is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("jwt-secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn bad_settings_are_clear_errors() {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "localhost:notaport"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen") && err.contains("localhost:notaport"),
        "{err}"
    );

    let out = Command::new(BIN)
        .arg("serve")
        .env("CHALKTALK_HEARTBEAT_MS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("heartbeat_ms"));

    let out = Command::new(BIN)
        .args(["token", "--user", "x", "--role", "owner"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("coach, athlete or admin"));
}
