//! How a run's end changes its job: done, cancelled, retried (back to the
//! front of the queue after the backoff) or failed, each stored before the
//! listener hears of it.

use std::sync::atomic::Ordering;

use ractor::ActorRef;

use super::{PoolMsg, PoolState, Running};
use crate::encoder::pool::PoolError;
use crate::encoder::pool::worker::Outcome;
use crate::encoder::{JobError, JobEvent, JobRecord, JobState};
use crate::now_ms;

impl PoolState {
    /// A run of `id` ended (or its encoder died): done, cancelled, retried
    /// or failed; stored before the listener hears of it.
    pub(super) async fn finish(&mut self, myself: &ActorRef<PoolMsg>, id: &str, outcome: Outcome) {
        let Some(run) = self.running.remove(id) else {
            return;
        };
        let Running {
            mut record,
            cancels,
            ..
        } = run;
        record.updated_ms = now_ms();
        let shared = self.args.shared.clone();
        match outcome {
            Outcome::Ready(info) => {
                record.state = JobState::Done;
                let _ = self.put(&record).await;
                shared.done.fetch_add(1, Ordering::Relaxed);
                tracing::info!(attempt = record.attempts, "job done");
                self.args.notify.event(&record.spec, JobEvent::Ready(info));
                for reply in cancels {
                    let _ = reply.send(Ok(false));
                }
            }
            _ if !cancels.is_empty() => {
                record.state = JobState::Cancelled;
                let stored = self.put(&record).await;
                shared.cancelled.fetch_add(1, Ordering::Relaxed);
                tracing::info!("running job cancelled");
                self.args.notify.event(&record.spec, JobEvent::Cancelled);
                for reply in cancels {
                    let _ = reply.send(stored.clone().map(|_| true).map_err(PoolError::Store));
                }
            }
            Outcome::Aborted => {
                let e = JobError::new("worker_crashed", "run aborted", true);
                self.fail_or_retry(myself, record, e).await;
            }
            Outcome::Error(e) => self.fail_or_retry(myself, record, e).await,
        }
    }

    async fn fail_or_retry(
        &mut self,
        myself: &ActorRef<PoolMsg>,
        mut record: JobRecord,
        error: JobError,
    ) {
        let shared = self.args.shared.clone();
        let max = record.spec.max_attempts.max(1);
        if error.retryable && record.attempts < max {
            record.state = JobState::Queued;
            let _ = self.put(&record).await;
            shared.retried.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(attempt = record.attempts, %error, "run failed; retrying");
            let attempt = record.attempts;
            self.args
                .notify
                .event(&record.spec, JobEvent::Retrying { attempt, error });
            let backoff = self.args.config.retry_backoff;
            if backoff.is_zero() {
                self.queue.push_front(record);
            } else {
                let id = record.spec.id.clone();
                self.backoff.insert(id.clone(), record);
                myself.send_after(backoff, move || PoolMsg::RetryDue(id));
            }
            return;
        }
        let reason = if error.retryable {
            format!(
                "gave up after {} attempts: {}",
                record.attempts, error.message
            )
        } else {
            error.message
        };
        record.state = JobState::Failed {
            code: error.code.clone(),
            reason: reason.clone(),
        };
        let _ = self.put(&record).await;
        shared.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(code = %error.code, %reason, "job failed");
        let failure = JobError::new(&error.code, reason, false);
        self.args
            .notify
            .event(&record.spec, JobEvent::Failed(failure));
    }
}
