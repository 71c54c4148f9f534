//! Media jobs across nodes: every node's pool works from the one shared
//! store, and a job runs on the node that holds its lease
//! ([`LeaseKind::Job`]), renewed while the job is queued or running.
//!
//! - A node takes a new job's lease before storing it (submit), so no
//!   other node's scan can take it between the two.
//! - At start and then every lease time, a pool scans the store's
//!   unfinished jobs and takes those whose lease is free or expired: a
//!   dead node's jobs are taken over by one of the live nodes (its lease
//!   is held by at most one), re-queued with their attempts kept.
//! - A job whose lease this node loses (renewals failed for the whole
//!   lease time) is dropped here without a state write: its new node runs
//!   it. Leases of jobs that reached a final state are released.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ractor::ActorRef;

use super::actor::PoolMsg;
use crate::lease::{Acquired, Lease, LeaseKind, Placement};
use crate::store::StoreError;

/// The job leases this node holds, with the tasks renewing them.
pub struct Claims {
    placement: Arc<Placement>,
    held: Mutex<HashMap<String, (Lease, tokio::task::JoinHandle<()>)>>,
}

impl Claims {
    pub fn new(placement: Arc<Placement>) -> Arc<Claims> {
        Arc::new(Claims {
            placement,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// How often a pool looks for jobs nobody holds.
    pub fn scan_every(&self) -> std::time::Duration {
        self.placement.ttl
    }

    pub fn holds(&self, id: &str) -> bool {
        crate::lock(&self.held).contains_key(id)
    }

    /// Takes job `id`'s lease for this node: `true` once held (renewed
    /// until released), `false` when another node holds it.
    pub(super) async fn take(
        &self,
        id: &str,
        pool: &ActorRef<PoolMsg>,
    ) -> Result<bool, StoreError> {
        if self.holds(id) {
            return Ok(true);
        }
        let p = &self.placement;
        let ttl = p.ttl.as_millis() as u64;
        match p.leases.acquire(LeaseKind::Job, id, &p.node, ttl).await? {
            Acquired::Held(lease) => {
                p.holding(&lease);
                let job = id.to_string();
                let keeper =
                    crate::lease::keep(p.clone(), lease.clone(), pool.clone(), move |why| {
                        PoolMsg::Lost(job.clone(), why)
                    });
                crate::lock(&self.held).insert(id.to_string(), (lease, keeper));
                Ok(true)
            }
            Acquired::Busy(_) => Ok(false),
        }
    }

    /// Gives up the leases of jobs `keep` says no longer are this node's.
    pub(super) fn release_unless(&self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<(Lease, tokio::task::JoinHandle<()>)> = {
            let mut held = crate::lock(&self.held);
            let ids: Vec<String> = held.keys().filter(|id| !keep(id)).cloned().collect();
            ids.iter().filter_map(|id| held.remove(id)).collect()
        };
        for (lease, keeper) in gone {
            keeper.abort();
            crate::lease::let_go(self.placement.clone(), lease);
        }
    }

    /// Forgets a lease that moved to another node (its renewal task ended).
    pub(super) fn lost(&self, id: &str) {
        if let Some((lease, keeper)) = crate::lock(&self.held).remove(id) {
            keeper.abort();
            self.placement.dropped(&lease);
        }
    }
}

impl Drop for Claims {
    /// A pool that stops stops renewing (its leases expire, and other
    /// nodes take its unfinished jobs over); a graceful node stop releases
    /// them at once (`Placement::release_all`).
    fn drop(&mut self) {
        for (_, (_, keeper)) in crate::lock(&self.held).drain() {
            keeper.abort();
        }
    }
}
