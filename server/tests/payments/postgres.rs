//! The program and payment flows on a PostgreSQL store (a real server the
//! test starts on 127.0.0.1): programs over REST, and buying then
//! refunding a program through signed webhooks, with the records in
//! PostgreSQL (`sql/006_programs.sql`); the subscription lifecycle and
//! admin overrides (`sql/007_billing.sql`); revenue analytics over the
//! order listings (`sql/008_revenue.sql`).

use super::flows::Node;
use super::lifecycle::{fixture_lifecycle, override_audited};
use super::stripe::FakeStripe;
use super::subscriptions::Subs;
use crate::common::postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_over_rest_on_postgres() {
    let (_pg, db) = postgres::start().await;
    let n = Node::start_postgres(None, &db).await;
    n.programs_over_rest().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buy_refund_and_out_of_order_events_on_postgres() {
    let (_pg, db) = postgres::start().await;
    let fake = FakeStripe::start(None).await;
    let n = Node::start_postgres(Some(&fake), &db).await;
    n.buy_end_to_end(&fake).await;
    n.refund_before_payment(&fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revenue_on_postgres() {
    let (_pg, db) = postgres::start().await;
    let fake = FakeStripe::start(None).await;
    let n = Node::start_postgres(Some(&fake), &db).await;
    n.revenue(&fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_lifecycle_and_overrides_on_postgres() {
    let (_pg, db) = postgres::start().await;
    let fake = FakeStripe::start(None).await;
    fixture_lifecycle(&Subs::start_on(&fake, 2, Some(&db)).await).await;
    override_audited(&Subs::start_on(&fake, 3600, Some(&db)).await).await;
}
