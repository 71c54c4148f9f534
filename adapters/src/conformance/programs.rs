//! The conformance suite every [`ProgramStore`] adapter must pass, written
//! only against the trait. Ids carry a random suffix and pending receipts
//! are checked only for the suite's own, so it runs against a shared,
//! non-empty store. Checks panic on the first mismatch, comparing whole
//! values.

use std::sync::Arc;

use super::store::unique;
use crate::programs::{
    Entitlement, EntitlementStatus, Interval, ItemProgress, Order, OrderStatus, Price, Program,
    ProgramItem, ProgramStatus, ProgramStore, Receipt, Source,
};

/// Runs every check, one after another.
pub async fn run_all(store: Arc<dyn ProgramStore>) {
    programs(&*store).await;
    entitlements(&*store).await;
    progress(&*store).await;
    orders(&*store).await;
    receipts(&*store).await;
    super::revenue::old_orders_decode();
    super::revenue::orders(&*store).await;
}

/// A published program of `coach` with a video, a drill, a review and an
/// attachment.
pub fn program(id: &str, coach: &str) -> Program {
    Program {
        id: id.into(),
        coach: coach.into(),
        title: "Squat fundamentals".into(),
        description: "Four weeks".into(),
        sport: "weightlifting".into(),
        cover: Some("a-cover".into()),
        items: vec![
            ProgramItem::Video {
                id: "i1".into(),
                title: "Bar path".into(),
                asset: "a-video".into(),
            },
            ProgramItem::Drill {
                id: "i2".into(),
                title: "Tempo squats".into(),
                text: "3x5 at 3-1-1".into(),
            },
            ProgramItem::Review {
                id: "i3".into(),
                title: "Your third rep, annotated".into(),
                room: "r-review".into(),
                video: "a-reviewed".into(),
            },
            ProgramItem::Attachment {
                id: "i4".into(),
                title: "Week 1 plan".into(),
                asset: "a-plan".into(),
            },
        ],
        status: ProgramStatus::Published,
        price: Price::OneTime {
            amount: 4999,
            currency: "eur".into(),
        },
        created_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_000_000,
        published_ms: Some(1_700_000_000_001),
    }
}

/// A pending receipt of event `id`.
pub fn receipt(id: &str, received_ms: u64) -> Receipt {
    Receipt {
        id: id.into(),
        kind: "checkout.session.completed".into(),
        created: 1_700_000_000,
        body: br#"{"id":"evt"}"#.to_vec(),
        received_ms,
        applied_ms: None,
        note: None,
    }
}

async fn programs(s: &dyn ProgramStore) {
    let coach = unique("coach");
    let (a, b) = (unique("p-a"), unique("p-b"));
    assert_eq!(s.program(&a).await.unwrap(), None);
    assert!(s.programs_of(&coach, 10).await.unwrap().is_empty());
    let mut pb = program(&b, &coach);
    pb.status = ProgramStatus::Draft;
    pb.price = Price::Subscription {
        interval: Interval::Yearly,
        amount: 9900,
        currency: "usd".into(),
    };
    s.put_program(&pb).await.unwrap();
    let mut pa = program(&a, &coach);
    s.put_program(&pa).await.unwrap();
    s.put_program(&program(&unique("p-other"), &unique("coach")))
        .await
        .unwrap();
    assert_eq!(s.program(&a).await.unwrap(), Some(pa.clone()));
    assert_eq!(
        s.programs_of(&coach, 10).await.unwrap(),
        vec![pa.clone(), pb.clone()],
        "a coach's programs by id"
    );
    assert_eq!(s.programs_of(&coach, 1).await.unwrap(), vec![pa.clone()]);
    pa.title = "Squat fundamentals, v2".into();
    pa.items.reverse();
    s.put_program(&pa).await.unwrap();
    assert_eq!(s.program(&a).await.unwrap(), Some(pa.clone()), "replaced");
    assert_eq!(s.programs_of(&coach, 10).await.unwrap().len(), 2);
}

async fn entitlements(s: &dyn ProgramStore) {
    let (u1, u2) = (unique("u1"), unique("u2"));
    let (p1, p2) = (unique("p1"), unique("p2"));
    let e = |user: &str, program: &str| Entitlement {
        user: user.into(),
        program: program.into(),
        source: Source::Free,
        status: EntitlementStatus::Active,
        granted_ms: 10,
        revoked_ms: None,
        reference: None,
    };
    assert_eq!(s.entitlement(&u1, &p1).await.unwrap(), None);
    let (e12, e11, e21) = (e(&u1, &p2), e(&u1, &p1), e(&u2, &p1));
    for x in [&e12, &e11, &e21] {
        s.put_entitlement(x).await.unwrap();
    }
    assert_eq!(s.entitlement(&u1, &p1).await.unwrap(), Some(e11.clone()));
    let mut want = vec![e11.clone(), e12.clone()];
    want.sort_by(|a, b| a.program.cmp(&b.program));
    assert_eq!(s.entitlements_of(&u1, 10).await.unwrap(), want);
    let mut want = vec![e11.clone(), e21.clone()];
    want.sort_by(|a, b| a.user.cmp(&b.user));
    assert_eq!(s.entitlements_to(&p1, 10).await.unwrap(), want);
    let mut revoked = e11.clone();
    revoked.status = EntitlementStatus::Revoked;
    revoked.revoked_ms = Some(20);
    revoked.source = Source::Purchase;
    revoked.reference = Some("cs_1".into());
    s.put_entitlement(&revoked).await.unwrap();
    assert_eq!(s.entitlement(&u1, &p1).await.unwrap(), Some(revoked));
    assert_eq!(s.entitlements_to(&p1, 10).await.unwrap().len(), 2);
}

async fn progress(s: &dyn ProgramStore) {
    let (u, p) = (unique("u"), unique("p"));
    let item = |item: &str, done_ms| ItemProgress {
        user: u.clone(),
        program: p.clone(),
        item: item.into(),
        done_ms,
    };
    assert!(s.progress(&u, &p).await.unwrap().is_empty());
    s.put_progress(&item("i2", 5)).await.unwrap();
    s.put_progress(&item("i1", 6)).await.unwrap();
    s.put_progress(&ItemProgress {
        program: unique("other"),
        ..item("i1", 7)
    })
    .await
    .unwrap();
    assert_eq!(
        s.progress(&u, &p).await.unwrap(),
        vec![item("i1", 6), item("i2", 5)]
    );
    s.put_progress(&item("i1", 9)).await.unwrap();
    assert_eq!(s.progress(&u, &p).await.unwrap()[0], item("i1", 9));
}

async fn orders(s: &dyn ProgramStore) {
    let id = unique("cs");
    let pi = unique("pi");
    let mut o = Order {
        id: id.clone(),
        user: "u".into(),
        program: "p".into(),
        coach: String::new(),
        amount: 4999,
        currency: "eur".into(),
        fee: 0,
        status: OrderStatus::Open,
        payment: None,
        paid_ms: None,
        created_ms: 1,
        updated_ms: 1,
        version: 2,
        kind: crate::programs::OrderKind::Invoice,
    };
    assert!(!s.put_order(&o).await.unwrap(), "version 2 over nothing");
    assert_eq!(s.order(&id).await.unwrap(), None);
    o.version = 1;
    assert!(s.put_order(&o).await.unwrap());
    assert!(!s.put_order(&o).await.unwrap(), "version 1 twice");
    assert_eq!(s.order(&id).await.unwrap(), Some(o.clone()));
    assert_eq!(s.order_by_payment(&pi).await.unwrap(), None);
    let paid = Order {
        status: OrderStatus::Paid,
        payment: Some(pi.clone()),
        updated_ms: 2,
        version: 2,
        ..o.clone()
    };
    assert!(s.put_order(&paid).await.unwrap());
    assert!(!s.put_order(&paid).await.unwrap(), "a racing writer loses");
    assert_eq!(s.order(&id).await.unwrap(), Some(paid.clone()));
    assert_eq!(s.order_by_payment(&pi).await.unwrap(), Some(paid));
}

async fn receipts(s: &dyn ProgramStore) {
    let (a, b, c) = (unique("evt-a"), unique("evt-b"), unique("evt-c"));
    let ra = receipt(&a, 30);
    let rb = receipt(&b, 10);
    let rc = receipt(&c, 20);
    assert!(s.add_receipt(&ra).await.unwrap());
    assert!(s.add_receipt(&rb).await.unwrap());
    assert!(s.add_receipt(&rc).await.unwrap());
    let mut dup = ra.clone();
    dup.body = b"other".to_vec();
    assert!(
        !s.add_receipt(&dup).await.unwrap(),
        "an event id is kept once"
    );
    assert_eq!(s.receipt(&a).await.unwrap(), Some(ra.clone()));
    let mine = |v: Vec<Receipt>| -> Vec<String> {
        v.into_iter()
            .map(|r| r.id)
            .filter(|id| [&a, &b, &c].contains(&id))
            .collect()
    };
    assert_eq!(
        mine(s.pending_receipts(100_000).await.unwrap()),
        vec![b.clone(), c.clone(), a.clone()],
        "oldest received first"
    );
    let mut noted = rc.clone();
    noted.note = Some("waiting for its checkout".into());
    s.update_receipt(&noted).await.unwrap();
    let applied = Receipt {
        applied_ms: Some(40),
        ..rb.clone()
    };
    s.update_receipt(&applied).await.unwrap();
    assert_eq!(s.receipt(&b).await.unwrap(), Some(applied));
    assert_eq!(s.receipt(&c).await.unwrap(), Some(noted));
    assert_eq!(
        mine(s.pending_receipts(100_000).await.unwrap()),
        vec![c, a],
        "applied receipts leave the pending list"
    );
}
