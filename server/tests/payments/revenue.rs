//! Revenue analytics end to end: sales made through the real flows
//! (checkout against the fake Stripe → signed `checkout.session.completed`
//! → order paid; a `charge.refunded`; a `charge.dispute.created`) by two
//! coaches, then `GET /api/v1/me/revenue` for each (exact figures, per
//! program and per month, nothing of the other coach), 403 for an athlete,
//! `GET /api/v1/admin/revenue` adding both coaches; a month boundary and
//! two currencies with orders written to the store at fixed times; bad
//! query parameters.

use chalktalk_adapters::programs::{Order, OrderStatus, month_start_ms};
use chalktalk_protocol::Role;
use serde_json::{Value, json};

use super::flows::{Node, program_body};
use super::stripe::{FakeStripe, account_updated, completed, disputed, refunded, sign};

fn eur(gross: u64, fees: u64, refunded: u64, disputed: u64, sales: u64) -> Value {
    let net = gross as i64 - fees as i64 - refunded as i64 - disputed as i64;
    json!({
        "currency": "eur", "gross": gross, "fees": fees, "refunded": refunded,
        "disputed": disputed, "net": net, "sales": sales,
        "refunds": refunded / 4999,
        "disputes": disputed / 4999,
    })
}

impl Node {
    /// A published one-time program (49.99 EUR, a drill) of the coach
    /// with token `coach`, made payable first: its id.
    async fn sold_program(&self, coach: &str) -> String {
        let r = self
            .api()
            .post(
                "/api/v1/me/payouts/onboarding",
                Some(coach),
                json!({"refresh_url": "https://example.com/again", "return_url": "https://example.com/done"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let account = r.json()["account"].as_str().expect("account").to_string();
        let ev = format!("evt_acct_{:08x}", getrandom::u32().unwrap_or(0));
        let body = account_updated(&ev, &account, true, 1_700_000_050);
        assert_eq!(self.webhook(&body, &sign(&body)).await.status, 200);
        self.wait_applied(&ev).await;
        let r = self
            .api()
            .post(
                "/api/v1/programs",
                Some(coach),
                program_body("one_time", None),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().expect("id").to_string();
        let r = self
            .api()
            .post(
                &format!("/api/v1/programs/{id}/publish"),
                Some(coach),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        id
    }

    /// `athlete` buys `program`: checkout, then the signed payment event
    /// with PaymentIntent `pi`, applied. The order id.
    async fn sell(&self, fake: &FakeStripe, athlete: &str, program: &str, pi: &str) -> String {
        let r = self
            .api()
            .post(
                &format!("/api/v1/programs/{program}/checkout"),
                Some(athlete),
                json!({"success_url": "https://example.com/ok", "cancel_url": "https://example.com/no"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let order = r.json()["order"].as_str().expect("order").to_string();
        let ev = format!("evt_paid_{pi}");
        let body = completed(&ev, fake.session(&order), pi);
        assert_eq!(self.webhook(&body, &sign(&body)).await.status, 200);
        self.wait_applied(&ev).await;
        order
    }

    async fn event(&self, body: String, id: &str) {
        assert_eq!(self.webhook(&body, &sign(&body)).await.status, 200);
        self.wait_applied(id).await;
    }

    async fn revenue_of(&self, token: &str, query: &str) -> Value {
        let r = self
            .api()
            .get(&format!("/api/v1/me/revenue{query}"), Some(token))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    pub async fn revenue(&self, fake: &FakeStripe) {
        let coach2 = self.node.token("coach-2", Role::Coach);
        let athletes: Vec<String> = (2..=3)
            .map(|i| self.node.token(&format!("athlete-{i}"), Role::Athlete))
            .collect();
        let admin = self.node.token("admin-1", Role::Admin);

        // Coach 1: two programs, three sales (one refunded, one disputed).
        let p1 = self.sold_program(&self.coach).await;
        let p2 = self.sold_program(&self.coach).await;
        self.sell(fake, &self.athlete, &p1, "pi_rev_1").await;
        self.sell(fake, &athletes[0], &p1, "pi_rev_2").await;
        self.event(refunded("evt_rev_refund", "pi_rev_2"), "evt_rev_refund")
            .await;
        self.sell(fake, &athletes[1], &p2, "pi_rev_3").await;
        self.event(disputed("evt_rev_dispute", "pi_rev_3"), "evt_rev_dispute")
            .await;
        // Coach 2: one sale.
        let p3 = self.sold_program(&coach2).await;
        self.sell(fake, &self.athlete, &p3, "pi_rev_4").await;

        // Coach 1, the default period (the 12 months up to now): the
        // platform fee is 10 %, kept on the sale that stands only.
        let v = self.revenue_of(&self.coach, "").await;
        assert_eq!(v["coach"], "coach-1");
        assert_eq!(v["complete"], true);
        assert_eq!(v["totals"], json!([eur(14_997, 499, 4999, 4999, 3)]), "{v}");
        assert_eq!(v["totals"][0]["net"], 4500);
        let programs = v["programs"].as_array().expect("programs");
        assert_eq!(programs.len(), 2, "{v}");
        let of = |id: &str| {
            programs
                .iter()
                .find(|p| p["program"] == id)
                .unwrap_or_else(|| panic!("{id} in {v}"))
        };
        assert_eq!(of(&p1)["totals"], json!([eur(9998, 499, 4999, 0, 2)]));
        assert_eq!(of(&p1)["title"], "Squat fundamentals");
        assert_eq!(of(&p2)["totals"], json!([eur(4999, 0, 0, 4999, 1)]));
        let months = v["months"].as_array().expect("months");
        assert_eq!(months.len(), 12);
        let this_month = v["period"]["to"].as_str().expect("to");
        for m in months {
            if m["month"] == this_month {
                assert_eq!(m["totals"], v["totals"]);
            } else {
                assert_eq!(m["totals"], json!([]), "{m}");
            }
        }
        // One paying athlete left (the refunded and disputed ones lost
        // access); nobody was active at the period's start.
        assert_eq!(
            v["subscribers"],
            json!({"active": 1, "active_at_start": 0, "ended": 0, "churn_bps": null})
        );

        // Coach 2 sees their sale only, and coach 1 none of it.
        let v2 = self.revenue_of(&coach2, "").await;
        assert_eq!(v2["totals"], json!([eur(4999, 499, 0, 0, 1)]), "{v2}");
        assert_eq!(v2["programs"][0]["program"], p3.as_str());
        assert_eq!(v2["programs"].as_array().map(Vec::len), Some(1));
        assert!(!v.to_string().contains(&p3));

        // A period after today: no sales; the athlete still entitled was
        // active at its start and did not leave (churn 0).
        let (y, m) = this_month.split_once('-').expect("YYYY-MM");
        let (y, m): (i64, u32) = (y.parse().expect("y"), m.parse().expect("m"));
        let next = if m == 12 {
            format!("{}-01", y + 1)
        } else {
            format!("{y}-{:02}", m + 1)
        };
        let later = self
            .revenue_of(&self.coach, &format!("?from={next}&to={next}"))
            .await;
        assert_eq!(later["totals"], json!([]));
        assert_eq!(
            later["subscribers"],
            json!({"active": 1, "active_at_start": 1, "ended": 0, "churn_bps": 0})
        );

        // An athlete: the permission error, on both routes.
        for path in ["/api/v1/me/revenue", "/api/v1/admin/revenue"] {
            let r = self.api().get(path, Some(&self.athlete)).await;
            assert_eq!(r.status, 403, "{path}: {}", r.text());
        }
        let r = self
            .api()
            .get("/api/v1/admin/revenue", Some(&self.coach))
            .await;
        assert_eq!(r.status, 403, "a coach is no admin");
        let r = self.api().get("/api/v1/me/revenue", Some(&admin)).await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (403, json!("forbidden"))
        );

        // The admin: both coaches added.
        let r = self.api().get("/api/v1/admin/revenue", Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let a = r.json();
        assert_eq!(a["totals"], json!([eur(19_996, 998, 4999, 4999, 4)]), "{a}");
        assert_eq!(a["totals"][0]["net"], 9000);
        assert_eq!(a["paying_coaches"], 2);
        assert_eq!(
            (a["plans"].clone(), a["plans_in_force"].clone()),
            (json!([]), json!(0))
        );

        self.month_boundary().await;
        self.bad_periods(&admin).await;
    }

    /// Orders paid on either side of 2025-02-01T00:00Z, in two currencies.
    async fn month_boundary(&self) {
        let store = self.store();
        let feb = month_start_ms(2025, 2).expect("month");
        let order = |id: &str, currency: &str, paid: u64| Order {
            id: format!("cs_boundary_{id}"),
            user: "athlete-9".into(),
            program: "p-boundary".into(),
            coach: "coach-boundary".into(),
            amount: 1000,
            currency: currency.into(),
            fee: 100,
            status: OrderStatus::Paid,
            payment: None,
            paid_ms: Some(paid),
            created_ms: paid - 60_000,
            updated_ms: paid,
            version: 1,
            kind: chalktalk_adapters::programs::OrderKind::Checkout,
        };
        for o in [
            order("jan", "usd", feb - 1),
            order("feb_usd", "usd", feb),
            order("feb_eur", "eur", feb + 1),
            order("mar", "usd", month_start_ms(2025, 3).expect("month")),
        ] {
            assert!(store.put_order(&o).await.expect("put"));
        }
        let token = self.node.token("coach-boundary", Role::Coach);
        let usd = |gross: u64, sales: u64| {
            json!({"currency": "usd", "gross": gross, "fees": gross / 10, "refunded": 0,
                "disputed": 0, "net": gross - gross / 10, "sales": sales, "refunds": 0, "disputes": 0})
        };
        let eur1 = json!({"currency": "eur", "gross": 1000, "fees": 100, "refunded": 0,
            "disputed": 0, "net": 900, "sales": 1, "refunds": 0, "disputes": 0});
        let v = self.revenue_of(&token, "?from=2025-01&to=2025-02").await;
        assert_eq!(
            v["period"],
            json!({"from": "2025-01", "to": "2025-02", "from_ms": month_start_ms(2025, 1), "to_ms": month_start_ms(2025, 3)})
        );
        assert_eq!(v["totals"], json!([eur1, usd(2000, 2)]), "{v}");
        assert_eq!(
            v["months"],
            json!([
                {"month": "2025-01", "totals": [usd(1000, 1)]},
                {"month": "2025-02", "totals": [eur1, usd(1000, 1)]},
            ])
        );
        let v = self.revenue_of(&token, "?from=2025-02&to=2025-02").await;
        assert_eq!(v["totals"], json!([eur1, usd(1000, 1)]), "{v}");
        let v = self.revenue_of(&token, "?to=2025-01").await;
        assert_eq!(v["period"]["from"], "2024-02");
        assert_eq!(v["totals"], json!([usd(1000, 1)]), "{v}");
    }

    async fn bad_periods(&self, admin: &str) {
        for q in [
            "?from=2025-13",
            "?from=2025-1",
            "?to=1969-12",
            "?from=2025-03&to=2025-01",
            "?from=2000-01&to=2025-01",
            "?month=2025-01",
            "?from=2025-01&from=2025-02",
        ] {
            for (path, token) in [
                ("/api/v1/me/revenue", &self.coach),
                ("/api/v1/admin/revenue", &admin.to_string()),
            ] {
                let r = self.api().get(&format!("{path}{q}"), Some(token)).await;
                assert_eq!(
                    (r.status, r.json()["error"].clone()),
                    (400, json!("bad_period")),
                    "{path}{q}: {}",
                    r.text()
                );
                assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
        }
    }
}
