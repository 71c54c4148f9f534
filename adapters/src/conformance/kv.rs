//! The conformance suite every [`Kv`] adapter must pass, written only
//! against the trait. Keys carry a random prefix, so the suite can run
//! against a shared, non-empty store. Checks panic on the first mismatch.

use std::sync::Arc;

use crate::kv::{Kv, KvBatch};

use super::store::unique;

/// The namespaces the suite writes to.
const NS: &str = "conformance";
const OTHER_NS: &str = "conformance-other";

/// Runs every check, one after another.
pub async fn run_all(kv: Arc<dyn Kv>) {
    conditional_batches(&*kv).await;
    prefix_scans(&*kv).await;
    batch_is_atomic(&*kv).await;
    conditions_on_one_partition(&*kv).await;
}

/// Insert-if-absent, compare-and-set, deletes.
pub async fn conditional_batches(kv: &dyn Kv) {
    let key = unique("acct");
    assert_eq!(kv.get(NS, &key).await.unwrap(), None);
    let put = |v: &[u8]| {
        KvBatch::default()
            .if_absent(NS, key.clone())
            .put(NS, key.clone(), v.to_vec())
    };
    assert!(kv.apply(put(b"1")).await.unwrap(), "absent: written");
    assert!(!kv.apply(put(b"2")).await.unwrap(), "present: refused");
    assert_eq!(kv.get(NS, &key).await.unwrap(), Some(b"1".to_vec()));
    let cas = |from: &[u8], to: Option<&[u8]>| {
        let b = KvBatch::default().if_equals(NS, key.clone(), from.to_vec());
        match to {
            Some(v) => b.put(NS, key.clone(), v.to_vec()),
            None => b.delete(NS, key.clone()),
        }
    };
    assert!(!kv.apply(cas(b"9", None)).await.unwrap(), "wrong value");
    assert_eq!(kv.get(NS, &key).await.unwrap(), Some(b"1".to_vec()));
    assert!(kv.apply(cas(b"1", Some(b"3"))).await.unwrap());
    assert_eq!(kv.get(NS, &key).await.unwrap(), Some(b"3".to_vec()));
    // Same key in another namespace is another record.
    assert_eq!(kv.get(OTHER_NS, &key).await.unwrap(), None);
    assert!(kv.apply(cas(b"3", None)).await.unwrap(), "delete");
    assert_eq!(kv.get(NS, &key).await.unwrap(), None);
    assert!(
        !kv.apply(cas(b"3", None)).await.unwrap(),
        "equals on absent"
    );
    // An empty value is a value, not an absence.
    assert!(kv.apply(put(b"")).await.unwrap());
    assert_eq!(kv.get(NS, &key).await.unwrap(), Some(Vec::new()));
    assert!(!kv.apply(put(b"x")).await.unwrap());
}

/// Prefix scans: key (byte) order, limits, namespaces kept apart.
pub async fn prefix_scans(kv: &dyn Kv) {
    let p = unique("s");
    let keys = [
        format!("{p}/u1/1"),
        format!("{p}/u1/2"),
        format!("{p}/u1/10"),
        format!("{p}/u1/Z"),
        format!("{p}/u2/1"),
        format!("{p}/u1"),
    ];
    for k in &keys {
        assert!(
            kv.apply(KvBatch::default().put(NS, k.clone(), k.as_bytes().to_vec()))
                .await
                .unwrap()
        );
    }
    kv.apply(KvBatch::default().put(OTHER_NS, format!("{p}/u1/other"), vec![1]))
        .await
        .unwrap();
    let scan = |prefix: String, limit| async move {
        kv.scan(NS, &prefix, limit)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                assert_eq!(k.as_bytes(), v.as_slice(), "value of {k}");
                k
            })
            .collect::<Vec<_>>()
    };
    // Byte order: "10" sorts between "1" and "2", "Z" after the digits.
    assert_eq!(
        scan(format!("{p}/u1/"), 10).await,
        vec![
            format!("{p}/u1/1"),
            format!("{p}/u1/10"),
            format!("{p}/u1/2"),
            format!("{p}/u1/Z"),
        ]
    );
    assert_eq!(scan(format!("{p}/u1/"), 2).await.len(), 2);
    assert_eq!(scan(format!("{p}/"), 100).await.len(), 6);
    assert_eq!(scan(format!("{p}/u1"), 100).await.len(), 5);
    assert!(scan(format!("{p}/u1/"), 0).await.is_empty());
    assert!(scan(format!("{p}/u3/"), 10).await.is_empty());
    kv.apply(KvBatch::default().delete(NS, format!("{p}/u1/1")))
        .await
        .unwrap();
    assert_eq!(scan(format!("{p}/u1/"), 10).await.len(), 3);
    assert_eq!(
        kv.scan(OTHER_NS, &format!("{p}/"), 10).await.unwrap(),
        vec![(format!("{p}/u1/other"), vec![1])]
    );
}

/// A batch whose second condition fails writes nothing, not even the writes
/// that a passing first condition guarded (both in one partition).
pub async fn batch_is_atomic(kv: &dyn Kv) {
    let p = unique("owner");
    let a = format!("{p}/reservation");
    let b = format!("{p}/record");
    kv.apply(KvBatch::default().put(NS, b.clone(), b"taken".to_vec()))
        .await
        .unwrap();
    let batch = KvBatch::default()
        .if_absent(NS, a.clone())
        .if_absent(NS, b.clone())
        .put(NS, a.clone(), b"mine".to_vec())
        .put(NS, b.clone(), b"mine".to_vec());
    assert!(!kv.apply(batch).await.unwrap());
    assert_eq!(kv.get(NS, &a).await.unwrap(), None);
    assert_eq!(kv.get(NS, &b).await.unwrap(), Some(b"taken".to_vec()));
    let batch = KvBatch::default()
        .if_absent(NS, a.clone())
        .put(NS, a.clone(), b"mine".to_vec())
        .delete(NS, b.clone());
    assert!(kv.apply(batch).await.unwrap());
    assert_eq!(kv.get(NS, &a).await.unwrap(), Some(b"mine".to_vec()));
    assert_eq!(kv.get(NS, &b).await.unwrap(), None);
}

/// Conditions on two partitions are refused before anything is written;
/// writes outside the conditions' partition follow a condition that held
/// and are skipped when it failed.
pub async fn conditions_on_one_partition(kv: &dyn Kv) {
    let a = unique("left");
    let b = unique("right");
    let spanning = KvBatch::default()
        .if_absent(NS, a.clone())
        .if_absent(NS, b.clone())
        .put(NS, a.clone(), b"x".to_vec());
    match kv.apply(spanning).await {
        Err(chalktalk_actors::store::StoreError::Conflict(_)) => {}
        other => panic!("conditions on two partitions: expected Conflict, got {other:?}"),
    }
    assert_eq!(kv.get(NS, &a).await.unwrap(), None);
    // One partition across namespaces: `a` and `a/x` in two namespaces.
    let across_ns = KvBatch::default()
        .if_absent(NS, format!("{a}/x"))
        .if_absent(OTHER_NS, a.clone())
        .put(OTHER_NS, a.clone(), b"ns".to_vec());
    assert!(
        kv.apply(across_ns).await.unwrap(),
        "one partition, two namespaces"
    );
    assert!(
        kv.apply(KvBatch::default().delete(OTHER_NS, a.clone()))
            .await
            .unwrap()
    );
    let guarded = |v: &[u8]| {
        KvBatch::default()
            .if_absent(NS, a.clone())
            .put(NS, a.clone(), v.to_vec())
            .put(OTHER_NS, b.clone(), v.to_vec())
    };
    assert!(kv.apply(guarded(b"1")).await.unwrap());
    assert_eq!(kv.get(OTHER_NS, &b).await.unwrap(), Some(b"1".to_vec()));
    assert!(!kv.apply(guarded(b"2")).await.unwrap());
    assert_eq!(kv.get(OTHER_NS, &b).await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(kv.get(NS, &a).await.unwrap(), Some(b"1".to_vec()));
}
