//! TLS to ScyllaDB, checked on the wire: with `tls=true&ca=PATH` the first
//! bytes a node receives are a TLS handshake record, without it a CQL
//! frame; a bad CA file is refused before anything is dialed. (No
//! ScyllaDB speaks TLS here: the listener reads the first bytes and hangs
//! up, so the session itself fails, as it must.)

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{ScyllaOptions, ScyllaSetupError, ScyllaStore};

/// A throwaway self-signed CA certificate (its key was not kept): only
/// something for the client to trust.
const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBwTCCAWegAwIBAgIUTZc3uxeJnoGe5T+TJo+Oju2X7qgwCgYIKoZIzj0EAwIw
NTEzMDEGA1UEAwwqY2hhbGt0YWxrIHRlc3QgQ0EgKHRocm93YXdheSwgbm8ga2V5
IGtlcHQpMCAXDTI2MTIwNDE4MDE1MFoYDzIxMjYxMTEwMTgwMTUwWjA1MTMwMQYD
VQQDDCpjaGFsa3RhbGsgdGVzdCBDQSAodGhyb3dhd2F5LCBubyBrZXkga2VwdCkw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASpE7eCDcHZwyQ1XWaY3tPwjMGiDlz8
y4PCPweJ6CHPi5wdhdzL1ICbfYkKxKFzXDqutMzJQlZlcXcJ+QoETRImo1MwUTAd
BgNVHQ4EFgQUk5C3Pw19cnLTSJHhKacB/5cgsnEwHwYDVR0jBBgwFoAUk5C3Pw19
cnLTSJHhKacB/5cgsnEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF
AiAW0FoFbf7iHkbRtdQ1E425AX2qHUyB50TIWXKvda/vKgIhAImG709wBaIc3khA
GDk25A4/If2KHIVp2FTEZCubNliT
-----END CERTIFICATE-----\n";

/// The first bytes the driver sends to a listener that then hangs up.
async fn first_bytes(tls_ca: Option<&std::path::Path>) -> (Vec<u8>, Result<(), ScyllaSetupError>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut b = [0u8; 3];
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut b)).await;
        b.to_vec()
    });
    let mut url = format!("scylla://127.0.0.1:{port}/ks?timeout_ms=1500");
    if let Some(ca) = tls_ca {
        url.push_str(&format!("&tls=true&ca={}", ca.display()));
    }
    let opts = ScyllaOptions::from_url(&url).unwrap();
    let result = ScyllaStore::connect(&opts).await.map(drop);
    (seen.await.unwrap(), result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_true_speaks_tls_and_tls_false_speaks_cql() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, TEST_CA).unwrap();
    let (bytes, result) = first_bytes(Some(&ca)).await;
    assert_eq!(
        bytes[..2],
        [0x16, 0x03],
        "a TLS handshake record: {bytes:x?}"
    );
    assert!(
        matches!(result, Err(ScyllaSetupError::Unreachable(_))),
        "{result:?}"
    );
    let (bytes, result) = first_bytes(None).await;
    // A CQL request header: version 4 or 5 (high bit clear: a request).
    assert!(matches!(bytes[0], 0x04 | 0x05), "a CQL frame: {bytes:x?}");
    assert!(result.is_err());
}

#[tokio::test]
async fn a_bad_ca_file_is_refused_before_dialing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let opts = ScyllaOptions::from_url(&format!(
        "scylla://127.0.0.1:1/ks?tls=true&ca={}",
        missing.display()
    ))
    .unwrap();
    let e = ScyllaStore::connect(&opts).await.err().unwrap().to_string();
    assert!(e.contains("missing.pem"), "{e}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let opts = ScyllaOptions::from_url(&format!(
        "scylla://127.0.0.1:1/ks?tls=true&ca={}",
        empty.display()
    ))
    .unwrap();
    let e = ScyllaStore::connect(&opts).await.err().unwrap().to_string();
    assert!(e.contains("no certificate"), "{e}");
}
