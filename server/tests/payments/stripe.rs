//! The Stripe side of the payment tests, on 127.0.0.1 only: a small HTTP
//! server that answers `POST /v1/checkout/sessions` with the checked-in
//! Checkout Session fixture (filled in from the request, as Stripe would)
//! and forwards every other request to localstripe when one runs
//! ([`LocalStripe`]: PyPI's fake Stripe, started by the test, bound to
//! 127.0.0.1); plus the signed events Stripe would send.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::common::client::send;

pub const SESSION: &str = include_str!("fixtures/checkout_session.json");
pub const EVENT: &str = include_str!("fixtures/event.json");
pub const CHARGE: &str = include_str!("fixtures/charge_refunded.json");
pub const SUBSCRIPTION: &str = include_str!("fixtures/subscription.json");
pub const INVOICE: &str = include_str!("fixtures/invoice.json");
pub const DISPUTE: &str = include_str!("fixtures/dispute.json");
pub const ACCOUNT: &str = include_str!("fixtures/account.json");
pub const ACCOUNT_LINK: &str = include_str!("fixtures/account_link.json");
pub const LOGIN_LINK: &str = include_str!("fixtures/login_link.json");
pub const WEBHOOK_SECRET: &str = "whsec_test_chalktalk_payments";
/// The secret of the endpoint of events on connected accounts.
pub const CONNECT_WEBHOOK_SECRET: &str = "whsec_test_chalktalk_connect";

/// One request the fake server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The form fields of the body, decoded.
    pub form: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    sessions: Arc<Mutex<Vec<Value>>>,
    forward: Option<SocketAddr>,
}

/// The fake Stripe API.
pub struct FakeStripe {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `a%5Bb%5D=c+d` → ("a[b]", "c d").
fn form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let headers: HeaderMap = req.headers().clone();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        idempotency_key: key,
        form: form(&body),
    });
    if method == "POST" && path == "/v1/checkout/sessions" {
        let f = form(&body);
        let get = |k: &str| f.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.clone());
        let mut session: Value = serde_json::from_str(SESSION).expect("fixture");
        let n = s.sessions.lock().unwrap().len();
        let id = format!(
            "cs_test_chalktalk{n:04}{:08x}",
            getrandom::u32().unwrap_or(0)
        );
        let amount: i64 = get("line_items[0][price_data][unit_amount]")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let mut metadata = serde_json::Map::new();
        for (k, v) in &f {
            if let Some(name) = k
                .strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
            {
                metadata.insert(name.to_string(), json!(v));
            }
        }
        session["id"] = json!(id);
        session["url"] = json!(format!("https://checkout.stripe.com/c/pay/{id}"));
        session["amount_subtotal"] = json!(amount);
        session["amount_total"] = json!(amount);
        session["currency"] = json!(get("line_items[0][price_data][currency]"));
        if get("mode").as_deref() == Some("subscription") {
            // Stripe fills these from the Price; the fixture's are kept.
            session["amount_subtotal"] = json!(null);
            session["amount_total"] = json!(null);
            session["payment_method_collection"] = json!("always");
        }
        session["mode"] = json!(get("mode"));
        session["metadata"] = Value::Object(metadata);
        session["client_reference_id"] = json!(get("client_reference_id"));
        session["success_url"] = json!(get("success_url"));
        session["cancel_url"] = json!(get("cancel_url"));
        s.sessions.lock().unwrap().push(session.clone());
        return (StatusCode::OK, axum::Json(session)).into_response();
    }
    if method == "POST" && path == "/v1/accounts" {
        let f = form(&body);
        let mut a: Value = serde_json::from_str(ACCOUNT).expect("fixture");
        let id = format!("acct_test{:08x}", getrandom::u32().unwrap_or(0));
        a["id"] = json!(id);
        a["type"] = json!(f.iter().find(|(k, _)| k == "type").map(|(_, v)| v.clone()));
        let user = f.iter().find(|(k, _)| k == "metadata[chalktalk_user]");
        a["metadata"] = json!({"chalktalk_user": user.map(|(_, v)| v.clone())});
        return (StatusCode::OK, axum::Json(a)).into_response();
    }
    if method == "POST" && path == "/v1/account_links" {
        let mut l: Value = serde_json::from_str(ACCOUNT_LINK).expect("fixture");
        let f = form(&body);
        let acct = f
            .iter()
            .find(|(k, _)| k == "account")
            .map(|(_, v)| v.clone());
        l["url"] = json!(format!(
            "https://connect.stripe.com/setup/c/{}/x",
            acct.unwrap_or_default()
        ));
        return (StatusCode::OK, axum::Json(l)).into_response();
    }
    if method == "POST" && path.starts_with("/v1/accounts/") && path.ends_with("/login_links") {
        let l: Value = serde_json::from_str(LOGIN_LINK).expect("fixture");
        return (StatusCode::OK, axum::Json(l)).into_response();
    }
    let Some(to) = s.forward else {
        let err = json!({"error": {"type": "invalid_request_error", "message": format!("Unrecognized request URL ({method}: {path})")}});
        return (StatusCode::NOT_FOUND, axum::Json(err)).into_response();
    };
    let mut fwd: Vec<(&str, String)> = Vec::new();
    for name in [
        "authorization",
        "content-type",
        "idempotency-key",
        "stripe-version",
    ] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            fwd.push((name, v.to_string()));
        }
    }
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let r = send(to, &method, &target, &fwd, body.to_vec()).await;
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, [("content-type", "application/json")], r.body).into_response()
}

impl FakeStripe {
    /// Serves Checkout Sessions; forwards the rest to `forward` if given.
    pub async fn start(forward: Option<SocketAddr>) -> FakeStripe {
        let shared = Shared {
            forward,
            ..Shared::default()
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStripe { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The session answered with id `id`.
    pub fn session(&self, id: &str) -> Value {
        self.shared
            .sessions
            .lock()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .expect("a session the fake server made")
    }
}

/// An event of `kind` about `object`, as Stripe renders it.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> String {
    let mut e: Value = serde_json::from_str(EVENT).expect("fixture");
    e["id"] = json!(id);
    e["type"] = json!(kind);
    e["created"] = json!(created);
    e["data"]["object"] = object;
    e.to_string()
}

/// `checkout.session.completed` for `session`, paid by `payment`.
pub fn completed(id: &str, mut session: Value, payment: &str) -> String {
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["payment_intent"] = json!(payment);
    event(id, "checkout.session.completed", 1_700_000_100, session)
}

/// `charge.dispute.created` on `payment` (a chargeback).
pub fn disputed(id: &str, payment: &str) -> String {
    let mut d: Value = serde_json::from_str(DISPUTE).expect("fixture");
    d["payment_intent"] = json!(payment);
    event(id, "charge.dispute.created", 1_700_000_300, d)
}

/// `account.updated` of Connect account `id`, payable or not.
pub fn account_updated(event_id: &str, id: &str, payable: bool, created: i64) -> String {
    let mut a: Value = serde_json::from_str(ACCOUNT).expect("fixture");
    a["id"] = json!(id);
    a["charges_enabled"] = json!(payable);
    a["payouts_enabled"] = json!(payable);
    a["details_submitted"] = json!(payable);
    event(event_id, "account.updated", created, a)
}

/// `charge.refunded` (in full) of `payment`.
pub fn refunded(id: &str, payment: &str) -> String {
    let mut c: Value = serde_json::from_str(CHARGE).expect("fixture");
    c["payment_intent"] = json!(payment);
    event(id, "charge.refunded", 1_700_000_200, c)
}

/// A `customer.subscription.*` event (`kind`: created, updated, deleted)
/// of `of` = (subscription id, user, price) in `status`, with the fields
/// of `extra` set on the object.
pub fn subscription_event(
    id: &str,
    kind: &str,
    created: i64,
    of: (&str, &str, &str),
    status: &str,
    extra: Value,
) -> String {
    let (sub, user, price) = of;
    let mut s: Value = serde_json::from_str(SUBSCRIPTION).expect("fixture");
    s["id"] = json!(sub);
    s["status"] = json!(status);
    s["metadata"] = json!({"chalktalk_user": user, "chalktalk_plan": "from checkout"});
    s["items"]["data"][0]["price"]["id"] = json!(price);
    s["items"]["data"][0]["plan"]["id"] = json!(price);
    s["items"]["data"][0]["subscription"] = json!(sub);
    if let Value::Object(m) = extra {
        for (k, v) in m {
            s[k] = v;
        }
    }
    event(id, &format!("customer.subscription.{kind}"), created, s)
}

/// `invoice.<kind>` (payment_failed, paid) of subscription `sub`.
pub fn invoice_event(id: &str, kind: &str, created: i64, sub: &str, user: &str) -> String {
    let mut i: Value = serde_json::from_str(INVOICE).expect("fixture");
    i["parent"]["subscription_details"]["subscription"] = json!(sub);
    i["parent"]["subscription_details"]["metadata"] = json!({"chalktalk_user": user});
    if kind == "paid" {
        i["status"] = json!("paid");
        i["amount_paid"] = json!(1000);
        i["amount_remaining"] = json!(0);
    }
    event(id, &format!("invoice.{kind}"), created, i)
}

/// The header Stripe's endpoint of events on connected accounts would send.
pub fn sign_connect(body: &str) -> String {
    chalktalk_adapters::payments::sign_webhook(body, CONNECT_WEBHOOK_SECRET, None)
}

/// The `Stripe-Signature` header Stripe would send with `body`.
pub fn sign(body: &str) -> String {
    chalktalk_adapters::payments::sign_webhook(body, WEBHOOK_SECRET, None)
}

/// localstripe (PyPI), installed by scripts/install-localstripe.sh and run
/// here bound to 127.0.0.1 only (its own entry point listens on every
/// interface), without its pickle file in /tmp.
pub struct LocalStripe {
    pub addr: SocketAddr,
    child: Child,
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WRAPPER: &str = "import sys
from aiohttp import web
import localstripe.resources as r
import localstripe.server as s
r.Store.dump_to_disk = lambda self: None
web.run_app(s.app, host='127.0.0.1', port=int(sys.argv[1]), print=None)
";

impl LocalStripe {
    /// The virtualenv's python, or `None` (with the reason) when
    /// localstripe is not installed.
    pub fn python() -> Result<std::path::PathBuf, String> {
        let dir = std::env::var("CHALKTALK_TOOLS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                    .join(".cache/chalktalk")
            });
        let py = dir.join("localstripe/bin/python");
        if py.exists() {
            Ok(py)
        } else {
            Err(format!(
                "localstripe is not installed ({} missing): run scripts/install-localstripe.sh",
                py.display()
            ))
        }
    }

    pub async fn start() -> LocalStripe {
        let py = LocalStripe::python().unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let mut child = Command::new(py)
            .arg("-c")
            .arg(WRAPPER)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start localstripe");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return LocalStripe { addr, child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("localstripe did not listen on {addr} within 10 s");
    }

    /// A form POST to localstripe with the test key.
    pub async fn post(&self, path: &str, form: &str) -> Value {
        let r = send(
            self.addr,
            "POST",
            path,
            &[
                ("Authorization", "Bearer sk_test_chalktalk".to_string()),
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_string(),
                ),
            ],
            form.as_bytes().to_vec(),
        )
        .await;
        assert!(
            r.status < 300,
            "localstripe {path}: {} {}",
            r.status,
            r.text()
        );
        r.json()
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = send(
            self.addr,
            "GET",
            path,
            &[("Authorization", "Bearer sk_test_chalktalk".to_string())],
            Vec::new(),
        )
        .await;
        assert!(
            r.status < 300,
            "localstripe {path}: {} {}",
            r.status,
            r.text()
        );
        r.json()
    }
}
