//! Account creation in steps (reserve, write, confirm) on the real embedded
//! store: a crash after any step leaves nothing a user can see, and the
//! email can be signed up for again once the grace period is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use chalktalk_adapters::EmbeddedStore;
use chalktalk_adapters::kv::{Kv, KvBatch};
use chalktalk_protocol::Role;

use super::model::{Account, NS_ACCOUNT, NS_EMAIL};
use super::store::{AccountStore, NS_EXTERNAL, Reservation, encode, external_key};

/// The real store, dying (every call fails) after `budget` applies.
struct Dying {
    inner: Arc<EmbeddedStore>,
    budget: AtomicUsize,
}

#[async_trait]
impl Kv for Dying {
    async fn get(&self, ns: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(ns, key).await
    }
    async fn scan(
        &self,
        ns: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan(ns, prefix, limit).await
    }
    async fn apply(&self, batch: KvBatch) -> Result<bool, StoreError> {
        let left = self.budget.load(Ordering::SeqCst);
        if left == 0 {
            return Err(StoreError::Unavailable("the process died".into()));
        }
        self.budget.store(left - 1, Ordering::SeqCst);
        self.inner.apply(batch).await
    }
}

fn account(id: &str, email: &str, external: Option<(&str, &str)>) -> Account {
    Account {
        id: id.into(),
        email: email.into(),
        password_hash: String::new(),
        role: Role::Athlete,
        subscription: None,
        tier: None,
        created_ms: chalktalk_actors::now_ms(),
        external: external.map(|(i, s)| (i.into(), s.into())),
        totp_secret: None,
        recovery_hashes: Vec::new(),
    }
}

fn store(kv: Arc<dyn Kv>, grace_ms: u64) -> AccountStore {
    AccountStore { kv, grace_ms }
}

#[tokio::test]
async fn a_crash_after_any_step_is_invisible_and_repaired() {
    // Reserve email, reserve identity, write the record: 3 applies.
    for budget in 0..=3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = EmbeddedStore::open(dir.path()).expect("open");
        let dying = Arc::new(Dying {
            inner: inner.clone(),
            budget: AtomicUsize::new(budget),
        });
        let a = account("u-dead", "a@example.com", Some(("iss", "sub")));
        let result = store(dying, 30_000).create(&a).await;
        // After the crash: another process, long after the grace period.
        let live = store(inner.clone(), 0);
        let by_email = live.by_email("a@example.com").await.expect("read");
        let by_ext = live.by_external("iss", "sub").await.expect("read");
        if budget == 3 {
            assert!(result.expect("all steps ran"), "created");
            assert_eq!(by_email.expect("by email").account.id, "u-dead");
            assert_eq!(by_ext.expect("by identity").account.id, "u-dead");
            continue;
        }
        assert!(result.is_err(), "budget {budget}: the store died mid-way");
        assert!(by_email.is_none(), "budget {budget}: visible by email");
        assert!(by_ext.is_none(), "budget {budget}: visible by identity");
        // The same email and identity can be signed up for again.
        let b = account("u-next", "a@example.com", Some(("iss", "sub")));
        assert!(live.create(&b).await.expect("create"), "budget {budget}");
        assert_eq!(
            live.by_email("a@example.com")
                .await
                .expect("read")
                .expect("by email")
                .account
                .id,
            "u-next"
        );
        assert_eq!(
            live.by_external("iss", "sub")
                .await
                .expect("read")
                .expect("by identity")
                .account
                .id,
            "u-next"
        );
    }
}

#[tokio::test]
async fn a_creation_in_flight_keeps_its_email_until_the_grace_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv: Arc<dyn Kv> = EmbeddedStore::open(dir.path()).expect("open");
    // A pending reservation, fresh: someone is creating this account now.
    let pending = Reservation {
        id: "u-busy".into(),
        at_ms: chalktalk_actors::now_ms(),
    };
    kv.apply(KvBatch::default().put(NS_EMAIL, "b@example.com", encode(&pending).expect("enc")))
        .await
        .expect("write");
    let s = store(kv.clone(), 30_000);
    assert!(s.by_email("b@example.com").await.expect("read").is_none());
    let c = account("u-late", "b@example.com", None);
    assert!(
        !s.create(&c).await.expect("create"),
        "taken while in flight"
    );
    // Past the grace period (0 here) the reservation is taken over, and
    // the slow creator's own record write is refused by the fence.
    assert!(store(kv.clone(), 0).create(&c).await.expect("take over"));
    let busy = account("u-busy", "b@example.com", None);
    let raw = KvBatch::default().if_absent(NS_ACCOUNT, "u-busy").put(
        NS_ACCOUNT,
        "u-busy",
        encode(&busy).expect("enc"),
    );
    assert!(!kv.apply(raw).await.expect("write"), "fenced");
    assert!(
        s.get("u-busy").await.expect("read").is_none(),
        "a tombstone is no account"
    );
    assert_eq!(
        s.by_email("b@example.com")
            .await
            .expect("read")
            .expect("found")
            .account
            .id,
        "u-late"
    );
}

#[tokio::test]
async fn concurrent_sign_ups_for_one_email_make_one_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv: Arc<dyn Kv> = EmbeddedStore::open(dir.path()).expect("open");
    let s = store(kv.clone(), 30_000);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.create(&account(&format!("u-{i}"), "c@example.com", None))
                    .await
                    .expect("create")
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.expect("join"));
    }
    assert_eq!(won, 1);
    let winner = s
        .by_email("c@example.com")
        .await
        .expect("read")
        .expect("found");
    // The losers left no account and no reservation of theirs.
    for i in 0..8 {
        let id = format!("u-{i}");
        let stored = kv.get(NS_ACCOUNT, &id).await.expect("read").is_some();
        assert_eq!(stored, id == winner.account.id, "{id}");
    }
    let r = Reservation::decode(
        &kv.get(NS_EMAIL, "c@example.com")
            .await
            .expect("r")
            .expect("some"),
    );
    assert_eq!(r.id, winner.account.id);
}

#[tokio::test]
async fn reservations_written_before_the_steps_still_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv: Arc<dyn Kv> = EmbeddedStore::open(dir.path()).expect("open");
    let old = account("u-old", "d@example.com", Some(("iss", "old")));
    // The layout before reservations: bare ids, written with the account.
    let b = KvBatch::default()
        .put(NS_ACCOUNT, "u-old", encode(&old).expect("enc"))
        .put(NS_EMAIL, "d@example.com", b"u-old".to_vec())
        .put(NS_EXTERNAL, external_key("iss", "old"), b"u-old".to_vec());
    kv.apply(b).await.expect("write");
    let s = store(kv, 0);
    assert_eq!(
        s.by_email("d@example.com")
            .await
            .expect("r")
            .expect("f")
            .account
            .id,
        "u-old"
    );
    assert_eq!(
        s.by_external("iss", "old")
            .await
            .expect("r")
            .expect("f")
            .account
            .id,
        "u-old"
    );
    assert!(
        !s.create(&account("u-new", "d@example.com", None))
            .await
            .expect("create")
    );
}

#[tokio::test]
async fn a_slow_creator_that_committed_first_keeps_its_email() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv: Arc<dyn Kv> = EmbeddedStore::open(dir.path()).expect("open");
    // An old reservation whose account record does exist: committed, only
    // the answer was lost. Nobody may take it over.
    let old = Reservation {
        id: "u-slow".into(),
        at_ms: 1,
    };
    let slow = account("u-slow", "e@example.com", None);
    let b = KvBatch::default()
        .put(NS_EMAIL, "e@example.com", encode(&old).expect("enc"))
        .put(NS_ACCOUNT, "u-slow", encode(&slow).expect("enc"));
    kv.apply(b).await.expect("write");
    let s = store(kv, 0);
    assert!(
        !s.create(&account("u-other", "e@example.com", None))
            .await
            .expect("create")
    );
    assert_eq!(
        s.by_email("e@example.com")
            .await
            .expect("r")
            .expect("f")
            .account
            .id,
        "u-slow"
    );
}
