//! Helpers of the PostgreSQL end-to-end tests (`crash_postgres.rs`,
//! `store_postgres.rs`), kept apart from `tests/common`: a `chalktalk serve`
//! child process on a given store, a coach's client, an annotation op.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use chalktalk_protocol::client::{Client, ClientOptions};
use chalktalk_protocol::{Annotation, ClientMsg, Point, Role, RoomOp, Shape, Style};

pub const SECRET: &str = "test-secret-test-secret-test-secret!";

/// `chalktalk serve` as a child process on `store`, killed on drop.
pub struct Node {
    pub child: std::process::Child,
    pub url: String,
}

impl Node {
    pub async fn start(data_dir: &std::path::Path, store: &str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chalktalk"))
            .arg("serve")
            .env("CHALKTALK_LISTEN", format!("127.0.0.1:{port}"))
            .env("CHALKTALK_DATA_DIR", data_dir)
            .env("CHALKTALK_JWT_SECRET", SECRET)
            .env("CHALKTALK_STORE", store)
            .env("CHALKTALK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chalktalk serve");
        for _ in 0..800 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Node {
                    child,
                    url: format!("ws://127.0.0.1:{port}/ws"),
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("child server did not listen");
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn connect(url: &str, device: &str) -> Client {
    let auth = chalktalk_services::auth::Auth::new(SECRET.as_bytes());
    let token = auth.mint("coach", Role::Coach, 600).unwrap();
    Client::connect(url, ClientOptions::new(token, device))
        .await
        .expect("client connects")
}

pub fn add(room: &str, id: &str, t_ms: u64) -> ClientMsg {
    ClientMsg::Op {
        room: room.into(),
        op_id: id.into(),
        op: RoomOp::Add {
            ann: Annotation {
                id: id.into(),
                author: String::new(),
                t_ms,
                dur_ms: Some(2000),
                style: Style::default(),
                shape: Shape::Line {
                    a: Point(0.1, 0.2),
                    b: Point(0.3, 0.4),
                },
            },
        },
    }
}

/// One HTTP/1.1 request with an optional JSON body and bearer token; the
/// status and the JSON body (`Null` when there is none).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    bearer: Option<&str>,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}
