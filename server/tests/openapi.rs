//! The OpenAPI document against a real node: it is served, it documents the
//! REST routes with their security and error bodies, every documented
//! operation is really routed (no drift between document and router), and
//! the /api/docs page is self-contained.

mod common;

use common::TestServer;
use common::client::send;
use serde_json::Value;

async fn get(s: &TestServer, path: &str) -> common::client::Resp {
    let addr = s.addr();
    send(addr, "GET", path, &[], Vec::new()).await
}

#[tokio::test]
async fn the_document_lists_the_rest_api_and_every_listed_operation_is_routed() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let r = get(&s, "/api/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/api/v1/auth/register",
        "/api/v1/auth/signin",
        "/api/v1/auth/mfa",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/external",
        "/api/v1/me",
        "/api/v1/sessions",
        "/api/v1/sessions/{sid}",
        "/api/v1/mfa/totp/enroll",
        "/api/v1/mfa/totp/confirm",
        "/api/v1/uploads",
        "/api/v1/uploads/simple",
        "/api/v1/uploads/{id}",
        "/api/v1/relationships",
        "/api/v1/relationships/{coach}/{athlete}/{action}",
        "/api/v1/profiles/{user}",
        "/api/v1/videos",
        "/api/v1/videos/{id}",
        "/api/v1/videos/{id}/reviews",
        "/api/v1/threads/{id}/messages",
        "/api/v1/me/rooms",
        "/api/v1/me/threads",
        "/api/v1/me/assets",
        "/api/v1/assets/{id}",
        "/api/v1/analytics/me",
        "/api/v1/admin/users/{id}/plan",
        "/api/v1/admin/grants",
        "/api/v1/admin/grants/{athlete}/{video}",
        "/api/v1/programs",
        "/api/v1/programs/{id}",
        "/api/v1/programs/{id}/publish",
        "/api/v1/programs/{id}/unpublish",
        "/api/v1/coaches/{id}/programs",
        "/api/v1/programs/{id}/enroll",
        "/api/v1/programs/{id}/items/{item}/done",
        "/api/v1/programs/{id}/progress",
        "/api/v1/me/programs",
        "/api/v1/programs/{id}/checkout",
        "/api/v1/orders/{id}/refund",
        "/api/v1/webhooks/stripe",
    ] {
        assert!(paths.contains_key(p), "{p} is not documented");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["schemas"]["Tokens"].is_object());
    assert!(doc["components"]["schemas"]["ProgramInput"].is_object());
    assert!(doc["components"]["schemas"]["CheckoutInput"].is_object());

    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path}: secured without 401"
                );
            }
            // Routed: without a token and with an empty JSON object, the
            // node answers with its own JSON (never axum's bare 404/405).
            let concrete = [
                "sid", "id", "coach", "athlete", "action", "user", "video", "item",
            ]
            .iter()
            .fold(path.clone(), |p, k| p.replace(&format!("{{{k}}}"), "nope"));
            let headers = [("Content-Type", "application/json".to_string())];
            let r = send(
                addr,
                &method.to_uppercase(),
                &concrete,
                &headers,
                b"{}".to_vec(),
            )
            .await;
            assert_ne!(r.status, 405, "{method} {path} is not routed");
            if r.status >= 400 && method != "head" {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_else(|_| {
                    panic!("{method} {path}: {} with a non-JSON body", r.status)
                });
                assert!(body["error"].is_string(), "{method} {path}: {body}");
            }
            if secured {
                assert_eq!(r.status, 401, "{method} {path} answered without a token");
            }
            checked += 1;
        }
    }
    assert!(checked >= 44, "{checked}");
    // The four methods of one upload share a path.
    let upload = doc["paths"]["/api/v1/uploads/{id}"]
        .as_object()
        .expect("upload");
    for m in ["get", "head", "patch", "delete"] {
        assert!(upload.contains_key(m), "{m}");
    }
}

#[tokio::test]
async fn the_docs_page_is_self_contained() {
    let s = TestServer::start().await;
    let r = get(&s, "/api/docs").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let csp = r.header("content-security-policy").expect("csp");
    assert!(csp.contains("default-src 'none'"));
    let html = String::from_utf8(r.body.clone()).expect("utf-8");
    assert!(html.contains("/api/openapi.json"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "loads nothing from elsewhere"
    );
}
