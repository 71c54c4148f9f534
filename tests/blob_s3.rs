//! The S3 adapter against a real S3-compatible server: starts `s3s-fs`
//! (installed by `scripts/install-deps.sh`) on a free 127.0.0.1 port with
//! signature checking on, creates a bucket and runs the blob conformance
//! suite plus the presigned-URL checks. The server is killed when the test
//! ends, pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chalktalk::blob::{S3BlobStore, S3Config, conformance};
use chalktalk_actors::blob::{BlobError, BlobStore};

const ACCESS_KEY: &str = "chalktalk-test";
const SECRET_KEY: &str = "chalktalk-test-secret-key";

/// A running `s3s-fs`, killed on drop.
struct S3sFs {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// `s3s-fs` from PATH, else from cargo's bin directory.
fn s3s_fs_binary() -> PathBuf {
    let works = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let mut candidates = vec![PathBuf::from("s3s-fs")];
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(PathBuf::from(home).join("bin/s3s-fs"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/s3s-fs"));
    }
    candidates
        .into_iter()
        .find(|p| works(p))
        .unwrap_or_else(|| {
            panic!(
                "the `s3s-fs` binary was not found (PATH, $CARGO_HOME/bin, ~/.cargo/bin): \
             run scripts/install-deps.sh, which runs \
             `cargo install s3s-fs --version 0.14.1 --features binary --locked`"
            )
        })
}

async fn start_s3s_fs() -> S3sFs {
    let binary = s3s_fs_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    // A port picked free can be taken before the server binds it: retry.
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("s3s-fs exited early ({status}); retrying on another port");
                break;
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return S3sFs {
                    child,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("s3s-fs did not start listening on 127.0.0.1");
}

fn config(endpoint: &str, secret: &str) -> S3Config {
    S3Config {
        endpoint: endpoint.to_string(),
        region: "us-east-1".into(),
        bucket: "chalktalk-test".into(),
        access_key: ACCESS_KEY.into(),
        secret_key: secret.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_adapter_passes_conformance_against_s3s_fs() {
    let server = start_s3s_fs().await;
    let store = S3BlobStore::new(&config(&server.endpoint, SECRET_KEY));
    store.ensure_bucket().await.expect("create bucket");
    store
        .ensure_bucket()
        .await
        .expect("ensure_bucket is idempotent");
    let url = store
        .presign_get("any/key", Duration::from_secs(60))
        .await
        .expect("presign");
    assert!(
        url.as_deref()
            .is_some_and(|u| u.starts_with(&format!("{}/chalktalk-test/any/key?", server.endpoint))),
        "path-style presigned URL: {url:?}"
    );
    let store: Arc<dyn BlobStore> = Arc::new(store);
    conformance::run_all(store.clone()).await;
    conformance::presigned(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_and_dead_server_are_unavailable() {
    let server = start_s3s_fs().await;
    let good = S3BlobStore::new(&config(&server.endpoint, SECRET_KEY));
    good.ensure_bucket().await.expect("create bucket");
    let bad = S3BlobStore::new(&config(&server.endpoint, "not-the-secret"));
    match bad.get("any").await {
        Err(BlobError::Unavailable(msg)) => assert!(!msg.is_empty()),
        other => panic!("wrong secret: expected Unavailable, got {other:?}"),
    }
    let endpoint = server.endpoint.clone();
    drop(server);
    let gone = S3BlobStore::new(&config(&endpoint, SECRET_KEY));
    match gone.head("any").await {
        Err(BlobError::Unavailable(_)) => {}
        other => panic!("dead server: expected Unavailable, got {other:?}"),
    }
}
