//! The S3 adapter against a real S3-compatible server: starts `s3s-fs`
//! (installed by `scripts/install-deps.sh`) on a free 127.0.0.1 port with
//! signature checking on, creates a bucket and runs the blob conformance
//! suite plus the presigned-URL checks. The server is killed when the test
//! ends, pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use chalktalk_adapters::blob::{BlobError, BlobStore};
use chalktalk_adapters::blob::{S3BlobStore, S3Config};
use chalktalk_adapters::conformance::blob as conformance;

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

/// The whole pipeline with S3 as the blob store: the source and every
/// output go to the bucket, and signed links serve them from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_pipeline_publishes_to_s3() {
    use chalktalk_media::sample::SampleSpec;
    use chalktalk_protocol::{ClientMsg, MediaStage, Reply, Role};
    use common::media::*;

    let server = start_s3s_fs().await;
    let s3 = config(&server.endpoint, SECRET_KEY);
    let s = common::TestServer::start_with(move |c| c.s3 = Some(s3)).await;
    let d = tempfile::tempdir().expect("tempdir");
    let mut coach = s.connect("coach", Role::Coach, "laptop").await;
    let video = clip(d.path(), "v.mp4", SampleSpec::small(3.0, 640, 480));
    let r = upload(
        &s,
        "coach",
        Role::Coach,
        "v.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().expect("id").to_string();
    let done = media_frame(&mut coach, &id, LONG, |p| p.stage.is_final()).await;
    assert_eq!(done.stage, MediaStage::Ready, "{done:?}");
    let bucket = S3BlobStore::new(&config(&server.endpoint, SECRET_KEY));
    let keys = bucket.list(&format!("media/{id}/")).await.expect("list");
    for want in [
        "hls/master.m3u8",
        "hls/480p/index.m3u8",
        "mp4/480p.mp4",
        "poster.jpg",
        "sprite.jpg",
        "proxy.mp4",
    ] {
        assert!(
            keys.iter().any(|k| k.ends_with(want)),
            "{want} missing from {keys:?}"
        );
    }
    assert!(
        bucket
            .head(&format!("uploads/{id}/source"))
            .await
            .expect("head")
            .is_some()
    );
    let Reply::MediaLink { base, .. } = coach
        .request(ClientMsg::MediaLink { asset: id.clone() })
        .await
        .expect("link")
    else {
        panic!("not a link")
    };
    let poster = get(
        &s,
        &format!("{}poster.jpg", base.expect("base")),
        Some("bytes=0-1"),
    )
    .await;
    assert_eq!(
        (poster.status, poster.body.as_slice()),
        (206, &[0xFF, 0xD8][..])
    );
}
