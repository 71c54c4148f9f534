//! Unit tests of the revenue arithmetic (`figures.rs`).

use chalktalk_adapters::programs::{Entitlement, EntitlementStatus, Order, OrderStatus, Source};

use super::*;

const DAY: u64 = 86_400_000;

fn order(currency: &str, amount: u64, fee: u64, status: OrderStatus) -> Order {
    Order {
        id: "cs".into(),
        user: "a".into(),
        program: "p".into(),
        coach: "c".into(),
        amount,
        currency: currency.into(),
        fee,
        status,
        payment: None,
        paid_ms: Some(5),
        created_ms: 1,
        updated_ms: 1,
        version: 1,
        kind: chalktalk_adapters::programs::OrderKind::Checkout,
    }
}

#[test]
fn currencies_are_never_added_together() {
    let mut t = Tally::default();
    assert!(t.is_empty());
    t.add(&order("usd", 1000, 100, OrderStatus::Paid));
    t.add(&order("eur", 5000, 500, OrderStatus::Paid));
    t.add(&order("usd", 2000, 200, OrderStatus::Refunded));
    t.add(&order("usd", 3000, 300, OrderStatus::Disputed));
    let v = t.into_vec();
    assert_eq!(
        v,
        vec![
            Money {
                currency: "eur".into(),
                gross: 5000,
                fees: 500,
                net: 4500,
                sales: 1,
                ..Money::default()
            },
            Money {
                currency: "usd".into(),
                gross: 6000,
                fees: 100,
                refunded: 2000,
                disputed: 3000,
                net: 900,
                sales: 3,
                refunds: 1,
                disputes: 1,
            },
        ]
    );
}

#[test]
fn sales_are_paid_refunded_or_disputed_orders() {
    let mut o = order("usd", 1, 0, OrderStatus::Open);
    assert_eq!(sold_ms(&o), None);
    o.status = OrderStatus::Expired;
    assert_eq!(sold_ms(&o), None);
    o.status = OrderStatus::Refunded;
    assert_eq!(sold_ms(&o), Some(5));
    o.paid_ms = None;
    assert_eq!(sold_ms(&o), Some(1), "an old order: its creation");
}

#[test]
fn a_fee_above_the_amount_is_capped() {
    let mut t = Tally::default();
    t.add(&order("usd", 100, 500, OrderStatus::Paid));
    assert_eq!((t.0["usd"].fees, t.0["usd"].net), (100, 0));
}

#[test]
fn periods_are_whole_utc_months() {
    // 2026-12-05.
    let now = 1_796_083_200_000 + 4 * DAY;
    let p = Period::parse(None, None, now).unwrap();
    assert_eq!((p.from.as_str(), p.to.as_str()), ("2026-01", "2026-12"));
    assert_eq!(p.months().len(), 12);
    assert_eq!(p.to_ms, 1_798_761_600_000, "2027-01-01");
    let p = Period::parse(Some("2024-02"), Some("2024-02"), now).unwrap();
    assert_eq!(p.months(), vec!["2024-02"]);
    assert_eq!((p.from_ms, p.to_ms), (1_706_745_600_000, 1_709_251_200_000));
    assert!(p.contains(1_709_251_200_000 - 1) && !p.contains(1_709_251_200_000));
    let p = Period::parse(Some("2025-06"), None, now).unwrap();
    assert_eq!((p.from.as_str(), p.to.as_str()), ("2025-06", "2026-05"));
    let p = Period::parse(None, Some("1970-03"), now).unwrap();
    assert_eq!((p.from.as_str(), p.to.as_str()), ("1970-01", "1970-03"));
}

#[test]
fn bad_periods_are_refused_with_bad_period() {
    for (from, to) in [
        (Some("2024-13"), None),
        (Some("2024-1"), None),
        (Some("24-01"), None),
        (Some("1969-12"), None),
        (Some("2024-01-01"), None),
        (None, Some("abcd-ef")),
        (Some("2024-05"), Some("2024-04")),
        (Some("2000-01"), Some("2010-01")),
    ] {
        let e = Period::parse(from, to, 0).unwrap_err();
        assert_eq!(e.code(), "bad_period", "{from:?} {to:?}: {e}");
    }
    assert!(Period::parse(Some("2000-01"), Some("2009-12"), 0).is_ok());
}

fn ent(granted: u64, revoked: Option<u64>) -> Entitlement {
    Entitlement {
        user: "a".into(),
        program: "p".into(),
        source: Source::Purchase,
        status: if revoked.is_some() {
            EntitlementStatus::Revoked
        } else {
            EntitlementStatus::Active
        },
        granted_ms: granted,
        revoked_ms: revoked,
        reference: None,
    }
}

#[test]
fn churn_is_ended_over_active_at_the_start() {
    let p = Period::parse(Some("2024-02"), Some("2024-02"), 0).unwrap();
    let (start, end) = (p.from_ms, p.to_ms);
    let ents = [
        ent(start - DAY, None),                  // active throughout
        ent(start - DAY, Some(start + DAY)),     // churned in the period
        ent(start - 2 * DAY, Some(start - 1)),   // ended before: not counted
        ent(start - DAY, Some(end)),             // ended after: stays
        ent(start + DAY, Some(start + 2 * DAY)), // joined in the period
        ent(start + DAY, None),
    ];
    let c = churn(&ents, &p);
    assert_eq!(
        c,
        Churn {
            active: 2,
            active_at_start: 3,
            ended: 1,
            churn_bps: Some(3333),
        }
    );
}

#[test]
fn an_empty_period_has_no_churn_and_no_sums() {
    let p = Period::parse(Some("2024-02"), Some("2024-03"), 0).unwrap();
    assert_eq!(churn(&[], &p), Churn::default());
    assert_eq!(churn(&[ent(p.from_ms, None)], &p).churn_bps, None);
    assert!(Tally::default().into_vec().is_empty());
}
