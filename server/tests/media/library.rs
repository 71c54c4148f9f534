//! A user's library over REST on a real node: `GET /api/v1/me/assets`
//! lists a processed video with its published files and the bytes they
//! take, `DELETE /api/v1/assets/{id}` removes the files, the original and
//! the record (others' assets are not found), and the per-user quota
//! refuses an upload that would go above it with `quota_exceeded`.

use chalktalk_media::sample::SampleSpec;

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_listed_with_their_storage_deleted_and_held_to_a_quota() {
    let d = tempfile::tempdir().unwrap();
    let video = clip(d.path(), "drill.mp4", SampleSpec::small(2.0, 640, 360));
    let size = video.len() as u64;
    // Room for this video and half of another one.
    let quota = size + size / 2;
    let s = TestServer::start_with(move |c| c.media.quota_bytes = Some(quota)).await;
    let mut coach = s.connect("coach", Role::Coach, "laptop").await;
    let api = s.api();
    let tok = s.token("coach", Role::Coach);

    let r = upload(
        &s,
        "coach",
        Role::Coach,
        "drill.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().expect("asset id").to_string();
    media_frame(&mut coach, &id, LONG, |p| p.stage == MediaStage::Ready).await;

    let lib = api.get("/api/v1/me/assets", Some(&tok)).await;
    assert_eq!(lib.status, 200);
    let lib = lib.json();
    assert_eq!(lib["used_bytes"], size);
    assert_eq!(lib["quota_bytes"], quota);
    let assets = lib["assets"].as_array().expect("assets");
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0]["asset"]["id"], id.as_str());
    assert_eq!(assets[0]["asset"]["stage"], "ready");
    let files = assets[0]["files"].as_u64().expect("files");
    let stored = assets[0]["stored_bytes"].as_u64().expect("stored_bytes");
    assert!(files >= 3, "renditions, playlists, poster: {files}");
    assert!(
        stored > size,
        "the original and the published files: {stored}"
    );
    let blobs = s.app().media.as_ref().expect("media").blobs.clone();
    assert_eq!(
        blobs.list(&format!("media/{id}/")).await.unwrap().len() as u64,
        files
    );

    // The quota: a second copy would not fit; the answer says why.
    let r = upload(
        &s,
        "coach",
        Role::Coach,
        "again.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status, 413, "{:?}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(
        (body["used_bytes"].as_u64(), body["quota_bytes"].as_u64()),
        (Some(size), Some(quota))
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("quota"))
    );

    // Someone else cannot delete it (nor tell it exists).
    let other = s.token("other-coach", Role::Coach);
    let r = api
        .delete(&format!("/api/v1/assets/{id}"), Some(&other))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, "not_found".into())
    );
    let r = api.delete("/api/v1/assets/a-nope", Some(&tok)).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        api.delete(&format!("/api/v1/assets/{id}"), None)
            .await
            .status,
        401
    );

    // Deleted: files, original and record gone; the link request too.
    let r = api
        .delete(&format!("/api/v1/assets/{id}"), Some(&tok))
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["freed_bytes"], size);
    assert!(
        blobs
            .list(&format!("media/{id}/"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        blobs
            .list(&format!("uploads/{id}/"))
            .await
            .unwrap()
            .is_empty()
    );
    let lib = api.get("/api/v1/me/assets", Some(&tok)).await.json();
    assert_eq!(lib["assets"].as_array().map(Vec::len), Some(0));
    assert_eq!(lib["used_bytes"], 0);
    let r = coach
        .request(ClientMsg::MediaLink { asset: id.clone() })
        .await;
    assert_eq!(err_code(r), ErrorCode::NotFound);
    assert_eq!(
        api.delete(&format!("/api/v1/assets/{id}"), Some(&tok))
            .await
            .status,
        404
    );

    // With the space freed, the upload fits again.
    let r = upload(
        &s,
        "coach",
        Role::Coach,
        "again.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
}
