//! Helpers for media tests: generated clips, resumable uploads over the
//! tests' raw HTTP client, and waiting for `media` progress frames.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chalktalk_media::sample::{SampleSpec, generate};
use chalktalk_protocol::{MediaProgress, Role, ServerFrame};

use super::TestServer;
use super::client;

pub const LONG: Duration = Duration::from_secs(120);

pub fn addr(s: &TestServer) -> SocketAddr {
    s.addr()
}

pub fn clip(dir: &Path, name: &str, spec: SampleSpec) -> Vec<u8> {
    let p = dir.join(name);
    generate(&p, &spec).expect("generate");
    std::fs::read(p).expect("read clip")
}

/// Resumable upload in two chunks; returns the completion response.
pub async fn upload(
    s: &TestServer,
    user: &str,
    role: Role,
    name: &str,
    bytes: &[u8],
    extra: serde_json::Value,
) -> client::Resp {
    upload_to(addr(s), &s.token(user, role), name, bytes, extra).await
}

/// [`upload`] to any node at `addr` with a token.
pub async fn upload_to(
    addr: SocketAddr,
    token: &str,
    name: &str,
    bytes: &[u8],
    extra: serde_json::Value,
) -> client::Resp {
    let auth = ("Authorization", format!("Bearer {token}"));
    let mut body = serde_json::json!({"kind": "video", "filename": name, "size": bytes.len()});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = client::send(
        addr,
        "POST",
        "/api/v1/uploads",
        &[auth.clone(), ("Content-Type", "application/json".into())],
        body.to_string().into_bytes(),
    )
    .await;
    if r.status != 201 {
        return r;
    }
    let id = r.json()["id"].as_str().expect("id").to_string();
    let half = bytes.len() / 2;
    let mut last = None;
    for (off, chunk) in [(0, &bytes[..half]), (half, &bytes[half..])] {
        let r = client::send(
            addr,
            "PATCH",
            &format!("/api/v1/uploads/{id}"),
            &[
                auth.clone(),
                ("Upload-Offset", off.to_string()),
                ("Content-Type", "application/offset+octet-stream".into()),
            ],
            chunk.to_vec(),
        )
        .await;
        last = Some(r);
    }
    last.expect("two chunks")
}

pub async fn media_frame(
    c: &mut chalktalk_protocol::client::Client,
    asset: &str,
    wait: Duration,
    want: impl Fn(&MediaProgress) -> bool,
) -> MediaProgress {
    c.wait_for(wait, |f| match f {
        ServerFrame::Media(p) if p.asset == asset && want(p) => Some(p.clone()),
        _ => None,
    })
    .await
    .unwrap_or_else(|| panic!("no matching media frame for {asset}"))
}

pub async fn get(s: &TestServer, path: &str, range: Option<&str>) -> client::Resp {
    let headers: Vec<(&str, String)> = range
        .map(|r| ("Range", r.to_string()))
        .into_iter()
        .collect();
    client::send(addr(s), "GET", path, &headers, Vec::new()).await
}
