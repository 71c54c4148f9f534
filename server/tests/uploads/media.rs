//! Signed media links: serving blobs of `media/{asset}/...` with ranges,
//! HEAD, caching headers, and refusals of expired, tampered, foreign and
//! traversing links.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chalktalk_adapters::blob::BlobStore;
use chalktalk_services::media::UrlSigner;
use chalktalk_services::media::sign::asset_key;

use super::harness::{LINK_KEY, Uploads, data};
use crate::common::client::Resp;

const HOUR: Duration = Duration::from_secs(3600);

async fn put(h: &Uploads, asset: &str, path: &str, bytes: &[u8]) {
    h.blobs
        .put(
            &asset_key(asset, path),
            Bytes::copy_from_slice(bytes),
            "x/y",
        )
        .await
        .unwrap();
}

async fn get(h: &Uploads, url: &str, headers: &[(&str, String)]) -> Resp {
    h.send("GET", url, headers, vec![]).await
}

#[tokio::test]
async fn links_serve_files_with_ranges() {
    let h = Uploads::start(|_| {}).await;
    // Over 2 MiB: streamed as several blob reads.
    let video = data(2_500_000, 11);
    put(&h, "a1", "video.mp4", &video).await;
    let url = h.state.signer.link("a1", "video.mp4", HOUR);
    let r = get(&h, &url, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, video);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-length"), Some("2500000"));
    let cache = r.header("cache-control").unwrap();
    assert!(
        cache.starts_with("private, max-age=") && cache.ends_with(", immutable"),
        "{cache}"
    );
    let age: u64 = cache["private, max-age=".len()..cache.len() - ", immutable".len()]
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&age), "{age}");
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));

    // HEAD: the same headers, no body.
    let r = h.send("HEAD", &url, &[], vec![]).await;
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some("2500000"))
    );
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let range = |v: &str| [("Range", v.to_string())];
    let r = get(&h, &url, &range("bytes=0-9")).await;
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 0-9/2500000"))
    );
    assert_eq!(r.body, video[..10]);
    let r = get(&h, &url, &range("bytes=1048570-")).await;
    assert_eq!(
        r.header("content-range"),
        Some("bytes 1048570-2499999/2500000")
    );
    assert_eq!(r.body, video[1_048_570..]);
    let r = get(&h, &url, &range("bytes=-100")).await;
    assert_eq!((r.status, r.header("content-length")), (206, Some("100")));
    assert_eq!(r.body, video[2_499_900..]);
    let r = get(&h, &url, &range("bytes=2000000-9999999")).await;
    assert_eq!(r.body, video[2_000_000..]);
    // Several ranges: the whole file.
    let r = get(&h, &url, &range("bytes=0-1,5-6")).await;
    assert_eq!((r.status, r.body.len()), (200, video.len()));
    let r = get(&h, &url, &range("bytes=2500000-")).await;
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */2500000"))
    );
    // Conditional requests.
    let r = get(&h, &url, &[("If-None-Match", etag.clone())]).await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = get(
        &h,
        &url,
        &[
            ("Range", "bytes=0-9".into()),
            ("If-Range", "\"old\"".into()),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn types_and_cache_headers() {
    let h = Uploads::start(|_| {}).await;
    let files = [
        ("hls/master.m3u8", "application/vnd.apple.mpegurl"),
        ("hls/720p/seg_00001.ts", "video/mp2t"),
        ("hls/720p/seg_00001.m4s", "video/iso.segment"),
        ("voice.m4a", "audio/mp4"),
        ("poster.jpg", "image/jpeg"),
        ("sprite.vtt", "text/vtt"),
        ("info.json", "application/json"),
        ("blob.bin", "application/octet-stream"),
    ];
    for (path, _) in files {
        put(&h, "a2", path, path.as_bytes()).await;
    }
    // One token serves every file of the asset (relative playlist URLs).
    let url = h
        .state
        .signer
        .link("a2", "hls/master.m3u8", Duration::from_secs(600));
    let base = url.trim_end_matches("hls/master.m3u8").to_string();
    for (path, ctype) in files {
        let r = get(&h, &format!("{base}{path}"), &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, path.as_bytes());
        assert_eq!(r.header("content-type"), Some(ctype), "{path}");
        let cache = r.header("cache-control").unwrap();
        if path.ends_with(".m3u8") {
            assert_eq!(cache, "private, max-age=2");
        } else {
            assert!(
                cache.contains("immutable") && !cache.contains("max-age=3600"),
                "{cache}"
            );
        }
    }
    // Empty files are served too.
    put(&h, "a2", "empty.json", b"").await;
    let r = get(&h, &format!("{base}empty.json"), &[]).await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));
    // A day at most.
    let long = h
        .state
        .signer
        .link("a2", "poster.jpg", Duration::from_secs(7 * 86_400));
    let r = get(&h, &long, &[]).await;
    assert_eq!(
        r.header("cache-control"),
        Some("private, max-age=86400, immutable")
    );
}

#[tokio::test]
async fn bad_links_are_refused() {
    let h = Uploads::start(|_| {}).await;
    put(&h, "a3", "poster.jpg", b"jpeg").await;
    put(&h, "a4", "poster.jpg", b"other").await;
    let signer = UrlSigner::new(&LINK_KEY);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let expired = format!("/media/{}/a3/poster.jpg", signer.token("a3", now - 10));
    let r = get(&h, &expired, &[]).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("link_expired"))
    );

    let good = signer.token("a3", now + 600);
    let (exp, sig) = good.split_once('.').unwrap();
    let tampered_exp = format!(
        "/media/{}.{sig}/a3/poster.jpg",
        exp.parse::<u64>().unwrap() + 1
    );
    let mut flipped: Vec<char> = sig.chars().collect();
    flipped[3] = if flipped[3] == 'A' { 'B' } else { 'A' };
    let tampered_sig = format!(
        "/media/{exp}.{}/a3/poster.jpg",
        flipped.iter().collect::<String>()
    );
    let other_key = UrlSigner::new(&[1; 32]).link("a3", "poster.jpg", HOUR);
    let wrong_asset = format!("/media/{good}/a4/poster.jpg");
    for url in [
        &tampered_exp,
        &tampered_sig,
        &other_key,
        &wrong_asset,
        &"/media/garbage/a3/poster.jpg".to_string(),
    ] {
        let r = get(&h, url, &[]).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (403, Some("forbidden")),
            "{url}"
        );
    }
    let ok = get(&h, &format!("/media/{good}/a3/poster.jpg"), &[]).await;
    assert_eq!((ok.status, ok.body.as_slice()), (200, b"jpeg".as_slice()));

    for path in [
        "../a4/poster.jpg",
        "%2e%2e/a4/poster.jpg",
        "x//poster.jpg",
        "./poster.jpg",
        "missing.jpg",
    ] {
        let r = get(&h, &format!("/media/{good}/a3/{path}"), &[]).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
}
