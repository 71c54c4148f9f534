//! The conformance checks of the listings behind the revenue figures:
//! [`ProgramStore::orders_of_coach`], [`ProgramStore::orders_created`]
//! and [`crate::billing::BillingStore::subscriptions_page`] (paging,
//! limits, order, only the coach's orders, an order decoded from a body
//! written before the revenue fields). Run by `super::programs::run_all`
//! and `super::billing::run_all`; a random coach and a random time window
//! far in the future keep it correct on a shared, non-empty store.

use super::store::unique;
use crate::billing::BillingStore;
use crate::programs::{Order, OrderRange, OrderStatus, ProgramStore};

const DAY: u64 = 86_400_000;

/// A paid order `id` of `coach`'s program, created at `created_ms`.
pub fn order(id: &str, coach: &str, created_ms: u64) -> Order {
    Order {
        id: id.into(),
        user: "buyer".into(),
        program: "p".into(),
        coach: coach.into(),
        amount: 4999,
        currency: "eur".into(),
        fee: 499,
        status: OrderStatus::Paid,
        payment: None,
        paid_ms: Some(created_ms + 1),
        created_ms,
        updated_ms: created_ms,
        version: 1,
        kind: crate::programs::OrderKind::Checkout,
    }
}

/// Every page of `range` (checking each holds at most its limit), keeping
/// the ids in `mine`.
async fn all_pages<F, Fut>(mut range: OrderRange, mine: &[String], read: F) -> Vec<String>
where
    F: Fn(OrderRange) -> Fut,
    Fut: std::future::Future<Output = Vec<Order>>,
{
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let page = read(range.clone()).await;
        assert!(page.len() <= range.limit, "a page holds at most its limit");
        out.extend(
            page.iter()
                .map(|o| o.id.clone())
                .filter(|id| mine.contains(id)),
        );
        match range.next(&page) {
            Some(next) => range = next,
            None => return out,
        }
    }
    panic!("paging never ended");
}

/// The order listings.
pub async fn orders(s: &dyn ProgramStore) {
    let (coach, other) = (unique("coach"), unique("coach"));
    // A window of its own, far in the future, 41 days wide (so across at
    // least one UTC month boundary).
    let n = getrandom::u64().expect("random") % 1_000_000;
    let base = 4_000_000_000_000 + n * 50 * DAY;
    let prefix = unique("cs");
    let ids: Vec<String> = (0..5).map(|i| format!("{prefix}-{i}")).collect();
    let mut mine = vec![
        order(&ids[0], &coach, base),
        order(&ids[1], &coach, base + 1),
        order(&ids[2], &coach, base + 1),
        order(&ids[3], &other, base + 2),
        order(&ids[4], &coach, base + 40 * DAY),
    ];
    mine[1].status = OrderStatus::Refunded;
    for o in &mine {
        assert!(s.put_order(o).await.unwrap());
    }
    // A later version keeps the order listed once, as it is now.
    let mut paid = mine[0].clone();
    paid.status = OrderStatus::Disputed;
    paid.version = 2;
    assert!(s.put_order(&paid).await.unwrap());
    mine[0] = paid.clone();

    let to = base + 41 * DAY;
    let page = s
        .orders_of_coach(&coach, &OrderRange::new(base, to, 100))
        .await
        .unwrap();
    let want: Vec<Order> = [0, 1, 2, 4].iter().map(|&i| mine[i].clone()).collect();
    let mut sorted = want.clone();
    sorted.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    assert_eq!(page, sorted, "a coach's orders, oldest created first");
    assert_eq!(
        s.orders_of_coach(&other, &OrderRange::new(base, to, 100))
            .await
            .unwrap(),
        vec![mine[3].clone()],
        "only that coach's"
    );
    assert!(
        s.orders_of_coach(&unique("coach"), &OrderRange::new(base, to, 100))
            .await
            .unwrap()
            .is_empty()
    );
    // [from, to): the end is excluded, the start included.
    let first_day = s
        .orders_of_coach(&coach, &OrderRange::new(base + 1, base + 40 * DAY, 100))
        .await
        .unwrap();
    let want: Vec<&str> = sorted[1..3].iter().map(|o| o.id.as_str()).collect();
    let got: Vec<&str> = first_day.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(got, want, "[from, to)");
    // Pages of 1 and 2 read the same, each once.
    let sorted_ids: Vec<String> = sorted.iter().map(|o| o.id.clone()).collect();
    for limit in [1, 2, 3] {
        let got = all_pages(OrderRange::new(base, to, limit), &ids, |r| {
            let coach = coach.clone();
            async move { s.orders_of_coach(&coach, &r).await.unwrap() }
        })
        .await;
        assert_eq!(got, sorted_ids, "coach pages of {limit}");
    }

    let mut everyone: Vec<Order> = mine.clone();
    everyone.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    let everyone: Vec<String> = everyone.into_iter().map(|o| o.id).collect();
    for limit in [1, 2, 100] {
        let got = all_pages(OrderRange::new(base, to, limit), &ids, |r| async move {
            s.orders_created(&r).await.unwrap()
        })
        .await;
        assert_eq!(got, everyone, "every coach's orders, pages of {limit}");
    }
    let late = s
        .orders_created(&OrderRange::new(base + 2, to, 100))
        .await
        .unwrap();
    let late: Vec<&String> = late
        .iter()
        .map(|o| &o.id)
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(late, vec![&ids[3], &ids[4]]);
}

/// An order encoded before the revenue fields existed still decodes (with
/// their defaults).
pub fn old_orders_decode() {
    #[derive(serde::Serialize)]
    struct Before<'a> {
        id: &'a str,
        user: &'a str,
        program: &'a str,
        amount: u64,
        currency: &'a str,
        status: OrderStatus,
        payment: Option<&'a str>,
        created_ms: u64,
        updated_ms: u64,
        version: u64,
    }
    let body = rmp_serde::to_vec_named(&Before {
        id: "cs_old",
        user: "u",
        program: "p",
        amount: 100,
        currency: "usd",
        status: OrderStatus::Paid,
        payment: Some("pi_old"),
        created_ms: 5,
        updated_ms: 6,
        version: 2,
    })
    .expect("encode");
    let o: Order = crate::embedded::decode("order", "cs_old", &body).expect("an old order decodes");
    assert_eq!((o.coach.as_str(), o.fee, o.paid_ms), ("", 0, None));
    assert_eq!((o.amount, o.status, o.version), (100, OrderStatus::Paid, 2));
}

/// The subscription listing: every one once, in pages.
pub async fn subscriptions<S: BillingStore + ?Sized>(s: &S) {
    let user = unique("u");
    let prefix = unique("sub");
    let ids: Vec<String> = (0..5).map(|i| format!("{prefix}-{i}")).collect();
    for id in &ids {
        let sub = super::billing::subscription(id, &user);
        assert!(s.put_subscription(&sub).await.unwrap());
    }
    for limit in [1, 2, 1000] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..100_000 {
            let page = s.subscriptions_page(after.as_deref(), limit).await.unwrap();
            assert!(page.len() <= limit);
            seen.extend(
                page.iter()
                    .map(|x| x.id.clone())
                    .filter(|id| ids.contains(id)),
            );
            if page.len() < limit {
                break;
            }
            after = page.last().map(|x| x.id.clone());
        }
        assert_eq!(seen, ids, "each subscription once, by id, pages of {limit}");
    }
}
