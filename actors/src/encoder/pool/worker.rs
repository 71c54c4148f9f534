//! The Encoder actor (one per pool worker, one job at a time) and the
//! listener forwarder. An Encoder runs `Transcoder::run` in a spawned task
//! watched by a second task that enforces the dead-man timer: a panic in the
//! transcoder becomes `worker_crashed`, a run longer than `timeout_ms`
//! becomes `worker_timeout`. Both are retryable. A cancelled or timed-out run
//! is aborted, and the watcher waits until its future is dropped (which kills
//! the worker process in the real transcoder) before it reports. If the
//! Encoder itself dies, its state drops and aborts the run.
//!
//! Listener events go through one unbounded channel to one task that awaits
//! the listener, so a slow listener never blocks the pool or the transcoder
//! and events keep their order. Progress events are dropped while more than
//! [`MAX_PENDING_PROGRESS`] of them wait; state events are never dropped.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chalktalk_protocol::MediaInfo;
use futures_util::FutureExt;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinError};
use tracing::Instrument;

use super::actor::PoolMsg;
use crate::encoder::{
    JobError, JobEvent, JobListener, JobProgress, JobRecord, JobSpec, ProgressFn, Transcoder,
};
use crate::lock;

/// Progress events allowed to wait for the listener before more are dropped.
pub(super) const MAX_PENDING_PROGRESS: usize = 1024;

/// Sends job events to the listener task, in order.
#[derive(Clone)]
pub(super) struct Notify {
    tx: mpsc::UnboundedSender<(Arc<JobSpec>, JobEvent)>,
    pending_progress: Arc<AtomicUsize>,
}

impl Notify {
    /// Starts the task that hands events to `listener` one at a time. It
    /// ends when every `Notify` clone is gone.
    pub(super) fn spawn(listener: Arc<dyn JobListener>) -> Notify {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Arc<JobSpec>, JobEvent)>();
        let pending_progress = Arc::new(AtomicUsize::new(0));
        let pending = pending_progress.clone();
        tokio::spawn(async move {
            while let Some((spec, event)) = rx.recv().await {
                let progress = matches!(event, JobEvent::Progress(_));
                let call = AssertUnwindSafe(listener.on_event(&spec, event)).catch_unwind();
                if call.await.is_err() {
                    tracing::error!(job = %spec.id, "job listener panicked; event lost");
                }
                if progress {
                    pending.fetch_sub(1, Ordering::Relaxed);
                }
            }
        });
        Notify {
            tx,
            pending_progress,
        }
    }

    pub(super) fn event(&self, spec: &JobSpec, event: JobEvent) {
        let _ = self.tx.send((Arc::new(spec.clone()), event));
    }

    fn progress(&self, spec: &Arc<JobSpec>, progress: JobProgress) {
        if self.pending_progress.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_PROGRESS {
            self.pending_progress.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if self
            .tx
            .send((spec.clone(), JobEvent::Progress(progress)))
            .is_err()
        {
            self.pending_progress.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub(super) enum Outcome {
    Ready(MediaInfo),
    Error(JobError),
    /// The run was aborted (cancel) before it finished.
    Aborted,
}

/// A run's end, as the Encoder reports it to the pool.
#[derive(Debug)]
pub(super) struct Finished {
    pub worker: ActorId,
    pub id: String,
    pub attempt: u32,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

#[derive(RactorMessage)]
pub(super) enum EncoderMsg {
    /// Run this job (its `attempts` already counts this run).
    Run(JobRecord),
    /// Abort the running job with this id, if it is the current one.
    Cancel(String),
    /// Internal: the watcher saw the run end.
    Ended {
        id: String,
        attempt: u32,
        outcome: Outcome,
        elapsed: Duration,
    },
}

pub(super) struct EncoderArgs {
    pub transcoder: Arc<dyn Transcoder>,
    pub notify: Notify,
    pub pool: ActorRef<PoolMsg>,
}

/// The run in progress. Dropping it (the actor stopped or died) aborts it.
struct Current {
    id: String,
    attempt: u32,
    abort: AbortHandle,
}

impl Drop for Current {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

pub(super) struct EncoderState {
    args: EncoderArgs,
    current: Option<Current>,
}

/// One pool worker.
pub(super) struct Encoder;

impl Actor for Encoder {
    type Msg = EncoderMsg;
    type State = EncoderState;
    type Arguments = EncoderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<EncoderMsg>,
        args: EncoderArgs,
    ) -> Result<EncoderState, ActorProcessingErr> {
        Ok(EncoderState {
            args,
            current: None,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<EncoderMsg>,
        state: &mut EncoderState,
    ) -> Result<(), ActorProcessingErr> {
        state.current = None;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<EncoderMsg>,
        msg: EncoderMsg,
        state: &mut EncoderState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EncoderMsg::Run(record) => {
                // The pool sends one job at a time; a stale run is stopped.
                state.current = None;
                let (id, attempt) = (record.spec.id.clone(), record.attempts);
                let abort = start_run(&myself, &state.args, record);
                state.current = Some(Current { id, attempt, abort });
            }
            EncoderMsg::Cancel(id) => {
                if let Some(cur) = &state.current
                    && cur.id == id
                {
                    cur.abort.abort();
                }
            }
            EncoderMsg::Ended {
                id,
                attempt,
                outcome,
                elapsed,
            } => {
                if state
                    .current
                    .as_ref()
                    .is_some_and(|c| c.id == id && c.attempt == attempt)
                {
                    state.current = None;
                    let _ = state.args.pool.cast(PoolMsg::Finished(Finished {
                        worker: myself.get_id(),
                        id,
                        attempt,
                        outcome,
                        elapsed,
                    }));
                }
            }
        }
        Ok(())
    }
}

/// Spawns the run and its watcher; returns the handle that aborts the run.
fn start_run(myself: &ActorRef<EncoderMsg>, args: &EncoderArgs, record: JobRecord) -> AbortHandle {
    let spec = Arc::new(record.spec);
    let attempt = record.attempts;
    let span = tracing::info_span!("encode", job = %spec.id, attempt);
    // Cleared (under the lock) before the run is reported, so no progress
    // can reach the listener after the job's final event.
    let live = Arc::new(Mutex::new(true));
    let progress: ProgressFn = {
        let (notify, spec, live) = (args.notify.clone(), spec.clone(), live.clone());
        Arc::new(move |p: JobProgress| {
            let live = lock(&live);
            if *live {
                notify.progress(&spec, p);
            }
        })
    };
    let mut run = {
        let (transcoder, spec) = (args.transcoder.clone(), spec.clone());
        tokio::spawn(
            async move { transcoder.run(&spec, attempt, progress).await }.instrument(span.clone()),
        )
    };
    let abort = run.abort_handle();
    let me = myself.clone();
    let timeout = Duration::from_millis(spec.timeout_ms);
    let watcher = async move {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(timeout, &mut run).await {
            Ok(Ok(Ok(info))) => Outcome::Ready(info),
            Ok(Ok(Err(e))) => Outcome::Error(e),
            Ok(Err(e)) => joined(e),
            Err(_) => {
                run.abort();
                // Resolves once the run's future has been dropped.
                let _ = run.await;
                tracing::warn!(timeout_ms = spec.timeout_ms, "run timed out; killed");
                Outcome::Error(JobError::new(
                    "worker_timeout",
                    format!("no result within {} ms", spec.timeout_ms),
                    true,
                ))
            }
        };
        *lock(&live) = false;
        crate::metrics::metrics()
            .job_seconds
            .observe(started.elapsed().as_secs_f64());
        let _ = me.cast(EncoderMsg::Ended {
            id: spec.id.clone(),
            attempt,
            outcome,
            elapsed: started.elapsed(),
        });
    };
    tokio::spawn(watcher.instrument(span));
    abort
}

/// A run task that did not return: it panicked or was aborted.
fn joined(e: JoinError) -> Outcome {
    if !e.is_panic() {
        return Outcome::Aborted;
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".to_string());
    tracing::warn!(%message, "run crashed");
    Outcome::Error(JobError::new(
        "worker_crashed",
        format!("worker crashed: {message}"),
        true,
    ))
}
