//! The upload and media HTTP API against a real server on 127.0.0.1 with
//! real files: resumable uploads (chunks, interruptions, checksums, offsets,
//! limits, ownership, restarts, the sweeper, deletion, retried completion),
//! simple multipart uploads (tests/uploads/lifecycle.rs), and signed media
//! links (tests/uploads/media.rs).

mod common;
/// The suite's other files, in tests/uploads/ (its fixture in harness.rs).
mod uploads {
    pub mod harness;
    pub mod lifecycle;
    pub mod media;
}

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chalktalk::http::ApiError;
use common::client;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use uploads::harness::{Uploads, data, sha, staged};

#[tokio::test]
async fn chunks_complete_with_exact_bytes() {
    let h = Uploads::start(|_| {}).await;
    let bytes = data(200_000, 1);
    let r = h
        .create(
            "u1",
            json!({"kind": "voice_over", "filename": "vo.m4a", "size": bytes.len(),
                   "content_type": "audio/mp4", "room": "r-1", "at_ms": 1250.5}),
        )
        .await;
    assert_eq!(r.status, 201);
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 22);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/uploads/{id}").as_str())
    );
    assert_eq!(
        (v["offset"].as_u64(), v["size"].as_u64()),
        (Some(0), Some(200_000))
    );
    assert_eq!(v["max_chunk_bytes"], 65536);
    assert!(v["expires_ms"].as_u64().unwrap() > 0);

    let mut offset = 0;
    for chunk in bytes.chunks(65_536) {
        let r = h.patch("u1", &id, offset, chunk, &[]).await;
        offset += chunk.len() as u64;
        assert_eq!(r.offset(), offset);
        if offset < bytes.len() as u64 {
            assert_eq!(r.status, 204);
            let g = h
                .send(
                    "GET",
                    &format!("/api/v1/uploads/{id}"),
                    &[h.bearer("u1")],
                    vec![],
                )
                .await;
            assert_eq!(g.json()["offset"], offset);
            assert_eq!(g.json()["complete"], false);
            assert_eq!(g.header("cache-control"), Some("no-store"));
        } else {
            assert_eq!(r.status, 200);
            assert_eq!(
                r.json(),
                json!({"asset": id, "size": 200_000, "queued": true})
            );
        }
    }
    let done = h.done();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].user.as_str(), done[0].len), ("u1", bytes.len()));
    assert_eq!(done[0].sha256, sha(&bytes));
    let up = &done[0].upload;
    assert_eq!(
        (up.filename.as_str(), up.room.as_deref(), up.at_ms),
        ("vo.m4a", Some("r-1"), Some(1250.5))
    );
    assert_eq!(up.content_type.as_deref(), Some("audio/mp4"));
    // The record is gone; nothing is left in staging.
    assert_eq!(h.head("u1", &id).await.status, 404);
    assert_eq!(staged(h.staging()), Vec::<String>::new());
}

/// Starts a PATCH announcing `declared` bytes, sends `part`, and returns the
/// open socket.
async fn start_patch(
    h: &Uploads,
    id: &str,
    offset: u64,
    declared: usize,
    part: &[u8],
    extra: &[(&str, String)],
) -> tokio::net::TcpStream {
    let mut sock = tokio::net::TcpStream::connect(h.server.addr())
        .await
        .unwrap();
    let mut headers = vec![
        h.bearer("u1"),
        ("Content-Type", "application/offset+octet-stream".into()),
        ("Upload-Offset", offset.to_string()),
        ("Content-Length", declared.to_string()),
    ];
    headers.extend_from_slice(extra);
    let head = client::head("PATCH", &format!("/api/v1/uploads/{id}"), &headers);
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(part).await.unwrap();
    sock.flush().await.unwrap();
    sock
}

/// PATCHes, retrying while an earlier (cut) request still holds the upload.
async fn patch_when_free(h: &Uploads, id: &str, offset: u64, chunk: &[u8]) -> client::Resp {
    for _ in 0..200 {
        let r = h.patch("u1", id, offset, chunk, &[]).await;
        if r.status != 409 || r.json()["error"] != "upload_busy" {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("upload stayed busy");
}

#[tokio::test]
async fn interrupted_patch_keeps_received_bytes() {
    let h = Uploads::start(|c| {
        // Above axum's 2 MB default body limit: PATCH bodies are not capped by it.
        c.max_chunk_bytes = 4 << 20;
        c.max_upload_bytes = 4 << 20;
        c.body_idle_timeout = Duration::from_millis(300);
    })
    .await;
    let bytes = data(3_670_016, 2);
    let id = h.create_video("u1", bytes.len()).await;
    // Announce 1 MiB, send half of it, drop the connection.
    let half = 512 * 1024;
    let sock = start_patch(&h, &id, 0, 1 << 20, &bytes[..half], &[]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(sock);
    h.wait_offset("u1", &id, half as u64).await;

    // With a checksum a cut chunk is discarded whole.
    let sum = (
        "Upload-Checksum",
        format!("sha256 {}", STANDARD.encode(sha(&bytes[half..]))),
    );
    let sock = start_patch(
        &h,
        &id,
        half as u64,
        1 << 20,
        &bytes[half..half + 1000],
        &[sum],
    )
    .await;
    drop(sock);
    let r = patch_when_free(&h, &id, half as u64, &bytes[half..half + 1000]).await;
    assert_eq!((r.status, r.offset()), (204, half as u64 + 1000));

    // A client that stalls (socket open, nothing sent) for body_idle_timeout:
    // what arrived is kept too.
    let at = half + 1000;
    let sock = start_patch(&h, &id, at as u64, 100_000, &bytes[at..at + 30_000], &[]).await;
    h.wait_offset("u1", &id, at as u64 + 30_000).await;
    drop(sock);

    // Continue from the last stored byte.
    let at = at + 30_000;
    let r = patch_when_free(&h, &id, at as u64, &bytes[at..]).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.done()[0].sha256, sha(&bytes));
}

#[tokio::test]
async fn checksums() {
    let h = Uploads::start(|_| {}).await;
    let bytes = data(100_000, 3);
    let id = h.create_video("u1", bytes.len()).await;
    let sum = |b: &[u8]| {
        (
            "Upload-Checksum",
            format!("sha256 {}", STANDARD.encode(sha(b))),
        )
    };
    let (a, b) = bytes.split_at(50_000);
    let r = h.patch("u1", &id, 0, a, &[sum(a)]).await;
    assert_eq!((r.status, r.offset()), (204, 50_000));
    // A wrong digest: 460 and nothing appended.
    let r = h.patch("u1", &id, 50_000, b, &[sum(a)]).await;
    assert_eq!(r.status, 460);
    assert_eq!(r.json()["error"], "checksum_mismatch");
    assert_eq!(h.head("u1", &id).await.offset(), 50_000);
    let r = h
        .patch(
            "u1",
            &id,
            50_000,
            b,
            &[("Upload-Checksum", "md5 AAAA".into())],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "unsupported_checksum");
    let r = h.patch("u1", &id, 50_000, b, &[sum(b)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.done()[0].sha256, sha(&bytes));
}

#[tokio::test]
async fn offsets_types_and_sizes() {
    let h = Uploads::start(|_| {}).await;
    let bytes = data(100_000, 4);
    let id = h.create_video("u1", bytes.len()).await;
    h.patch("u1", &id, 0, &bytes[..1000], &[]).await;
    let r = h.patch("u1", &id, 0, &bytes[..1000], &[]).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["error"], "offset_mismatch");
    assert_eq!(r.json()["offset"], 1000);
    // Missing Upload-Offset; wrong content type.
    let path = format!("/api/v1/uploads/{id}");
    let r = h
        .send(
            "PATCH",
            &path,
            &[
                h.bearer("u1"),
                ("Content-Type", "application/offset+octet-stream".into()),
            ],
            vec![1],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .send(
            "PATCH",
            &path,
            &[h.bearer("u1"), ("Upload-Offset", "1000".into())],
            vec![1],
        )
        .await;
    assert_eq!(r.status, 415);
    // A chunk above max_chunk_bytes (refused from its Content-Length).
    let r = h
        .patch("u1", &id, 1000, &bytes[1000..1000 + 65_537], &[])
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "too_large");
    // Past the declared size.
    let small = h.create_video("u1", 10).await;
    let r = h.patch("u1", &small, 0, &[7; 11], &[]).await;
    assert_eq!(r.status, 413);
    assert_eq!(h.head("u1", &small).await.offset(), 0);
    assert_eq!(h.head("u1", &id).await.offset(), 1000);
}

#[tokio::test]
async fn creation_is_validated() {
    let h = Uploads::start(|_| {}).await;
    let r = h
        .create(
            "u1",
            json!({"kind": "video", "filename": "a.mp4", "size": 2 << 20}),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "too_large");
    assert!(r.json()["message"].as_str().unwrap().contains("limit"));
    let bad = h
        .send(
            "POST",
            "/api/v1/uploads",
            &[h.bearer("u1")],
            b"{\"kind\": ".to_vec(),
        )
        .await;
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (400, Some("bad_request"))
    );
    let r = h
        .create("u1", json!({"kind": "gif", "filename": "", "size": 5}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"], "validation_failed");
    assert!(r.json()["fields"]["kind"].is_string());
    assert!(r.json()["fields"]["filename"].is_string());
    // No token, a forged one.
    let body = json!({"kind": "video", "filename": "a.mp4", "size": 5}).to_string();
    let r = h
        .send("POST", "/api/v1/uploads", &[], body.clone().into_bytes())
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let forged = chalktalk_services::auth::Auth::new(b"not-the-secret-not-the-secret-xx")
        .mint("u1", chalktalk_protocol::Role::Coach, 60)
        .unwrap();
    let auth = ("Authorization", format!("Bearer {forged}"));
    let r = h
        .send(
            "POST",
            "/api/v1/uploads",
            std::slice::from_ref(&auth),
            body.into_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);
    let id = h.create_video("u1", 5).await;
    assert_eq!(
        h.send("HEAD", &format!("/api/v1/uploads/{id}"), &[auth], vec![])
            .await
            .status,
        401
    );
    // The handler can refuse before any byte; nothing is staged then.
    *h.handler.refuse_check.lock().unwrap() = Some(ApiError::new(
        StatusCode::FORBIDDEN,
        "not_member",
        "not in room r-9",
    ));
    let r = h
        .create(
            "u2",
            json!({"kind": "video", "filename": "a.mp4", "size": 5, "room": "r-9"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("not_member"))
    );
    assert_eq!(staged(h.staging()).len(), 2, "only u1's upload");
}
