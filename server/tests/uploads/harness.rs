//! The upload tests' fixture on the one test server type: the
//! `chalktalk::http::routes` of an `HttpState` served by a routes-only
//! [`TestServer`] on 127.0.0.1:0, over a `LocalBlobStore` in its data dir,
//! with a recording [`TestHandler`] that moves completed files out of
//! staging and can be told to refuse or fail.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chalktalk::http::{
    ApiError, CompletedUpload, HttpState, NewUpload, UploadConfig, UploadHandler, UrlSigner, routes,
};
use chalktalk_adapters::blob::local::LocalBlobStore;
use chalktalk_protocol::Role;
use chalktalk_services::auth::{Auth, Claims};
use sha2::{Digest, Sha256};

use crate::common::SECRET;
use crate::common::client::{self, Resp};
use crate::common::server::{Builder, TestServer};

pub const LINK_KEY: [u8; 32] = [42; 32];

/// One completed upload as the handler saw it.
#[derive(Debug, Clone)]
pub struct Done {
    pub user: String,
    pub upload: CompletedUpload,
    pub sha256: [u8; 32],
    pub len: usize,
}

/// Records completions; `fail_completed`/`refuse_check` make the next call fail.
#[derive(Default)]
pub struct TestHandler {
    pub out_dir: PathBuf,
    pub done: Mutex<Vec<Done>>,
    pub checked: Mutex<Vec<NewUpload>>,
    pub fail_completed: Mutex<Option<ApiError>>,
    pub refuse_check: Mutex<Option<ApiError>>,
}

#[async_trait]
impl UploadHandler for TestHandler {
    async fn check(&self, _user: &Claims, req: &NewUpload) -> Result<(), ApiError> {
        self.checked.lock().unwrap().push(req.clone());
        match self.refuse_check.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn completed(
        &self,
        user: &Claims,
        upload: CompletedUpload,
    ) -> Result<serde_json::Value, ApiError> {
        if let Some(e) = self.fail_completed.lock().unwrap().take() {
            return Err(e);
        }
        // Take the file out of staging, as the real pipeline does.
        let dest = self.out_dir.join(&upload.id);
        std::fs::rename(&upload.path, &dest).unwrap();
        let bytes = std::fs::read(&dest).unwrap();
        let done = Done {
            user: user.sub.clone(),
            sha256: Sha256::digest(&bytes).into(),
            len: bytes.len(),
            upload: upload.clone(),
        };
        self.done.lock().unwrap().push(done);
        Ok(serde_json::json!({"asset": upload.id, "size": upload.size, "queued": true}))
    }
}

/// The upload routes served by a [`TestServer`] (routes only) over a
/// recording [`TestHandler`] and local blobs in the server's data dir.
pub struct Uploads {
    pub server: TestServer,
    pub state: HttpState,
    pub handler: Arc<TestHandler>,
    pub blobs: Arc<LocalBlobStore>,
}

impl Uploads {
    /// A server with small limits (64 KiB chunks and simple uploads, 1 MiB
    /// uploads) unless `tweak` changes them.
    pub async fn start(tweak: impl FnOnce(&mut UploadConfig)) -> Uploads {
        let dir = tempfile::tempdir().unwrap();
        let mut config = UploadConfig::new(dir.path().join("staging"));
        config.max_chunk_bytes = 64 * 1024;
        config.max_simple_upload_bytes = 64 * 1024;
        config.max_upload_bytes = 1024 * 1024;
        tweak(&mut config);
        let path = dir.path().to_path_buf();
        // The server owns the temporary data dir.
        let builder = TestServer::builder().in_temp_dir(dir);
        Uploads::serve(builder, &path, config).await
    }

    /// A server over `dir` (staging, blobs, handler output), as after a
    /// restart; the caller keeps `dir`.
    pub async fn start_in(dir: &Path, config: UploadConfig) -> Uploads {
        Uploads::serve(TestServer::builder().in_dir(dir), dir, config).await
    }

    /// Serves the upload routes over `dir` (the data dir `builder` has).
    async fn serve(builder: Builder, dir: &Path, config: UploadConfig) -> Uploads {
        let out_dir = dir.join("done");
        std::fs::create_dir_all(&out_dir).unwrap();
        let handler = Arc::new(TestHandler {
            out_dir,
            ..TestHandler::default()
        });
        let blobs = Arc::new(LocalBlobStore::open(dir.join("blobs")).unwrap());
        let state = HttpState::new(
            Auth::new(SECRET.as_bytes()),
            config,
            blobs.clone(),
            handler.clone(),
            UrlSigner::new(&LINK_KEY),
        );
        let router = axum::Router::from(routes(state.clone()));
        let server = builder.routes(router).start().await;
        Uploads {
            server,
            state,
            handler,
            blobs,
        }
    }

    pub fn staging(&self) -> &Path {
        &self.state.uploads.staging_dir
    }

    pub fn token(&self, user: &str) -> String {
        self.server.token(user, Role::Coach)
    }

    pub fn bearer(&self, user: &str) -> (&'static str, String) {
        ("Authorization", format!("Bearer {}", self.token(user)))
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Resp {
        client::send(self.server.addr(), method, path, headers, body).await
    }

    /// `POST /api/v1/uploads` as `user`.
    pub async fn create(&self, user: &str, body: serde_json::Value) -> Resp {
        let headers = [
            self.bearer(user),
            ("Content-Type", "application/json".into()),
        ];
        self.send(
            "POST",
            "/api/v1/uploads",
            &headers,
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Creates a video upload of `size` bytes as `user`; returns its id.
    pub async fn create_video(&self, user: &str, size: usize) -> String {
        let r = self
            .create(
                user,
                serde_json::json!({"kind": "video", "filename": "clip.mp4", "size": size}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// `PATCH` of `chunk` at `offset`, with optional extra headers.
    pub async fn patch(
        &self,
        user: &str,
        id: &str,
        offset: u64,
        chunk: &[u8],
        extra: &[(&str, String)],
    ) -> Resp {
        let mut headers = vec![
            self.bearer(user),
            ("Content-Type", "application/offset+octet-stream".into()),
            ("Upload-Offset", offset.to_string()),
        ];
        headers.extend_from_slice(extra);
        self.send(
            "PATCH",
            &format!("/api/v1/uploads/{id}"),
            &headers,
            chunk.to_vec(),
        )
        .await
    }

    pub async fn head(&self, user: &str, id: &str) -> Resp {
        self.send(
            "HEAD",
            &format!("/api/v1/uploads/{id}"),
            &[self.bearer(user)],
            vec![],
        )
        .await
    }

    /// Polls HEAD until the stored offset is `want`.
    pub async fn wait_offset(&self, user: &str, id: &str, want: u64) {
        let mut last = None;
        for _ in 0..200 {
            let r = self.head(user, id).await;
            if r.status == 200 && r.offset() == want {
                return;
            }
            last = Some(r);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("offset never reached {want}: {last:?}");
    }

    /// The completions so far.
    pub fn done(&self) -> Vec<Done> {
        self.handler.done.lock().unwrap().clone()
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Names in the staging directory, sorted.
pub fn staged(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}
