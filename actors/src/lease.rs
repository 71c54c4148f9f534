//! The lease port: which node owns a review room, chat thread or inbox,
//! held for a while and renewed, with an epoch that grows every time the
//! lease changes hands (the fencing token a later step attaches to the
//! owner's writes). Adapter: `chalktalk_adapters::lease::KvLeases`, on the
//! key-value port of any store, so the lease and its condition sit on one
//! partition on every engine.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// What a lease is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseKind {
    Room,
    Thread,
    Inbox,
    /// A media job (encoder pool): the node running it.
    Job,
}

impl LeaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Room => "room",
            LeaseKind::Thread => "thread",
            LeaseKind::Inbox => "inbox",
            LeaseKind::Job => "job",
        }
    }
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub kind: LeaseKind,
    pub id: String,
    /// The node that holds it.
    pub owner: String,
    /// Grows by one each time another owner (or the same one after a
    /// release or an expiry) takes it; never goes back.
    pub epoch: u64,
    /// Wall-clock ms after which anyone may take it.
    pub expires_ms: u64,
}

/// The outcome of [`Leases::acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Ours (new epoch, or the same epoch renewed).
    Held(Lease),
    /// Another owner holds it until its `expires_ms`.
    Busy(Lease),
}

/// Leases of rooms, threads and inboxes.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes the lease for `owner` for `ttl_ms`: free, expired or released
    /// leases are taken with the next epoch; one `owner` holds already is
    /// extended at its epoch.
    async fn acquire(
        &self,
        kind: LeaseKind,
        id: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<Acquired, StoreError>;
    /// Extends `lease` if it is still held at that epoch (and not expired);
    /// `None` when it was lost.
    async fn renew(&self, lease: &Lease, ttl_ms: u64) -> Result<Option<Lease>, StoreError>;
    /// Gives `lease` up if still held at that epoch (the next owner need
    /// not wait for the expiry).
    async fn release(&self, lease: &Lease) -> Result<(), StoreError>;
    /// The lease as stored (expired or not).
    async fn holder(&self, kind: LeaseKind, id: &str) -> Result<Option<Lease>, StoreError>;
}

/// Which node starts a room or thread that no node serves (whichever it
/// is, the lease then keeps it there while it is used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlacePolicy {
    /// The node where it is first used (its first member's ops never
    /// cross a link).
    #[default]
    FirstUse,
    /// The live node with the highest rendezvous score of (node, id): every
    /// node picks the same one without asking, and a node that joins or
    /// leaves moves only its share of new placements.
    Rendezvous,
}

impl std::str::FromStr for PlacePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<PlacePolicy, String> {
        match s {
            "first_use" => Ok(PlacePolicy::FirstUse),
            "rendezvous" => Ok(PlacePolicy::Rendezvous),
            _ => Err("one of first_use, rendezvous".into()),
        }
    }
}

/// How this node places rooms: its name, the lease store and the lease
/// time. A node outside any cluster has none: its rooms are local and
/// write with epoch 0.
pub struct Placement {
    pub node: String,
    pub leases: Arc<dyn Leases>,
    /// How long a lease lasts unless renewed (renewed every third of it).
    pub ttl: Duration,
    /// Where a room or thread that no node serves starts.
    pub policy: PlacePolicy,
    /// The leases this node holds now (for a drain: [`Placement::release_all`]).
    pub held: std::sync::Mutex<std::collections::HashMap<String, Lease>>,
}

/// Why this node cannot serve a room or thread.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// Another node holds the lease until it expires.
    #[error("{kind} {id} is served by node {owner}")]
    Elsewhere {
        kind: &'static str,
        id: String,
        owner: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Placement {
    pub fn new(node: String, leases: Arc<dyn Leases>, ttl: Duration) -> Placement {
        Placement {
            node,
            leases,
            ttl,
            policy: PlacePolicy::FirstUse,
            held: Default::default(),
        }
    }

    /// The same placement with `policy`.
    pub fn with_policy(mut self, policy: PlacePolicy) -> Placement {
        self.policy = policy;
        self
    }

    fn key(l: &Lease) -> String {
        format!("{}:{}", l.kind.as_str(), l.id)
    }

    /// Records a lease taken or renewed.
    pub fn holding(&self, l: &Lease) {
        crate::lock(&self.held).insert(Self::key(l), l.clone());
    }

    /// Forgets a lease lost or released.
    pub fn dropped(&self, l: &Lease) {
        let mut held = crate::lock(&self.held);
        if held.get(&Self::key(l)).is_some_and(|h| h.epoch == l.epoch) {
            held.remove(&Self::key(l));
        }
    }

    /// Gives up every lease this node holds (a graceful stop), so that
    /// other nodes take its rooms at once instead of after the lease time;
    /// at most `within`. Returns how many were released.
    pub async fn release_all(&self, within: Duration) -> usize {
        let held: Vec<Lease> = crate::lock(&self.held).drain().map(|(_, l)| l).collect();
        let n = held.len();
        let all = futures_util::future::join_all(held.iter().map(|l| self.leases.release(l)));
        match tokio::time::timeout(within, all).await {
            Ok(results) => {
                let failed = results.iter().filter(|r| r.is_err()).count();
                if failed > 0 {
                    tracing::warn!(failed, "some leases were not released; they expire");
                }
                n - failed
            }
            Err(_) => {
                tracing::warn!(n, "releasing leases timed out; they expire");
                0
            }
        }
    }

    /// Takes (or extends) the lease of `kind/id` for this node.
    pub async fn take(&self, kind: LeaseKind, id: &str) -> Result<Lease, PlaceError> {
        let ttl = self.ttl.as_millis() as u64;
        match self.leases.acquire(kind, id, &self.node, ttl).await? {
            Acquired::Held(l) => {
                crate::metrics::metrics().lease_taken.inc();
                self.holding(&l);
                Ok(l)
            }
            Acquired::Busy(l) => Err(PlaceError::Elsewhere {
                kind: kind.as_str(),
                id: id.to_string(),
                owner: l.owner,
            }),
        }
    }
}

/// Keeps a lease held by an actor: renews it every third of its time (a
/// sixth after a failed renewal) until the returned task is aborted (the
/// actor's `post_stop`). When the lease is lost, or expires while the
/// store cannot be reached, it sends `lost(why)` to the actor and ends.
pub fn keep<M: ractor::Message>(
    p: Arc<Placement>,
    mut lease: Lease,
    me: ractor::ActorRef<M>,
    lost: impl Fn(String) -> M + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let m = crate::metrics::metrics();
        let mut wait = p.ttl / 3;
        loop {
            tokio::time::sleep(wait).await;
            match p.leases.renew(&lease, p.ttl.as_millis() as u64).await {
                Ok(Some(l)) => {
                    m.lease_renewals.inc();
                    p.holding(&l);
                    lease = l;
                    wait = p.ttl / 3;
                }
                Ok(None) => {
                    m.lease_losses.inc();
                    p.dropped(&lease);
                    let _ = me.cast(lost("its lease moved to another node".into()));
                    return;
                }
                Err(e) if crate::now_ms() >= lease.expires_ms => {
                    m.lease_losses.inc();
                    p.dropped(&lease);
                    let _ = me.cast(lost(format!(
                        "its lease expired while renewals failed: {e}"
                    )));
                    return;
                }
                Err(e) => {
                    tracing::warn!(kind = lease.kind.as_str(), id = %lease.id, %e, "lease renewal failed; retrying");
                    wait = p.ttl / 6;
                }
            }
        }
    })
}

/// Gives a lease up in the background (a stopping actor; a no-op if it
/// moved already), so that the next owner need not wait for its expiry.
pub fn let_go(p: Arc<Placement>, lease: Lease) {
    p.dropped(&lease);
    tokio::spawn(async move {
        if let Err(e) = p.leases.release(&lease).await {
            tracing::warn!(kind = lease.kind.as_str(), id = %lease.id, %e, "lease release failed; it expires");
        }
    });
}
