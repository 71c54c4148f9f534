//! The world of the permission tests, a fixture on the one test server
//! type: one real node ([`TestServer`]) with accounts, a user
//! per plan (real accounts, tokens carrying their plan), extra athletes,
//! ACTIVE relationships made through the relationship service, video
//! assets in the node's media store and grants.
#![allow(dead_code)]

use std::collections::HashMap;

use chalktalk::app::App;
use chalktalk_protocol::Role;
use chalktalk_protocol::client::{Client, ClientOptions};
use chalktalk_services::accounts::{Plan, Subscription, Tier};
use chalktalk_services::auth::Audience;
use chalktalk_services::permissions::matrix::PLANS;

use crate::common::TestServer;
use crate::common::api::PASSWORD;

/// The plan users' names, in the table's order (Admin, CoachPremium,
/// CoachBasic, AthletePaid, AthleteFree).
pub const PLAN_USERS: [&str; 5] = ["admin", "cp", "cb", "ap", "af"];
/// Everyone else: `c3` a premium coach of `ap` and `af`; `ar`, `zlate`,
/// `sx`, `sx2` athletes (`ar` and `zlate` active with `cp` and `cb`,
/// `zlate` the fourth and latest of `cb`; `sx`, `sx2` strangers).
pub const OTHERS: [(&str, Plan); 5] = [
    ("c3", Plan::CoachPremium),
    ("ar", Plan::AthletePaid),
    ("zlate", Plan::AthletePaid),
    ("sx", Plan::AthletePaid),
    ("sx2", Plan::AthletePaid),
];

pub struct User {
    pub id: String,
    pub plan: Plan,
    pub token: String,
}

pub struct World {
    pub node: TestServer,
    pub app: App,
    pub users: HashMap<&'static str, User>,
}

fn parts(plan: Plan) -> (Role, Option<Subscription>, Option<Tier>) {
    match plan {
        Plan::Admin => (Role::Admin, None, None),
        Plan::CoachPremium => (Role::Coach, Some(Subscription::Active), None),
        Plan::CoachBasic => (Role::Coach, Some(Subscription::Expired), None),
        Plan::AthletePaid => (Role::Athlete, None, Some(Tier::Paid)),
        Plan::AthleteFree => (Role::Athlete, None, Some(Tier::Free)),
    }
}

impl World {
    /// A node with the plan users and the others (no facts yet).
    pub async fn start() -> World {
        let mut w = World::start_empty().await;
        for (name, plan) in PLAN_USERS.iter().copied().zip(PLANS).chain(OTHERS) {
            w.add(name, plan).await;
        }
        w
    }

    /// A node without users.
    pub async fn start_empty() -> World {
        let node = TestServer::start_with(|c| {
            c.accounts.argon2_m_kib = 256;
            c.accounts.argon2_t = 1;
        })
        .await;
        let app = node.app().clone();
        World {
            node,
            app,
            users: HashMap::new(),
        }
    }

    /// A real account of `plan` and an access token carrying the plan.
    pub async fn add(&mut self, name: &'static str, plan: Plan) -> String {
        let accounts = self.app.accounts.clone().expect("accounts");
        let (role, sub, tier) = parts(plan);
        let a = accounts
            .create_account(&format!("{name}@perm.test"), PASSWORD, role)
            .await
            .expect("create")
            .expect("new account");
        let a = accounts
            .set_plan(&a.id, role, sub, tier)
            .await
            .expect("set plan");
        assert_eq!(a.plan(), plan);
        let token = self
            .app
            .auth
            .mint_session(&a.id, plan, None, Audience::Access, 3600)
            .expect("mint");
        self.users.insert(
            name,
            User {
                id: a.id.clone(),
                plan,
                token,
            },
        );
        a.id
    }

    pub fn id(&self, name: &str) -> String {
        self.users[name].id.clone()
    }

    pub fn token(&self, name: &str) -> String {
        self.users[name].token.clone()
    }

    pub async fn ws(&self, name: &str) -> Client {
        Client::connect(&self.node.url, ClientOptions::new(self.token(name), "dev"))
            .await
            .expect("connects")
    }

    /// An ACTIVE relationship through the relationship service.
    pub async fn relate(&self, coach: &str, athlete: &str) {
        let f = &self.app.perms.facts;
        let (c, a) = (self.id(coach), self.id(athlete));
        f.invite(&c, &a).await.expect("invite");
        f.respond(&c, &a, true).await.expect("accept");
        // Distinct `since` so the basic coach's "first 3" is the order here.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }

    /// A ready video asset `id` owned by `owner`, in the node's media store.
    pub async fn video(&self, id: &str, owner: &str) {
        let mut a = chalktalk_adapters::conformance::media::asset(id);
        a.owner = self.id(owner);
        let media = self.app.media.as_ref().expect("media");
        media.store.put_asset(&a).await.expect("put asset");
    }

    /// The standard facts (see [`OTHERS`]).
    pub async fn facts(&self) {
        for coach in ["cb", "cp"] {
            for athlete in ["ar", "ap", "af", "zlate"] {
                self.relate(coach, athlete).await;
            }
        }
        self.relate("c3", "ap").await;
        self.relate("c3", "af").await;
        for u in PLAN_USERS {
            self.video(&format!("v-own-{u}"), u).await;
        }
        for (v, o) in [
            ("v-sx", "sx"),
            ("v-ar", "ar"),
            ("v-zlate", "zlate"),
            ("v-granted", "sx2"),
        ] {
            self.video(v, o).await;
        }
        for a in ["ap", "af"] {
            self.app
                .perms
                .facts
                .grant(&self.id(a), "v-granted", &self.id("admin"))
                .await
                .expect("grant");
        }
    }
}
