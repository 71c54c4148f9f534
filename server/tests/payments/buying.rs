//! Buying a program on one node: checkout, the signed webhook, access on
//! REST and on an open WebSocket, replays, bad signatures, refunds, and
//! events in the wrong order.

use std::time::Duration;

use chalktalk_protocol::Role;
use serde_json::json;

use super::flows::{ATHLETE, Node, media_link};
use super::stripe::{FakeStripe, completed, refunded, sign};

impl Node {
    pub async fn buy_end_to_end(&self, fake: &FakeStripe) {
        let (program, video) = self.paid_program().await;
        // Not bought yet: the program's video stays closed (on REST, and on
        // a WebSocket that stays open through the purchase and the refund).
        self.wait_video(&video, 404).await;
        let ws = self.node.connect(ATHLETE, Role::Athlete, "phone").await;
        assert_eq!(media_link(&ws, &video).await, "not_found");
        let order = self.checkout(&program).await;
        let seen = fake.seen();
        let create = seen
            .iter()
            .find(|s| s.path == "/v1/checkout/sessions")
            .expect("session");
        assert!(
            create
                .idempotency_key
                .as_deref()
                .is_some_and(|k| k.starts_with("checkout-ord-")),
            "{create:?}"
        );
        let session = fake.session(&order);
        assert_eq!(session["metadata"]["chalktalk_program"], program.as_str());
        // The redirect back from Checkout grants nothing: still closed.
        self.wait_video(&video, 404).await;

        // A bad signature: 400, nothing stored.
        let body = completed("evt_paid_1", session.clone(), "pi_e2e_1");
        let forged = sign(&body.replace("4999", "1"));
        for sig in [forged.as_str(), "", "t=1,v1=deadbeef", "garbage"] {
            let r = self.webhook(&body, sig).await;
            assert_eq!(
                (r.status, r.json()["error"].clone()),
                (400, json!("bad_signature")),
                "{sig}"
            );
        }
        let stale = chalktalk_adapters::payments::sign_webhook(
            &body,
            super::stripe::WEBHOOK_SECRET,
            Some(1_000_000),
        );
        assert_eq!(
            self.webhook(&body, &stale).await.status,
            400,
            "older than 300 s"
        );
        let store = self.store();
        assert_eq!(store.receipt("evt_paid_1").await.expect("read"), None);
        self.wait_video(&video, 404).await;

        // Signed: stored, applied, the video opens.
        let r = self.webhook(&body, &sign(&body)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"received": "evt_paid_1", "duplicate": false})
        );
        self.wait_video(&video, 200).await;
        assert_eq!(
            media_link(&ws, &video).await,
            "ok",
            "the same open WebSocket"
        );
        let locker = self
            .api()
            .get("/api/v1/me/programs", Some(&self.athlete))
            .await
            .json();
        assert_eq!(locker["programs"][0]["entitlement"]["source"], "purchase");
        assert_eq!(
            locker["programs"][0]["entitlement"]["reference"],
            order.as_str()
        );

        // Replayed (same body, new signature) and duplicated at once: applied once.
        let replays = futures_util::future::join_all(
            (0..5).map(|_| async { self.webhook(&body, &sign(&body)).await }),
        )
        .await;
        for r in replays {
            assert_eq!(
                r.json(),
                json!({"received": "evt_paid_1", "duplicate": true})
            );
        }
        let applied = self.wait_applied("evt_paid_1").await;
        let order_now = store.order(&order).await.expect("order").expect("stored");
        assert_eq!(
            order_now.status,
            chalktalk_adapters::programs::OrderStatus::Paid
        );
        assert_eq!(order_now.payment.as_deref(), Some("pi_e2e_1"));
        assert_eq!(
            store
                .receipt("evt_paid_1")
                .await
                .expect("read")
                .expect("kept")
                .applied_ms,
            applied.applied_ms,
            "applied once"
        );
        let r = self
            .api()
            .post(&format!("/api/v1/programs/{program}/checkout"), Some(&self.athlete),
                json!({"success_url": "https://example.com/ok", "cancel_url": "https://example.com/no"}))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (409, json!("already_entitled"))
        );

        // Refunded (Stripe's charge.refunded): closed again.
        let refund = refunded("evt_refund_1", "pi_e2e_1");
        assert_eq!(self.webhook(&refund, &sign(&refund)).await.status, 200);
        self.wait_video(&video, 404).await;
        assert_eq!(media_link(&ws, &video).await, "not_found");
        let e = self.entitlement(&program).await;
        assert_eq!(
            e.status,
            chalktalk_adapters::programs::EntitlementStatus::Revoked
        );
        // The payment event replayed after the refund grants nothing back.
        let r = self.webhook(&body, &sign(&body)).await;
        assert_eq!(r.json()["duplicate"], true);
        let again = completed("evt_paid_1_resent_as_new", session, "pi_e2e_1");
        assert_eq!(self.webhook(&again, &sign(&again)).await.status, 200);
        self.wait_applied("evt_paid_1_resent_as_new").await;
        self.wait_video(&video, 404).await;
    }

    pub async fn refund_before_payment(&self, fake: &FakeStripe) {
        let (program, video) = self.paid_program().await;
        let order = self.checkout(&program).await;
        let store = self.store();
        // The refund's event first: it waits for its payment.
        let refund = refunded("evt_ooo_refund", "pi_ooo");
        assert_eq!(self.webhook(&refund, &sign(&refund)).await.status, 200);
        for _ in 0..100 {
            let r = store
                .receipt("evt_ooo_refund")
                .await
                .expect("read")
                .expect("stored");
            if r.note.is_some() {
                assert!(r.applied_ms.is_none(), "{r:?}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Then the payment: applied, then the waiting refund on the next pass.
        let paid = completed("evt_ooo_paid", fake.session(&order), "pi_ooo");
        assert_eq!(self.webhook(&paid, &sign(&paid)).await.status, 200);
        self.wait_applied("evt_ooo_paid").await;
        self.wait_applied("evt_ooo_refund").await;
        let o = store.order(&order).await.expect("read").expect("order");
        assert_eq!(
            o.status,
            chalktalk_adapters::programs::OrderStatus::Refunded
        );
        self.wait_video(&video, 404).await;
    }
}
