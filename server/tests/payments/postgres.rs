//! The program and payment flows on a PostgreSQL store (a real server the
//! test starts on 127.0.0.1): programs over REST, and buying then
//! refunding a program through signed webhooks, with the records in
//! PostgreSQL (`sql/006_programs.sql`).

use super::flows::Node;
use super::stripe::FakeStripe;
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
