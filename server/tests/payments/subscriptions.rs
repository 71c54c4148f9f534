//! Subscriptions to the plans driving the permission matrix: a node with
//! real accounts (an admin, a coach, an athlete with an ACTIVE
//! relationship to the coach), Stripe prices for the three paid plans, and
//! what each side observes: the athlete's row on REST (`GET
//! /api/v1/me/subscription`, `GET /api/v1/analytics/me`: free athletes
//! have no analytics) and on an open WebSocket of the protocol crate's
//! client (a direct thread with their coach: free athletes have no
//! messaging).
#![allow(dead_code)]

use std::time::Duration;

use chalktalk::app::App;
use chalktalk_protocol::client::{Client, ClientError, ClientOptions};
use chalktalk_protocol::{ClientMsg, Role, ThreadKind};
use chalktalk_services::accounts::Plan;
use chalktalk_services::auth::Audience;
use serde_json::{Value, json};

use super::stripe::{FakeStripe, WEBHOOK_SECRET, sign};
use crate::common::TestServer;
use crate::common::api::{Api, PASSWORD};
use crate::common::client::Resp;

pub const PRICE_BASIC: &str = "plan_coach_basic";
pub const PRICE_PREMIUM: &str = "plan_coach_premium";
pub const PRICE_ATHLETE: &str = "plan_athlete_paid";

pub struct Subs {
    pub node: TestServer,
    pub app: App,
    pub admin: (String, String),
    pub coach: (String, String),
    pub athlete: (String, String),
}

impl Subs {
    /// A node whose Stripe is `fake`, past_due grace `grace_secs`.
    pub async fn start(fake: &FakeStripe, grace_secs: u64) -> Subs {
        Subs::start_on(fake, grace_secs, None).await
    }

    /// The same on the PostgreSQL database `db` when given.
    pub async fn start_on(fake: &FakeStripe, grace_secs: u64, db: Option<&str>) -> Subs {
        let url = fake.url();
        let mut b = TestServer::builder();
        if let Some(db) = db {
            b = b.postgres(db);
        }
        let node = b
            .config(move |c| {
                c.accounts.argon2_m_kib = 256;
                c.accounts.argon2_t = 1;
                c.payments.secret_key = Some("sk_test_chalktalk".into());
                c.payments.api_base = Some(url);
                c.payments.webhook_secret = Some(WEBHOOK_SECRET.into());
                c.payments.prices.coach_basic = Some(PRICE_BASIC.into());
                c.payments.prices.coach_premium = Some(PRICE_PREMIUM.into());
                c.payments.prices.athlete_paid = Some(PRICE_ATHLETE.into());
                c.payments.past_due_grace_secs = grace_secs;
            })
            .start()
            .await;
        let app = node.app().clone();
        let mut s = Subs {
            node,
            app,
            admin: Default::default(),
            coach: Default::default(),
            athlete: Default::default(),
        };
        s.admin = s.user("admin", Role::Admin).await;
        s.coach = s.user("coach", Role::Coach).await;
        s.athlete = s.user("athlete", Role::Athlete).await;
        let f = &s.app.perms.facts;
        f.invite(&s.coach.0, &s.athlete.0).await.expect("invite");
        f.respond(&s.coach.0, &s.athlete.0, true)
            .await
            .expect("accept");
        s
    }

    /// A real account of `role` (new: a coach on trial, an athlete free)
    /// and an access token: (id, token).
    async fn user(&self, name: &str, role: Role) -> (String, String) {
        let accounts = self.app.accounts.clone().expect("accounts");
        let a = accounts
            .create_account(
                &format!("{name}-{:08x}@subs.test", getrandom::u32().unwrap_or(0)),
                PASSWORD,
                role,
            )
            .await
            .expect("create")
            .expect("new account");
        let token = self
            .app
            .auth
            .mint_session(&a.id, a.plan(), None, Audience::Access, 3600)
            .expect("mint");
        (a.id, token)
    }

    pub fn api(&self) -> Api {
        self.node.api()
    }

    /// The node's HTTP base URL.
    pub fn http(&self) -> String {
        format!("http://{}", self.node.addr())
    }

    pub async fn webhook(&self, body: &str) -> Resp {
        self.api()
            .req(
                "POST",
                "/api/v1/webhooks/stripe",
                None,
                &[("Stripe-Signature", sign(body))],
                Some(body.as_bytes().to_vec()),
            )
            .await
    }

    /// Posts a signed event and waits (5 s at most) until it is applied.
    pub async fn deliver(&self, body: &str) {
        let r = self.webhook(body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let id = r.json()["received"].as_str().expect("id").to_string();
        let store = self.app.programs.as_ref().expect("programs").store();
        for _ in 0..100 {
            if let Some(r) = store.receipt(&id).await.expect("receipt")
                && r.applied_ms.is_some()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("event {id} not applied after 5 s");
    }

    /// `GET /api/v1/me/subscription` of `token`.
    pub async fn mine(&self, token: &str) -> Value {
        let r = self.api().get("/api/v1/me/subscription", Some(token)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// Waits (10 s at most) until the plan `token` sees is `plan`.
    pub async fn wait_plan(&self, token: &str, plan: &str) {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = self.mine(token).await;
            if last["plan"] == plan {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("plan is not {plan} after 10 s: {last}");
    }

    /// The athlete's WebSocket.
    pub async fn ws(&self) -> Client {
        Client::connect(
            &self.node.url,
            ClientOptions::new(self.athlete.1.clone(), "dev"),
        )
        .await
        .expect("connects")
    }

    /// What the athlete's open connection answers to a direct thread with
    /// their coach: `ok` (paid) or an error code (`forbidden` when free).
    pub async fn ws_direct(&self, c: &Client) -> String {
        let m = ClientMsg::CreateThread {
            kind: ThreadKind::Direct,
            members: vec![self.coach.0.clone()],
            title: None,
        };
        match c.request(m).await {
            Ok(_) => "ok".into(),
            Err(ClientError::Server { code, .. }) => code.as_str().into(),
            Err(e) => panic!("transport error {e:?}"),
        }
    }

    /// The athlete's `GET /api/v1/analytics/me` status (403 when free).
    pub async fn analytics(&self) -> u16 {
        self.api()
            .get("/api/v1/analytics/me", Some(&self.athlete.1))
            .await
            .status
    }

    /// Asserts the athlete's row on REST and on the open connection `c`.
    pub async fn athlete_is(&self, c: &Client, paid: bool) {
        let plan = if paid { "athlete_paid" } else { "athlete_free" };
        self.wait_plan(&self.athlete.1, plan).await;
        assert_eq!(self.analytics().await, if paid { 200 } else { 403 });
        let want = if paid { "ok" } else { "forbidden" };
        assert_eq!(self.ws_direct(c).await, want, "{plan} on the WebSocket");
    }

    /// Subscribes through the API: the Checkout Session's id.
    pub async fn checkout(&self, token: &str, plan: &str) -> Resp {
        self.api()
            .post(
                "/api/v1/me/subscription/checkout",
                Some(token),
                json!({"plan": plan, "success_url": "https://example.com/ok", "cancel_url": "https://example.com/no"}),
            )
            .await
    }

    /// The stored plan of the athlete's account as the permission
    /// service sees it.
    pub async fn plan_of(&self, user: &str) -> Option<Plan> {
        self.app.perms.plan_of(user).await
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
