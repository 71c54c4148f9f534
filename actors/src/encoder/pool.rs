//! The EncoderPool: a bounded queue of media jobs run by N Encoder actors,
//! one job each at a time, under a pool actor that supervises them.
//!
//! - **Bound**: ractor mailboxes are unbounded, so the bound is the queue
//!   length check at [`PoolHandle::submit`]: with `queue_capacity` jobs
//!   waiting (and no idle encoder), a submit is refused at once with
//!   [`SubmitError::Busy`] and a `retry_after_secs` estimated from the mean
//!   run time of recent jobs × waiting jobs / workers (at least 1 s).
//! - **Durable first**: a job is stored `Queued` before it is accepted, and
//!   every state change is stored (`MediaStore::put_job`) before the
//!   listener hears of it. Listener events of a job arrive in order:
//!   `Queued`, `Started`, `Progress`.., `Retrying`.., then one of `Ready`,
//!   `Failed`, `Cancelled`.
//! - **Retries**: a retryable error (including `worker_crashed`: the
//!   transcoder panicked or its encoder died, and `worker_timeout`: the
//!   dead-man timer `timeout_ms` fired) puts the job back at the front of
//!   the queue after `retry_backoff`, until `max_attempts` runs were made;
//!   then it fails with the last error's code and "gave up after N attempts:
//!   <message>". A non-retryable error fails the job at once.
//! - **Cancel**: a queued job is removed; a running job's run future is
//!   dropped (the real transcoder kills its worker process then) before the
//!   job is stored `Cancelled`.
//! - **Restart**: [`EncoderPool::start`] re-queues the store's unfinished
//!   jobs, oldest first (running ones as queued, attempts kept), all of them
//!   even above capacity: they were accepted.
//! - **Cluster**: with [`Claims`] ([`EncoderPool::start_claimed`]) a job
//!   runs where its lease is held, and a dead node's jobs are taken over
//!   (`claims.rs`).

mod actor;
mod claims;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};

use self::actor::{PoolActor, PoolArgs, PoolMsg};
use self::worker::Notify;
use crate::encoder::{JobListener, JobRecord, JobSpec, JobState, MediaStore, Transcoder};
use crate::store::StoreError;
pub use claims::Claims;

/// Run time assumed for the `Busy` estimate before any job has run.
pub const DEFAULT_RUN_ESTIMATE: Duration = Duration::from_secs(30);

/// Pool settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Encoder actors, i.e. jobs run at once.
    pub workers: usize,
    /// Most jobs waiting to run (queued or waiting out a retry backoff).
    pub queue_capacity: usize,
    /// Wait before a failed run is tried again.
    pub retry_backoff: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 1,
            queue_capacity: 16,
            retry_backoff: Duration::from_secs(1),
        }
    }
}

/// Pool counters; `done`, `failed`, `retried` and `cancelled` count since
/// start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Jobs waiting to run (including retries waiting out their backoff).
    pub queued: usize,
    pub running: usize,
    pub workers: usize,
    pub done: u64,
    pub failed: u64,
    pub retried: u64,
    pub cancelled: u64,
}

/// Why a job was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    #[error("the encoder queue is full; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    #[error("a job with this id exists already")]
    Duplicate,
    #[error("the job could not be stored: {0}")]
    Store(#[from] StoreError),
    #[error("the encoder pool is stopped")]
    Stopped,
}

/// Why the pool could not start or a cancel did not complete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    #[error("media store: {0}")]
    Store(#[from] StoreError),
    #[error("the encoder pool could not start: {0}")]
    Spawn(String),
    #[error("the encoder pool is stopped")]
    Stopped,
}

/// Counters the pool actor updates and [`PoolHandle::stats`] reads.
#[derive(Default)]
struct Shared {
    queued: AtomicUsize,
    running: AtomicUsize,
    workers: AtomicUsize,
    done: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    cancelled: AtomicU64,
}

/// Starts pools; see the module docs.
pub struct EncoderPool;

impl EncoderPool {
    /// Loads the store's unfinished jobs, re-queues them (running ones are
    /// stored as queued again) and starts the pool actor with
    /// `config.workers` encoders (at least one).
    pub async fn start(
        config: PoolConfig,
        transcoder: Arc<dyn Transcoder>,
        store: Arc<dyn MediaStore>,
        listener: Arc<dyn JobListener>,
    ) -> Result<PoolHandle, PoolError> {
        Self::start_claimed(config, transcoder, store, listener, None).await
    }

    /// [`EncoderPool::start`] for a node of a cluster: only the jobs whose
    /// lease it takes are its own (see `claims.rs`).
    pub async fn start_claimed(
        config: PoolConfig,
        transcoder: Arc<dyn Transcoder>,
        store: Arc<dyn MediaStore>,
        listener: Arc<dyn JobListener>,
        claims: Option<Arc<Claims>>,
    ) -> Result<PoolHandle, PoolError> {
        let mut requeue = store.unfinished_jobs().await?;
        // With claims, a job is stored queued again once its lease is taken
        // (the pool actor does it).
        if claims.is_none() {
            for record in &mut requeue {
                if record.state != JobState::Queued {
                    record.state = JobState::Queued;
                    record.updated_ms = crate::now_ms();
                    store.put_job(record).await?;
                }
            }
        }
        let shared = Arc::new(Shared::default());
        let args = PoolArgs {
            config,
            transcoder,
            store,
            notify: Notify::spawn(listener),
            shared: shared.clone(),
            requeue,
            claims,
        };
        let (actor, _) = Actor::spawn(None, PoolActor, args)
            .await
            .map_err(|e| PoolError::Spawn(e.to_string()))?;
        Ok(PoolHandle { actor, shared })
    }
}

/// A running pool; clones share it.
#[derive(Clone)]
pub struct PoolHandle {
    actor: ActorRef<PoolMsg>,
    shared: Arc<Shared>,
}

impl PoolHandle {
    /// Stores the job as queued and accepts it, or refuses it at once
    /// (`Busy` when the queue is full, `Duplicate` for a known id).
    pub async fn submit(&self, spec: JobSpec) -> Result<JobRecord, SubmitError> {
        match self
            .actor
            .call(|reply| PoolMsg::Submit { spec, reply }, None)
            .await
        {
            Ok(CallResult::Success(result)) => result,
            _ => Err(SubmitError::Stopped),
        }
    }

    /// Cancels a queued or running job; `Ok(true)` once it is stored
    /// cancelled (a running job's run has been dropped by then), `Ok(false)`
    /// if the job is unknown or final already.
    pub async fn cancel(&self, id: &str) -> Result<bool, PoolError> {
        let id = id.to_owned();
        match self
            .actor
            .call(|reply| PoolMsg::Cancel { id, reply }, None)
            .await
        {
            Ok(CallResult::Success(result)) => result,
            _ => Err(PoolError::Stopped),
        }
    }

    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        PoolStats {
            queued: s.queued.load(Ordering::Relaxed),
            running: s.running.load(Ordering::Relaxed),
            workers: s.workers.load(Ordering::Relaxed),
            done: s.done.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            retried: s.retried.load(Ordering::Relaxed),
            cancelled: s.cancelled.load(Ordering::Relaxed),
        }
    }

    /// Stops the pool and its encoders; running jobs are aborted and stay
    /// stored as running, so the next start re-queues them.
    pub fn stop(&self) {
        self.actor.stop(None);
    }

    /// [`PoolHandle::stop`], returning once the pool actor has stopped.
    pub async fn stop_and_wait(&self) {
        let _ = self.actor.stop_and_wait(None, None).await;
    }
}

/// Seconds a refused caller should wait: mean recent run time × waiting
/// jobs / workers, rounded up, at least 1.
fn retry_after(recent: &VecDeque<Duration>, waiting: usize, workers: usize) -> u64 {
    let mean = if recent.is_empty() {
        DEFAULT_RUN_ESTIMATE
    } else {
        recent.iter().sum::<Duration>() / recent.len() as u32
    };
    let secs = mean.as_secs_f64() * waiting as f64 / workers.max(1) as f64;
    (secs.ceil() as u64).max(1)
}
