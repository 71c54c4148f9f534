//! The EncoderPool actor: owns the queue, the running jobs and the Encoder
//! children, stores every state change and tells the listener. All job
//! state lives here, so decisions (capacity, duplicates, retries, cancels)
//! never race; store writes are awaited in the actor, which keeps each job's
//! stored state and its events in order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use ractor_cluster_derive::RactorMessage;
use tracing::Instrument;

use super::worker::{Encoder, EncoderArgs, EncoderMsg, Finished, Notify, Outcome};
use super::{Claims, PoolConfig, PoolError, Shared, SubmitError, retry_after};
use crate::encoder::{JobError, JobEvent, JobRecord, JobSpec, JobState, MediaStore, Transcoder};
use crate::now_ms;

mod outcome;

/// Run times remembered for the `Busy` estimate.
const RECENT_RUNS: usize = 32;

#[derive(RactorMessage)]
pub(super) enum PoolMsg {
    Submit {
        spec: JobSpec,
        reply: RpcReplyPort<Result<JobRecord, SubmitError>>,
    },
    Cancel {
        id: String,
        reply: RpcReplyPort<Result<bool, PoolError>>,
    },
    // Internal:
    Finished(Finished),
    /// A retried job's backoff is over: back to the front of the queue.
    RetryDue(String),
    /// In a cluster: the job's lease moved to another node (why).
    Lost(String, String),
    /// In a cluster: time to look for jobs no live node holds.
    Scan,
}

pub(super) struct PoolArgs {
    pub config: PoolConfig,
    pub transcoder: Arc<dyn Transcoder>,
    pub store: Arc<dyn MediaStore>,
    pub notify: Notify,
    pub shared: Arc<Shared>,
    /// Unfinished jobs from the store, oldest first (already `Queued`
    /// without claims).
    pub requeue: Vec<JobRecord>,
    /// In a cluster: the job leases of this node.
    pub claims: Option<Arc<Claims>>,
}

struct Worker {
    actor: ActorRef<EncoderMsg>,
    job: Option<String>,
    /// False once a message to it failed; its supervision event replaces it.
    alive: bool,
}

struct Running {
    record: JobRecord,
    worker: ActorId,
    /// Callers waiting for a cancel of this job.
    cancels: Vec<RpcReplyPort<Result<bool, PoolError>>>,
}

pub(super) struct PoolState {
    args: PoolArgs,
    queue: VecDeque<JobRecord>,
    /// Jobs waiting out `retry_backoff` before going back to the queue.
    backoff: HashMap<String, JobRecord>,
    running: HashMap<String, Running>,
    workers: HashMap<ActorId, Worker>,
    recent: VecDeque<Duration>,
    /// Running jobs whose lease moved: their runs end without a state
    /// write.
    lost: HashSet<String>,
}

pub(super) struct PoolActor;

impl Actor for PoolActor {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = PoolArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PoolMsg>,
        mut args: PoolArgs,
    ) -> Result<PoolState, ActorProcessingErr> {
        let requeue = std::mem::take(&mut args.requeue);
        let mut state = PoolState {
            args,
            queue: VecDeque::new(),
            backoff: HashMap::new(),
            running: HashMap::new(),
            workers: HashMap::new(),
            recent: VecDeque::new(),
            lost: HashSet::new(),
        };
        for _ in 0..state.args.config.workers.max(1) {
            state.spawn_worker(&myself).await?;
        }
        // Accepted before the restart: all of them, even above capacity
        // (in a cluster, those whose lease this node takes).
        for mut record in requeue {
            if !state.claim(&myself, &mut record).await {
                continue;
            }
            state.queue.push_back(record);
            let position = state.queue.len();
            if let Some(r) = state.queue.back() {
                tracing::info!(job = %r.spec.id, attempts = r.attempts, "re-queued after restart");
                state
                    .args
                    .notify
                    .event(&r.spec, JobEvent::Queued { position });
            }
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<PoolMsg>,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(c) = &state.args.claims {
            myself.send_interval(c.scan_every(), || PoolMsg::Scan);
        }
        state.dispatch().await;
        state.publish();
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<PoolMsg>,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        // Encoders abort their runs when they stop; the jobs stay stored as
        // running and are re-queued by the next start.
        myself.stop_children(None);
        for (_, run) in state.running.drain() {
            for reply in run.cancels {
                let _ = reply.send(Err(PoolError::Stopped));
            }
        }
        state.workers.clear();
        state.queue.clear();
        state.backoff.clear();
        state.publish();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PoolMsg>,
        msg: PoolMsg,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Submit { spec, reply } => {
                let span = tracing::info_span!("job", job = %spec.id);
                let result = state.submit(&myself, spec).instrument(span).await;
                let _ = reply.send(result);
            }
            PoolMsg::Cancel { id, reply } => {
                let span = tracing::info_span!("job", job = %id);
                state.cancel(id, reply).instrument(span).await;
            }
            PoolMsg::Finished(f) if state.lost.contains(&f.id) => {
                // Its new node runs it: nothing of this run is stored.
                state.lost.remove(&f.id);
                state.running.remove(&f.id);
                if let Some(w) = state.workers.get_mut(&f.worker) {
                    w.job = None;
                }
            }
            PoolMsg::Finished(f) => {
                let current = state
                    .running
                    .get(&f.id)
                    .is_some_and(|r| r.worker == f.worker && r.record.attempts == f.attempt);
                if let Some(w) = state.workers.get_mut(&f.worker)
                    && w.job.as_deref() == Some(f.id.as_str())
                {
                    w.job = None;
                }
                if current {
                    if !matches!(f.outcome, Outcome::Aborted) {
                        state.recent.push_back(f.elapsed);
                        if state.recent.len() > RECENT_RUNS {
                            state.recent.pop_front();
                        }
                    }
                    let span = tracing::info_span!("job", job = %f.id);
                    state
                        .finish(&myself, &f.id, f.outcome)
                        .instrument(span)
                        .await;
                }
            }
            PoolMsg::RetryDue(id) => {
                if let Some(record) = state.backoff.remove(&id) {
                    state.queue.push_front(record);
                }
            }
            PoolMsg::Lost(id, why) => state.lose(&id, &why),
            PoolMsg::Scan => state.scan(&myself).await,
        }
        state.dispatch().await;
        state.publish();
        state.release_finished();
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<PoolMsg>,
        evt: SupervisionEvent,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some(worker) = state.workers.remove(&cell.get_id()) else {
            return Ok(());
        };
        tracing::warn!(worker = %cell.get_id(), %why, "encoder died; replacing it");
        if let Err(e) = state.spawn_worker(&myself).await {
            tracing::error!(%e, "could not replace an encoder; the pool runs with fewer");
        }
        if let Some(id) = worker.job {
            let error = JobError::new("worker_crashed", format!("encoder died: {why}"), true);
            let span = tracing::info_span!("job", job = %id);
            state
                .finish(&myself, &id, Outcome::Error(error))
                .instrument(span)
                .await;
        }
        state.dispatch().await;
        state.publish();
        state.release_finished();
        Ok(())
    }
}

impl PoolState {
    /// Takes `record`'s lease and stores it queued again: `false` when
    /// another node holds it (or the store cannot say: the next scan
    /// tries again).
    async fn claim(&mut self, myself: &ActorRef<PoolMsg>, record: &mut JobRecord) -> bool {
        let Some(claims) = self.args.claims.clone() else {
            return true;
        };
        match claims.take(&record.spec.id, myself).await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                tracing::warn!(job = %record.spec.id, %e, "job lease unavailable; the next scan retries");
                return false;
            }
        }
        if record.state != JobState::Queued {
            record.state = JobState::Queued;
            record.updated_ms = now_ms();
            if self.put(record).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Takes over the store's unfinished jobs no live node holds.
    async fn scan(&mut self, myself: &ActorRef<PoolMsg>) {
        let Some(claims) = self.args.claims.clone() else {
            return;
        };
        let unfinished = match self.args.store.unfinished_jobs().await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(%e, "job scan: the store cannot be read");
                return;
            }
        };
        for mut record in unfinished {
            let id = record.spec.id.clone();
            if self.knows(&id) || claims.holds(&id) || !self.claim(myself, &mut record).await {
                continue;
            }
            tracing::info!(job = %id, attempts = record.attempts, "job taken over from a node that is gone");
            self.queue.push_back(record);
            let position = self.queue.len();
            if let Some(r) = self.queue.back() {
                self.args
                    .notify
                    .event(&r.spec, JobEvent::Queued { position });
            }
        }
    }

    /// The job's lease moved: drop it here without a state write.
    fn lose(&mut self, id: &str, why: &str) {
        if let Some(c) = &self.args.claims {
            c.lost(id);
        }
        tracing::warn!(job = %id, %why, "job lease lost; another node runs it");
        self.queue.retain(|r| r.spec.id != id);
        self.backoff.remove(id);
        if let Some(run) = self.running.get(id) {
            self.lost.insert(id.to_string());
            if let Some(w) = self.workers.get(&run.worker) {
                let _ = w.actor.cast(EncoderMsg::Cancel(id.to_string()));
            }
        }
    }

    /// Releases the leases of jobs this pool no longer has.
    fn release_finished(&self) {
        if let Some(c) = &self.args.claims {
            c.release_unless(|id| self.knows(id));
        }
    }

    async fn spawn_worker(&mut self, myself: &ActorRef<PoolMsg>) -> Result<(), SpawnErr> {
        let args = EncoderArgs {
            transcoder: self.args.transcoder.clone(),
            notify: self.args.notify.clone(),
            pool: myself.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, Encoder, args, myself.get_cell()).await?;
        self.workers.insert(
            actor.get_id(),
            Worker {
                actor,
                job: None,
                alive: true,
            },
        );
        Ok(())
    }

    fn waiting(&self) -> usize {
        self.queue.len() + self.backoff.len()
    }

    fn idle_worker(&self) -> Option<ActorId> {
        self.workers
            .iter()
            .find(|(_, w)| w.alive && w.job.is_none())
            .map(|(id, _)| *id)
    }

    fn knows(&self, id: &str) -> bool {
        self.running.contains_key(id)
            || self.backoff.contains_key(id)
            || self.queue.iter().any(|r| r.spec.id == id)
    }

    /// Mirrors the counters into the handle's shared stats.
    fn publish(&self) {
        let s = &self.args.shared;
        s.queued.store(self.waiting(), Ordering::Relaxed);
        s.running.store(self.running.len(), Ordering::Relaxed);
        let workers = self.workers.values().filter(|w| w.alive).count();
        s.workers.store(workers, Ordering::Relaxed);
    }

    async fn put(&self, record: &JobRecord) -> Result<(), crate::store::StoreError> {
        let result = self.args.store.put_job(record).await;
        if let Err(e) = &result {
            tracing::error!(state = ?record.state, %e, "storing the job failed");
        }
        result
    }

    async fn submit(
        &mut self,
        myself: &ActorRef<PoolMsg>,
        spec: JobSpec,
    ) -> Result<JobRecord, SubmitError> {
        if self.knows(&spec.id) {
            return Err(SubmitError::Duplicate);
        }
        let waiting = self.waiting();
        if waiting >= self.args.config.queue_capacity && self.idle_worker().is_none() {
            let workers = self.workers.len();
            let retry_after_secs = retry_after(&self.recent, waiting, workers);
            tracing::info!(waiting, retry_after_secs, "queue full; job refused");
            return Err(SubmitError::Busy { retry_after_secs });
        }
        if self.args.store.job(&spec.id).await?.is_some() {
            return Err(SubmitError::Duplicate);
        }
        // In a cluster: the lease before the record, so that no scan
        // elsewhere takes a job that is just being stored.
        if let Some(c) = self.args.claims.clone()
            && !c.take(&spec.id, myself).await?
        {
            return Err(SubmitError::Duplicate);
        }
        let record = JobRecord {
            spec,
            state: JobState::Queued,
            attempts: 0,
            updated_ms: now_ms(),
        };
        self.put(&record).await?;
        self.queue.push_back(record.clone());
        let position = self.queue.len();
        tracing::info!(position, "job queued");
        self.args
            .notify
            .event(&record.spec, JobEvent::Queued { position });
        Ok(record)
    }

    async fn cancel(&mut self, id: String, reply: RpcReplyPort<Result<bool, PoolError>>) {
        if let Some(run) = self.running.get_mut(&id) {
            run.cancels.push(reply);
            if let Some(w) = self.workers.get(&run.worker) {
                let _ = w.actor.cast(EncoderMsg::Cancel(id));
            }
            return; // answered when the run has ended
        }
        let record = match self.queue.iter().position(|r| r.spec.id == id) {
            Some(pos) => self.queue.get(pos).cloned(),
            None => self.backoff.get(&id).cloned(),
        };
        let Some(mut record) = record else {
            let _ = reply.send(Ok(false)); // unknown or final already
            return;
        };
        record.state = JobState::Cancelled;
        record.updated_ms = now_ms();
        if let Err(e) = self.put(&record).await {
            let _ = reply.send(Err(PoolError::Store(e)));
            return;
        }
        self.queue.retain(|r| r.spec.id != id);
        self.backoff.remove(&id);
        self.args.shared.cancelled.fetch_add(1, Ordering::Relaxed);
        tracing::info!("queued job cancelled");
        self.args.notify.event(&record.spec, JobEvent::Cancelled);
        let _ = reply.send(Ok(true));
    }

    /// Starts queued jobs on idle workers.
    async fn dispatch(&mut self) {
        while let Some(wid) = self.idle_worker() {
            let Some(mut record) = self.queue.pop_front() else {
                break;
            };
            record.state = JobState::Running;
            record.attempts += 1;
            record.updated_ms = now_ms();
            // A failed write leaves it stored as queued: a restart runs it.
            let _ = self.put(&record).await;
            let (id, attempt) = (record.spec.id.clone(), record.attempts);
            // Before the run starts, so it precedes the run's progress.
            self.args
                .notify
                .event(&record.spec, JobEvent::Started { attempt });
            let Some(worker) = self.workers.get_mut(&wid) else {
                break;
            };
            if worker.actor.cast(EncoderMsg::Run(record.clone())).is_err() {
                worker.alive = false;
                record.state = JobState::Queued;
                record.attempts -= 1;
                self.queue.push_front(record);
                continue;
            }
            worker.job = Some(id.clone());
            tracing::info!(job = %id, attempt, "job started");
            let run = Running {
                record,
                worker: wid,
                cancels: Vec::new(),
            };
            self.running.insert(id, run);
        }
    }
}
