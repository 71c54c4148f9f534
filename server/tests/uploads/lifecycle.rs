//! Upload life cycle: ownership and deletion, restarts, the sweeper,
//! retried completions, and simple multipart uploads.

use std::time::Duration;

use chalktalk::http::{ApiError, sweep_once};

use super::harness::{Uploads, data, sha, staged};
use crate::common::client;

#[tokio::test]
async fn uploads_are_private() {
    let h = Uploads::start(|_| {}).await;
    let id = h.create_video("u1", 10).await;
    let path = format!("/api/v1/uploads/{id}");
    assert_eq!(h.head("u2", &id).await.status, 404);
    assert_eq!(
        h.send("GET", &path, &[h.bearer("u2")], vec![]).await.status,
        404
    );
    assert_eq!(h.patch("u2", &id, 0, &[1; 10], &[]).await.status, 404);
    assert_eq!(
        h.send("DELETE", &path, &[h.bearer("u2")], vec![])
            .await
            .status,
        404
    );
    let unknown = "AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(h.head("u1", unknown).await.status, 404);
    assert_eq!(h.head("u1", &id).await.offset(), 0);
    // DELETE by the owner.
    let r = h.send("DELETE", &path, &[h.bearer("u1")], vec![]).await;
    assert_eq!(r.status, 204);
    assert_eq!(h.head("u1", &id).await.status, 404);
    assert_eq!(staged(h.staging()), Vec::<String>::new());
}

#[tokio::test]
async fn restart_resumes() {
    let mut h = Uploads::start(|_| {}).await;
    let bytes = data(120_000, 5);
    let id = h.create_video("u1", bytes.len()).await;
    assert_eq!(
        h.patch("u1", &id, 0, &bytes[..60_000], &[]).await.status,
        204
    );
    h.server.stop().await;
    let config = (*h.state.uploads).clone();
    let h2 = Uploads::start_in(h.server.data_dir(), config).await;
    let r = h2.head("u1", &id).await;
    assert_eq!((r.status, r.offset()), (200, 60_000));
    assert_eq!(r.header("upload-length"), Some("120000"));
    assert_eq!(
        h2.patch("u1", &id, 60_000, &bytes[60_000..], &[])
            .await
            .status,
        200
    );
    assert_eq!(h2.done()[0].sha256, sha(&bytes));
}

#[tokio::test]
async fn sweeper_removes_stale_uploads_and_orphans() {
    let h = Uploads::start(|c| c.incomplete_ttl = Duration::from_secs(2)).await;
    let stale = h.create_video("u1", 10).await;
    let old_orphan = h.staging().join("leftover.data");
    std::fs::write(&old_orphan, b"x").unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let fresh = h.create_video("u1", 10).await;
    let new_orphan = h.staging().join("new.data");
    std::fs::write(&new_orphan, b"x").unwrap();
    // stale's record and data file count as one upload, plus one orphan.
    assert_eq!(sweep_once(&h.state, std::time::SystemTime::now()).await, 2);
    assert_eq!(h.head("u1", &stale).await.status, 404);
    assert_eq!(h.head("u1", &fresh).await.status, 200);
    assert!(!old_orphan.exists() && new_orphan.exists());
    assert_eq!(staged(h.staging()).len(), 3);
}

#[tokio::test]
async fn busy_completion_is_retried() {
    let h = Uploads::start(|_| {}).await;
    let bytes = data(1000, 6);
    let id = h.create_video("u1", bytes.len()).await;
    *h.handler.fail_completed.lock().unwrap() = Some(ApiError::busy(3, "transcode queue full"));
    let r = h.patch("u1", &id, 0, &bytes, &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(
        (r.json()["error"].as_str(), r.json()["retry_after"].as_u64()),
        (Some("busy"), Some(3))
    );
    let g = h
        .send(
            "GET",
            &format!("/api/v1/uploads/{id}"),
            &[h.bearer("u1")],
            vec![],
        )
        .await;
    assert_eq!(g.json()["complete"], true);
    // An empty PATCH at offset == size runs the completion again.
    let r = h.patch("u1", &id, 1000, &[], &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.done()[0].sha256, sha(&bytes));
    // A final refusal (not 5xx) removes the upload.
    let id = h.create_video("u1", 3).await;
    *h.handler.fail_completed.lock().unwrap() =
        Some(ApiError::invalid_field("file", "not a video"));
    let r = h.patch("u1", &id, 0, &[1, 2, 3], &[]).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (422, Some("validation_failed"))
    );
    assert_eq!(h.head("u1", &id).await.status, 404);
    assert_eq!(staged(h.staging()), Vec::<String>::new());
}

#[tokio::test]
async fn simple_multipart_uploads() {
    let h = Uploads::start(|_| {}).await;
    let bytes = data(50_000, 7);
    let (ct, body) = client::multipart(&[
        ("kind", None, None, &b"voice_over"[..]),
        ("room", None, None, &b"r-2"[..]),
        ("at_ms", None, None, &b"3000"[..]),
        ("file", Some("take1.m4a"), Some("audio/mp4"), &bytes),
    ]);
    let headers = [h.bearer("u3"), ("Content-Type", ct)];
    let r = h
        .send("POST", "/api/v1/uploads/simple", &headers, body)
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["size"], 50_000);
    let done = h.done();
    assert_eq!(done[0].sha256, sha(&bytes));
    let up = &done[0].upload;
    assert_eq!(
        (up.filename.as_str(), up.room.as_deref(), up.at_ms),
        ("take1.m4a", Some("r-2"), Some(3000.0))
    );
    assert_eq!(up.content_type.as_deref(), Some("audio/mp4"));
    assert_eq!(h.handler.checked.lock().unwrap()[0].size, 50_000);

    // Too large: 413, nothing kept.
    let big = data(100_000, 8);
    let (ct, body) = client::multipart(&[
        ("kind", None, None, &b"video"[..]),
        ("file", Some("big.mp4"), None, &big),
    ]);
    let r = h
        .send(
            "POST",
            "/api/v1/uploads/simple",
            &[h.bearer("u3"), ("Content-Type", ct)],
            body,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (413, Some("too_large"))
    );
    // No kind: 422.
    let (ct, body) = client::multipart(&[("file", Some("a.mp4"), None, b"abc")]);
    let r = h
        .send(
            "POST",
            "/api/v1/uploads/simple",
            &[h.bearer("u3"), ("Content-Type", ct)],
            body,
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["fields"]["kind"], "required");
    assert_eq!(h.done().len(), 1);
    assert_eq!(staged(h.staging()), Vec::<String>::new());
}
