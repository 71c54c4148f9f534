//! The payment suite's flows on one node (embedded or PostgreSQL): a coach
//! and an athlete with dev tokens, a video of the coach in the node's media
//! store, and the steps every test shares.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use chalktalk_protocol::Role;
use serde_json::{Value, json};

use super::stripe::{FakeStripe, WEBHOOK_SECRET};
use crate::common::TestServer;
use crate::common::api::Api;
use crate::common::client::Resp;

pub const COACH: &str = "coach-1";

pub const ATHLETE: &str = "athlete-1";

pub struct Node {
    pub node: TestServer,
    pub coach: String,
    pub athlete: String,
}

/// A program body with `price` (`free` or `one_time`, 49.99 EUR) and one
/// video item when `video` is given.
pub fn program_body(price: &str, video: Option<&str>) -> Value {
    let mut items =
        vec![json!({"kind": "drill", "id": "warmup", "title": "Warm-up", "text": "10 min easy"})];
    if let Some(v) = video {
        items.push(json!({"kind": "video", "id": "bar-path", "title": "Bar path", "asset": v}));
    }
    let price = match price {
        "free" => json!({"kind": "free"}),
        "monthly" => {
            json!({"kind": "subscription", "interval": "monthly", "amount": 999, "currency": "eur"})
        }
        _ => json!({"kind": "one_time", "amount": 4999, "currency": "eur"}),
    };
    json!({"title": "Squat fundamentals", "description": "Four weeks", "sport": "weightlifting", "items": items, "price": price})
}

fn stripe_settings(c: &mut chalktalk::config::Config, url: Option<String>) {
    if let Some(url) = url {
        c.payments.secret_key = Some("sk_test_chalktalk".into());
        c.payments.api_base = Some(url);
    }
    c.payments.webhook_secret = Some(WEBHOOK_SECRET.into());
    c.payments.connect_webhook_secret = Some(super::stripe::CONNECT_WEBHOOK_SECRET.into());
    c.payments.platform_fee_percent = 10;
}

/// "ok" or the error code of a WebSocket `media_link`.
pub async fn media_link(c: &chalktalk_protocol::client::Client, asset: &str) -> String {
    let m = chalktalk_protocol::ClientMsg::MediaLink {
        asset: asset.into(),
    };
    match c.request(m).await {
        Ok(_) => "ok".into(),
        Err(chalktalk_protocol::client::ClientError::Server { code, .. }) => code.as_str().into(),
        Err(e) => panic!("transport error {e:?}"),
    }
}

impl Node {
    fn with(node: TestServer) -> Node {
        Node {
            coach: node.token(COACH, Role::Coach),
            athlete: node.token(ATHLETE, Role::Athlete),
            node,
        }
    }

    /// A node on the embedded store whose Stripe is `fake`.
    pub async fn start(fake: Option<&FakeStripe>) -> Node {
        let url = fake.map(FakeStripe::url);
        Node::with(
            TestServer::builder()
                .config(move |c| stripe_settings(c, url))
                .start()
                .await,
        )
    }

    /// The same in data dir `dir` (kept across restarts).
    pub async fn start_in(fake: Option<&FakeStripe>, dir: &Path) -> Node {
        let url = fake.map(FakeStripe::url);
        Node::with(
            TestServer::builder()
                .in_dir(dir)
                .config(move |c| stripe_settings(c, url))
                .start()
                .await,
        )
    }

    /// The same on the PostgreSQL database at `db`.
    pub async fn start_postgres(fake: Option<&FakeStripe>, db: &str) -> Node {
        let url = fake.map(FakeStripe::url);
        Node::with(
            TestServer::builder()
                .postgres(db)
                .config(move |c| stripe_settings(c, url))
                .start()
                .await,
        )
    }

    pub fn api(&self) -> Api {
        self.node.api()
    }

    /// The node's program and billing records.
    pub fn store(&self) -> std::sync::Arc<dyn chalktalk_adapters::programs::ProgramStore> {
        self.node
            .app()
            .programs
            .as_ref()
            .expect("programs")
            .store()
            .clone()
    }

    /// The athlete's stored entitlement to `program` (there must be one).
    pub async fn entitlement(&self, program: &str) -> chalktalk_adapters::programs::Entitlement {
        self.store()
            .entitlement(ATHLETE, program)
            .await
            .expect("read")
            .expect("an entitlement record")
    }

    /// A ready video `id` of the coach in the node's media store.
    pub async fn video(&self, id: &str) {
        let mut a = chalktalk_adapters::conformance::media::asset(id);
        a.owner = COACH.into();
        let media = self.node.app().media.as_ref().expect("media");
        media.store.put_asset(&a).await.expect("put asset");
    }

    /// A published program of the coach showing a new video: (program, video).
    pub async fn program(&self, price: &str) -> (String, String) {
        let video = format!("v-{:08x}", getrandom::u32().unwrap_or(0));
        self.video(&video).await;
        let id = self.create(program_body(price, Some(&video))).await;
        if price != "free" {
            self.make_payable().await;
        }
        self.publish(&id).await;
        (id, video)
    }

    /// `POST path` with `body` as `token`, which must answer `status`.
    async fn post_expect(&self, path: &str, token: &str, body: Value, status: u16) -> Resp {
        let r = self.api().post(path, Some(token), body).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        r
    }

    /// Creates the coach's program `body` (201): its id.
    pub async fn create(&self, body: Value) -> String {
        let r = self
            .post_expect("/api/v1/programs", &self.coach, body, 201)
            .await;
        r.json()["id"].as_str().expect("id").to_string()
    }

    /// Creates the coach's program `body` (201) and publishes it (200):
    /// its id.
    pub async fn published(&self, body: Value) -> String {
        let id = self.create(body).await;
        self.publish(&id).await;
        id
    }

    /// Publishes the coach's program `id` (200).
    pub async fn publish(&self, id: &str) {
        let path = format!("/api/v1/programs/{id}/publish");
        self.post_expect(&path, &self.coach, json!({}), 200).await;
    }

    /// Enrolls the athlete in the free program `id` (201).
    pub async fn enroll(&self, id: &str) {
        let path = format!("/api/v1/programs/{id}/enroll");
        self.post_expect(&path, &self.athlete, json!({}), 201).await;
    }

    pub async fn paid_program(&self) -> (String, String) {
        self.program("one_time").await
    }

    /// Onboards the coach to Stripe Connect (the fake answers the account
    /// and its link) and delivers a signed `account.updated` that makes
    /// them payable; nothing on a node without Stripe. The account id.
    pub async fn make_payable(&self) -> Option<String> {
        let r = self
            .api()
            .post(
                "/api/v1/me/payouts/onboarding",
                Some(&self.coach),
                json!({"refresh_url": "https://example.com/again", "return_url": "https://example.com/done"}),
            )
            .await;
        if r.status == 503 {
            return None;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        let account = r.json()["account"].as_str().expect("account").to_string();
        let ev = format!("evt_acct_{:08x}", getrandom::u32().unwrap_or(0));
        let body = super::stripe::account_updated(&ev, &account, true, 1_700_000_050);
        let r = self.webhook(&body, &super::stripe::sign(&body)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        self.wait_applied(&ev).await;
        Some(account)
    }

    /// Opens a checkout for the athlete: the order id. Checks that the
    /// session was created with an idempotency key.
    pub async fn checkout(&self, program: &str) -> String {
        let r = self.open_checkout(program).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(
            (v["amount"].clone(), v["currency"].clone()),
            (json!(4999), json!("eur"))
        );
        let order = v["order"].as_str().expect("order").to_string();
        assert!(
            v["url"].as_str().is_some_and(|u| u.ends_with(&order)),
            "{v}"
        );
        order
    }

    /// `POST /api/v1/programs/{program}/checkout` as the athlete.
    pub async fn open_checkout(&self, program: &str) -> Resp {
        self.api()
            .post(
                &format!("/api/v1/programs/{program}/checkout"),
                Some(&self.athlete),
                json!({"success_url": "https://example.com/ok", "cancel_url": "https://example.com/no"}),
            )
            .await
    }

    pub async fn webhook(&self, body: &str, signature: &str) -> Resp {
        self.api()
            .req(
                "POST",
                "/api/v1/webhooks/stripe",
                None,
                &[("Stripe-Signature", signature.to_string())],
                Some(body.as_bytes().to_vec()),
            )
            .await
    }

    /// Waits (5 s at most) until the athlete's `GET /api/v1/videos/{id}`
    /// answers `status`.
    pub async fn wait_video(&self, video: &str, status: u16) {
        let mut last = 0;
        for _ in 0..100 {
            last = self
                .api()
                .get(&format!("/api/v1/videos/{video}"), Some(&self.athlete))
                .await
                .status;
            if last == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("video {video}: {last}, not {status}, after 5 s");
    }

    /// Waits (5 s at most) until the event `id` is applied.
    pub async fn wait_applied(&self, id: &str) -> chalktalk_adapters::programs::Receipt {
        let store = self.store();
        for _ in 0..100 {
            if let Some(r) = store.receipt(id).await.expect("receipt")
                && r.applied_ms.is_some()
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("event {id} not applied after 5 s");
    }

    pub async fn programs_over_rest(&self) {
        let api = self.api();
        let (athlete, coach) = (Some(self.athlete.as_str()), Some(self.coach.as_str()));
        // Validation codes.
        let mut bad = program_body("free", None);
        bad["price"] = json!({"kind": "one_time", "amount": 0, "currency": "eur"});
        let r = api.post("/api/v1/programs", coach, bad).await;
        assert_eq!(r.status, 422);
        assert_eq!(r.json()["error"], "validation_failed");
        assert!(
            r.json()["fields"]["price.amount"].is_string(),
            "{}",
            r.text()
        );
        let mut bad = program_body("free", Some("v-not-mine"));
        bad["title"] = json!("ok");
        let r = api.post("/api/v1/programs", coach, bad).await;
        assert_eq!(
            (r.status, r.json()["fields"]["items.asset"].is_string()),
            (422, true),
            "{}",
            r.text()
        );
        let r = api
            .post("/api/v1/programs", athlete, program_body("free", None))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (403, json!("forbidden"))
        );

        // A draft is the coach's only.
        let video = "v-free-1";
        self.video(video).await;
        let r = api
            .post("/api/v1/programs", coach, program_body("free", Some(video)))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let p = r.json();
        let id = p["id"].as_str().expect("id").to_string();
        assert_eq!(p["status"], "draft");
        assert_eq!(p["price"], json!({"kind": "free"}));
        let listed = |v: Value| v["programs"].as_array().map_or(0, Vec::len);
        let of_coach = format!("/api/v1/coaches/{COACH}/programs");
        assert_eq!(listed(api.get(&of_coach, athlete).await.json()), 0);
        assert_eq!(listed(api.get(&of_coach, coach).await.json()), 1);
        assert_eq!(
            api.get(&format!("/api/v1/programs/{id}"), athlete)
                .await
                .status,
            404
        );
        let r = api
            .post(&format!("/api/v1/programs/{id}/enroll"), athlete, json!({}))
            .await;
        assert_eq!(r.status, 404, "a draft is not found");

        // Published: listed, enrollable; the video opens only once enrolled.
        let r = api
            .post(&format!("/api/v1/programs/{id}/publish"), coach, json!({}))
            .await;
        assert_eq!(r.json()["status"], "published");
        assert_eq!(listed(api.get(&of_coach, athlete).await.json()), 1);
        self.wait_video(video, 404).await;
        let r = api
            .post(
                &format!("/api/v1/programs/{id}/items/warmup/done"),
                athlete,
                json!({}),
            )
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (403, json!("not_entitled"))
        );
        let r = api
            .post(&format!("/api/v1/programs/{id}/enroll"), athlete, json!({}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(
            (r.json()["source"].clone(), r.json()["status"].clone()),
            (json!("free"), json!("active"))
        );
        let r = api
            .post(&format!("/api/v1/programs/{id}/enroll"), athlete, json!({}))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (409, json!("already_entitled"))
        );
        self.wait_video(video, 200).await;
        let listed = api.get("/api/v1/videos", athlete).await.json();
        assert!(
            listed["videos"]
                .as_array()
                .is_some_and(|v| v.iter().any(|a| a["id"] == video)),
            "GET /videos lists the program's video: {listed}"
        );

        // Progress on both sides.
        let r = api
            .post(
                &format!("/api/v1/programs/{id}/items/nope/done"),
                athlete,
                json!({}),
            )
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (404, json!("no_such_item"))
        );
        let r = api
            .post(
                &format!("/api/v1/programs/{id}/items/warmup/done"),
                athlete,
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let p = r.json();
        assert_eq!(
            (
                p["done_count"].clone(),
                p["total"].clone(),
                p["percent"].clone()
            ),
            (json!(1), json!(2), json!(50))
        );
        assert!(p["last_activity_ms"].as_u64().is_some());
        let mine = api
            .get(&format!("/api/v1/programs/{id}/progress"), athlete)
            .await
            .json();
        assert_eq!(mine["progress"][0]["percent"], 50);
        let coach_view = api
            .get(&format!("/api/v1/programs/{id}/progress"), coach)
            .await
            .json();
        assert_eq!(coach_view["progress"].as_array().map(Vec::len), Some(1));
        assert_eq!(coach_view["progress"][0]["user"], ATHLETE);

        // Edits after publishing keep the enrollment (and the item's
        // progress, whose id is kept).
        let mut edit = program_body("free", Some(video));
        edit["title"] = json!("Squat fundamentals, v2");
        let r = self
            .api()
            .req(
                "PUT",
                &format!("/api/v1/programs/{id}"),
                coach,
                &[],
                Some(edit.to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["status"], "published");
        self.wait_video(video, 200).await;
        let locker = api.get("/api/v1/me/programs", athlete).await.json();
        assert_eq!(
            locker["programs"][0]["program"]["title"],
            "Squat fundamentals, v2"
        );
        let mine = api
            .get(&format!("/api/v1/programs/{id}/progress"), athlete)
            .await
            .json();
        assert_eq!(mine["progress"][0]["done_count"], 1);

        // A paid program cannot be enrolled in for free.
        let (paid, _) = self.paid_program().await;
        let r = api
            .post(
                &format!("/api/v1/programs/{paid}/enroll"),
                athlete,
                json!({}),
            )
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (402, json!("payment_required"))
        );
    }
}
