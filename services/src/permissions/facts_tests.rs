//! The active index: the per-frame questions read only ACTIVE pairs, on
//! the real embedded store, with a wrapper counting the records read.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::*;
use chalktalk_adapters::EmbeddedStore;

/// The real store, counting records handed out by `get` and `scan`.
struct Counting {
    inner: Arc<EmbeddedStore>,
    read: AtomicUsize,
}

#[async_trait]
impl Kv for Counting {
    async fn get(&self, ns: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read.fetch_add(1, Ordering::Relaxed);
        self.inner.get(ns, key).await
    }
    async fn scan(
        &self,
        ns: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = self.inner.scan(ns, prefix, limit).await?;
        self.read.fetch_add(rows.len(), Ordering::Relaxed);
        Ok(rows)
    }
    async fn apply(&self, batch: KvBatch) -> Result<bool, StoreError> {
        self.inner.apply(batch).await
    }
}

#[tokio::test]
async fn active_lookups_read_active_pairs_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv = Arc::new(Counting {
        inner: EmbeddedStore::open(dir.path()).expect("open"),
        read: AtomicUsize::new(0),
    });
    let f = Facts::new(Some(kv.clone() as Arc<dyn Kv>));
    // Coach c: 120 open invitations, 40 ended, athletes a1 and a2 active.
    for i in 0..160 {
        f.invite("c", &format!("x{i:03}")).await.expect("invite");
    }
    for i in 0..40 {
        f.end("c", &format!("x{i:03}")).await.expect("end");
    }
    for a in ["a1", "a2"] {
        f.invite("c", a).await.expect("invite");
        f.respond("c", a, true).await.expect("accept");
    }
    // Athlete a1: invited by 100 other coaches, active with c and k.
    for i in 0..100 {
        f.invite(&format!("k{i:03}"), "a1").await.expect("invite");
    }
    f.respond("k000", "a1", true).await.expect("accept");

    kv.read.store(0, Ordering::Relaxed);
    let athletes = f.active_athletes("c").await.expect("athletes");
    let mut names: Vec<_> = athletes.iter().map(|a| a.other.as_str()).collect();
    names.sort();
    assert_eq!(names, ["a1", "a2"]);
    assert!(athletes.iter().all(|a| a.since_ms > 0), "{athletes:?}");
    let mut coaches = f.active_coaches("a1").await.expect("coaches");
    coaches.sort();
    assert_eq!(coaches, ["c", "k000"]);
    assert_eq!(
        kv.read.load(Ordering::Relaxed),
        6,
        "2 active athletes + 2 active coaches, each coach confirmed by its record; nothing else"
    );

    // Ending leaves the index; re-inviting is not active.
    f.end("c", "a2").await.expect("end");
    f.invite("c", "a2").await.expect("re-invite");
    let athletes = f.active_athletes("c").await.expect("athletes");
    assert_eq!(athletes.len(), 1);
    assert_eq!(athletes[0].other, "a1");
    f.end("k000", "a1").await.expect("end");
    assert_eq!(f.active_coaches("a1").await.expect("coaches"), ["c"]);
}

/// A change whose conditional batch never happened (a crash after the
/// athlete-side entries were written first) shows nothing on either side.
#[tokio::test]
async fn athlete_side_entries_without_their_record_are_not_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv: Arc<dyn Kv> = EmbeddedStore::open(dir.path()).expect("open");
    let f = Facts::new(Some(kv.clone()));
    // What `swap` writes first when c's invitation of a is accepted, and
    // then nothing else: the record still says "invited".
    f.invite("c", "a").await.expect("invite");
    kv.apply(
        KvBatch::default()
            .put(NS_REL_ATHLETE, "a/c", Vec::new())
            .put(NS_ACTIVE_ATHLETE, "a/c", Vec::new())
            .put(NS_REL_ATHLETE, "a/ghost", Vec::new())
            .put(NS_ACTIVE_ATHLETE, "a/ghost", Vec::new()),
    )
    .await
    .expect("write");
    assert!(f.active_coaches("a").await.expect("coaches").is_empty());
    let of = f.of_athlete("a").await.expect("of athlete");
    assert_eq!(of.len(), 1, "{of:?}");
    assert_eq!(of[0].state, RelState::Invited);
    assert!(f.active_athletes("c").await.expect("athletes").is_empty());
    // Accepting for real makes it visible on both sides.
    f.respond("c", "a", true).await.expect("accept");
    assert_eq!(f.active_coaches("a").await.expect("coaches"), ["c"]);
    assert_eq!(f.active_athletes("c").await.expect("athletes").len(), 1);
}
