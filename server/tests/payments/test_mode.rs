//! Against Stripe's test mode, when `CHALKTALK_TEST_STRIPE_KEY=sk_test_...`
//! is set (skipped otherwise, saying so): a node opens a real Checkout
//! Session for a program through async-stripe, with its idempotency key,
//! and the session Stripe answers is the one the node recorded as the
//! order. Webhooks cannot reach a loopback node from Stripe, so they are
//! not part of this run.

use chalktalk_adapters::payments::{CheckoutRequest, Payments, StripePayments};

fn key() -> Option<String> {
    match std::env::var("CHALKTALK_TEST_STRIPE_KEY") {
        Ok(k) if k.starts_with("sk_test_") => Some(k),
        Ok(_) => panic!("CHALKTALK_TEST_STRIPE_KEY must be a test-mode key (sk_test_...)"),
        Err(_) => {
            eprintln!(
                "SKIPPED: Stripe test mode (set CHALKTALK_TEST_STRIPE_KEY=sk_test_... to run it)"
            );
            None
        }
    }
}

#[tokio::test]
async fn checkout_session_in_stripe_test_mode() {
    let Some(key) = key() else { return };
    let stripe = StripePayments::new(&key, None).expect("client");
    let reference = format!("ord-test-{:08x}", getrandom::u32().unwrap_or(0));
    let req = CheckoutRequest {
        reference: reference.clone(),
        user: "athlete-1".into(),
        program: "pg-test".into(),
        title: "chalktalk test program".into(),
        amount: 4999,
        currency: "eur".into(),
        success_url: "https://example.com/ok".into(),
        cancel_url: "https://example.com/no".into(),
        destination: None,
        recurring: None,
    };
    let s = stripe.checkout(&req).await.expect("checkout session");
    assert!(s.id.starts_with("cs_test_"), "{s:?}");
    assert!(
        s.url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://checkout.stripe.com/")),
        "{s:?}"
    );
    assert_eq!(
        (s.amount_total, s.currency.as_deref()),
        (Some(4999), Some("eur"))
    );
    // The same idempotency key answers the same session.
    let again = stripe.checkout(&req).await.expect("checkout again");
    assert_eq!(again.id, s.id, "idempotent");
}
