//! The lease suite, on the lease port over any key-value store: epochs
//! only grow, one owner at a time (eight nodes racing for one lease, on two
//! handles of a shared store), expiry and release hand the lease on with
//! the next epoch, and a stale owner can neither renew nor release.

use std::sync::Arc;
use std::time::Duration;

use chalktalk_actors::lease::{Acquired, LeaseKind, Leases};

use super::store::unique;

fn held(a: Acquired) -> chalktalk_actors::lease::Lease {
    match a {
        Acquired::Held(l) => l,
        Acquired::Busy(l) => panic!("expected held, busy with {l:?}"),
    }
}

/// Runs every check; `a` and `b` are two handles on one store (two nodes).
pub async fn run_all(a: Arc<dyn Leases>, b: Arc<dyn Leases>) {
    hand_over(&*a, &*b).await;
    one_owner_at_a_time(a, b).await;
}

/// Acquire, renew, busy, expiry, release, stale owners.
pub async fn hand_over(a: &dyn Leases, b: &dyn Leases) {
    let room = unique("lease-room");
    assert_eq!(a.holder(LeaseKind::Room, &room).await.unwrap(), None);
    let l1 = held(a.acquire(LeaseKind::Room, &room, "n1", 300).await.unwrap());
    assert_eq!((l1.owner.as_str(), l1.epoch), ("n1", 1));
    // The same owner again: extended at the same epoch.
    let again = held(a.acquire(LeaseKind::Room, &room, "n1", 300).await.unwrap());
    assert_eq!(again.epoch, 1);
    // Another owner while it holds: busy, told who and until when.
    match b.acquire(LeaseKind::Room, &room, "n2", 300).await.unwrap() {
        Acquired::Busy(l) => assert_eq!((l.owner.as_str(), l.epoch), ("n1", 1)),
        other => panic!("expected busy, got {other:?}"),
    }
    // Other kinds are other leases.
    let t = held(
        b.acquire(LeaseKind::Thread, &room, "n2", 300)
            .await
            .unwrap(),
    );
    assert_eq!(t.epoch, 1);
    let renewed = a.renew(&again, 300).await.unwrap().expect("renewed");
    assert!(renewed.expires_ms >= again.expires_ms);
    // Expiry: n2 takes it with the next epoch; n1 can no longer renew.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let l2 = held(
        b.acquire(LeaseKind::Room, &room, "n2", 10_000)
            .await
            .unwrap(),
    );
    assert_eq!((l2.owner.as_str(), l2.epoch), ("n2", 2));
    assert_eq!(
        a.renew(&renewed, 300).await.unwrap(),
        None,
        "stale owner renewed"
    );
    // A stale release changes nothing.
    a.release(&renewed).await.unwrap();
    assert_eq!(b.holder(LeaseKind::Room, &room).await.unwrap().unwrap(), l2);
    // A release hands it on at once, with the next epoch.
    b.release(&l2).await.unwrap();
    let l3 = held(a.acquire(LeaseKind::Room, &room, "n1", 300).await.unwrap());
    assert_eq!((l3.owner.as_str(), l3.epoch), ("n1", 3));
    // Even its former owner takes a released lease with a new epoch.
    a.release(&l3).await.unwrap();
    assert_eq!(
        held(a.acquire(LeaseKind::Room, &room, "n1", 300).await.unwrap()).epoch,
        4
    );
}

/// Eight owners race for one free lease: exactly one gets it.
pub async fn one_owner_at_a_time(a: Arc<dyn Leases>, b: Arc<dyn Leases>) {
    let room = unique("lease-race");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let l = if i % 2 == 0 { a.clone() } else { b.clone() };
            let room = room.clone();
            tokio::spawn(async move {
                l.acquire(LeaseKind::Inbox, &room, &format!("n{i}"), 10_000)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        if let Acquired::Held(l) = t.await.unwrap().unwrap() {
            winners.push(l);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].epoch, 1);
    assert_eq!(
        a.holder(LeaseKind::Inbox, &room).await.unwrap().unwrap(),
        winners[0]
    );
}
