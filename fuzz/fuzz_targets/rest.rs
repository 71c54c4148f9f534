//! Any request to any REST route of a real node (`chalktalk::server`, on
//! a loopback port in this process): every route of /api/openapi.json
//! (which covers the JSON bodies of accounts, permissions, profiles,
//! uploads...), with or without a token, with headers and a body from the
//! input; the upload PATCH/POST header and body parsing among them.
//!
//! Input: byte 0 picks the route, byte 1 the caller (no token, athlete,
//! coach, admin), then header lines (`Name: value\n`) up to a 0 byte, then
//! the body. A panic anywhere in the server (a handler task included)
//! aborts the process, and a 500 fails the run: bad input must get a 4xx
//! with a documented code, never an internal error.
#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chalktalk_services::auth::Auth;
use chalktalk::config::Config;
use chalktalk_protocol::Role;
use libfuzzer_sys::fuzz_target;

struct Node {
    addr: SocketAddr,
    auth: Auth,
    /// (method, path with `{params}` filled in)
    routes: Vec<(String, String)>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        // A panic in a server task is caught by tokio; make it a crash.
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic: {info}");
            std::process::abort();
        }));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(dir.path());
        // Cheap password hashes; every request from its own forwarded IP
        // (and its own user) so that rate limits do not hide the routes.
        config.accounts.argon2_m_kib = 8;
        config.accounts.argon2_t = 1;
        config.ratelimit.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = rt
            .block_on(chalktalk::server::start(&config))
            .expect("node starts");
        let addr = running.addr;
        std::mem::forget(running);
        let secret = config.jwt_secret.clone().expect("secret");
        let mut node = Node {
            addr,
            auth: Auth::new(secret.as_bytes()),
            routes: Vec::new(),
            _rt: rt,
            _dir: dir,
        };
        let (status, body) = request(&node, b"GET /api/openapi.json HTTP/1.1\r\n", &[], b"");
        assert_eq!(status, 200, "openapi.json");
        node.routes = routes(&body);
        assert!(node.routes.len() > 10, "{} routes", node.routes.len());
        node
    })
}

/// Every (method, path) of the OpenAPI document, path parameters filled.
fn routes(doc: &[u8]) -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_slice(doc).expect("openapi json");
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys() {
            let filled = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            out.push((method.to_uppercase(), filled));
        }
    }
    out.sort();
    out
}

/// One HTTP/1.1 request on a new connection; returns the status and body.
fn request(node: &Node, start: &[u8], headers: &[u8], body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut req = Vec::with_capacity(start.len() + headers.len() + body.len() + 128);
    req.extend_from_slice(start);
    req.extend_from_slice(b"Host: fuzz\r\nConnection: close\r\n");
    req.extend_from_slice(headers);
    req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    req.extend_from_slice(body);
    if s.write_all(&req).is_err() {
        return (0, Vec::new());
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let status = resp
        .get(9..12)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    let body = match resp.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => resp[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

fuzz_target!(|data: &[u8]| {
    static N: AtomicU64 = AtomicU64::new(1);
    let node = node();
    let [route, caller, rest @ ..] = data else {
        return;
    };
    let (method, path) = &node.routes[*route as usize % node.routes.len()];
    let (head, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut headers = format!(
        "X-Forwarded-For: 10.{}.{}.{}\r\n",
        (n >> 16) & 255,
        (n >> 8) & 255,
        n & 255
    );
    let role = match caller % 4 {
        1 => Some(Role::Athlete),
        2 => Some(Role::Coach),
        3 => Some(Role::Admin),
        _ => None,
    };
    if let Some(role) = role {
        let token = node.auth.mint(&format!("fuzz-{n}"), role, 600).expect("mint");
        headers.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    // Header lines from the input, as far as they are header-shaped (the
    // server's HTTP parser is not the target here).
    for line in head.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name_ok = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.eq_ignore_ascii_case("content-length")
            && !name.eq_ignore_ascii_case("transfer-encoding")
            && !name.eq_ignore_ascii_case("connection")
            && !name.eq_ignore_ascii_case("host");
        let value = value.trim();
        if name_ok && value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            headers.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let start = format!("{method} {path} HTTP/1.1\r\n");
    let (status, resp) = request(node, start.as_bytes(), headers.as_bytes(), body);
    if std::env::var_os("CHALKTALK_FUZZ_TRACE").is_some() {
        eprintln!("{method} {path} -> {status}");
    }
    assert!(
        status != 500,
        "{method} {path}: 500 {}",
        String::from_utf8_lossy(&resp)
    );
});
