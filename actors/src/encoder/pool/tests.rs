//! EncoderPool tests with a scripted fake transcoder, an in-memory store
//! and a recording listener (the real worker is tested end to end in the
//! application crate).

mod fakes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use self::fakes::{
    FakeTranscoder, MemLeases, MemStore, Step, config, info, rig, rig_claimed, rig_on, spec,
    wait_for,
};
use super::*;
use crate::encoder::{JobError, JobEvent, JobProgress, JobState};

fn retryable(code: &str, message: &str) -> JobError {
    JobError::new(code, message, true)
}

#[tokio::test]
async fn runs_in_fifo_order_with_one_worker() {
    let r = rig(config(1, 16), FakeTranscoder::default()).await;
    for id in ["a", "b", "c"] {
        let record = r.submit(id).await;
        assert_eq!(record.state, JobState::Queued);
    }
    r.wait_final("c").await;
    assert_eq!(r.fake.started_ids(), vec!["a", "b", "c"]);
    for id in ["a", "b", "c"] {
        assert_eq!(r.stored(id).await.state, JobState::Done);
        assert_eq!(r.stored(id).await.attempts, 1);
    }
    assert_eq!(
        r.rec.of("a"),
        vec![
            JobEvent::Queued { position: 1 },
            JobEvent::Started { attempt: 1 },
            JobEvent::Ready(info(1)),
        ]
    );
    let stats = r.pool.stats();
    assert_eq!((stats.done, stats.queued, stats.running), (3, 0, 0));
    assert_eq!(stats.workers, 1);
    r.check();
}

#[tokio::test]
async fn busy_at_once_when_full_then_accepted_when_a_slot_frees() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = FakeTranscoder::default();
    fake.script("a", vec![Step::Gate(gate.clone())]);
    let r = rig(config(1, 2), fake).await;
    r.submit("a").await;
    let f = r.fake.clone();
    wait_for("a started", || f.started_ids() == ["a"]).await;
    r.submit("b").await;
    r.submit("c").await;
    assert_eq!(r.pool.stats().queued, 2);

    let t = Instant::now();
    let refused = r.pool.submit(spec("d", 5)).await;
    assert!(t.elapsed() < Duration::from_secs(1), "refused at once");
    // No run finished yet: the default estimate, 30 s × 2 waiting / 1.
    assert_eq!(
        refused,
        Err(SubmitError::Busy {
            retry_after_secs: 60
        })
    );
    assert!(r.store.job("d").await.unwrap().is_none(), "nothing stored");
    assert_eq!(
        r.pool.submit(spec("a", 6)).await,
        Err(SubmitError::Duplicate)
    );

    gate.add_permits(1);
    wait_for("b started", || f.started_ids().contains(&"b".to_string())).await;
    r.pool.submit(spec("d", 7)).await.expect("accepted again");
    r.wait_final("d").await;
    assert_eq!(r.fake.started_ids(), vec!["a", "b", "c", "d"]);
    // Done jobs stay known: the id is the asset id.
    assert_eq!(
        r.pool.submit(spec("a", 8)).await,
        Err(SubmitError::Duplicate)
    );
    r.check();
}

#[test]
fn retry_after_estimate() {
    let recent: VecDeque<Duration> = [1, 3].map(Duration::from_secs).into();
    assert_eq!(retry_after(&recent, 4, 2), 4);
    let fast: VecDeque<Duration> = [Duration::from_millis(100)].into();
    assert_eq!(retry_after(&fast, 1, 4), 1, "at least 1 s");
    assert_eq!(
        retry_after(&VecDeque::new(), 3, 0),
        90,
        "no workers counts as 1"
    );
}

#[tokio::test]
async fn retries_after_a_crash_then_succeeds() {
    let fake = FakeTranscoder::default();
    fake.script("a", vec![Step::Panic("decoder exploded"), Step::Ok]);
    let r = rig(config(1, 16), fake).await;
    r.submit("a").await;
    r.wait_final("a").await;
    let events = r.rec.of("a");
    assert_eq!(events.len(), 5, "{events:?}");
    let JobEvent::Retrying { attempt: 1, error } = &events[2] else {
        panic!("expected Retrying, got {events:?}");
    };
    assert_eq!(error.code, "worker_crashed");
    assert!(error.retryable);
    assert!(error.message.contains("decoder exploded"), "{error:?}");
    assert_eq!(events[3], JobEvent::Started { attempt: 2 });
    assert_eq!(events[4], JobEvent::Ready(info(2)));
    let stored = r.stored("a").await;
    assert_eq!((stored.state, stored.attempts), (JobState::Done, 2));
    let stats = r.pool.stats();
    assert_eq!((stats.retried, stats.done, stats.failed), (1, 1, 0));
    r.check();
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_the_reason() {
    let fake = FakeTranscoder::default();
    let io = || Step::Fail(retryable("io", "disk hiccup"));
    fake.script("a", vec![io(), io(), io(), Step::Ok]);
    let r = rig(config(1, 16), fake).await;
    r.submit("a").await;
    r.wait_final("a").await;
    assert_eq!(r.fake.starts().len(), 3);
    let reason = "gave up after 3 attempts: disk hiccup".to_string();
    let stored = r.stored("a").await;
    assert_eq!(
        stored.state,
        JobState::Failed {
            code: "io".into(),
            reason: reason.clone()
        }
    );
    assert_eq!(stored.attempts, 3);
    let events = r.rec.of("a");
    let kinds: Vec<&str> = events.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "queued", "started", "retrying", "started", "retrying", "started", "failed"
        ]
    );
    assert_eq!(
        events.last(),
        Some(&JobEvent::Failed(JobError::new("io", reason, false)))
    );
    let stats = r.pool.stats();
    assert_eq!((stats.retried, stats.failed), (2, 1));
    r.check();
}

fn kind(e: &JobEvent) -> &'static str {
    match e {
        JobEvent::Queued { .. } => "queued",
        JobEvent::Started { .. } => "started",
        JobEvent::Progress(_) => "progress",
        JobEvent::Retrying { .. } => "retrying",
        JobEvent::Ready(_) => "ready",
        JobEvent::Failed(_) => "failed",
        JobEvent::Cancelled => "cancelled",
    }
}

#[tokio::test]
async fn timeout_drops_the_run_and_retries() {
    let fake = FakeTranscoder::default();
    fake.script("a", vec![Step::Hang, Step::Ok]);
    let r = rig(config(1, 16), fake).await;
    let mut s = spec("a", 1);
    s.timeout_ms = 50;
    r.pool.submit(s).await.expect("accepted");
    r.wait_final("a").await;
    let starts = r.fake.starts();
    assert_eq!(starts.len(), 2);
    assert_eq!(
        starts[1].drops_before, 1,
        "hung run dropped before the retry"
    );
    let events = r.rec.of("a");
    let JobEvent::Retrying { attempt: 1, error } = &events[2] else {
        panic!("expected Retrying, got {events:?}");
    };
    assert_eq!(error.code, "worker_timeout");
    assert_eq!(events.last(), Some(&JobEvent::Ready(info(2))));
    r.check();
}

#[tokio::test]
async fn non_retryable_error_fails_once() {
    let fake = FakeTranscoder::default();
    let bad = JobError::new("invalid_media", "no video stream", false);
    fake.script("a", vec![Step::Fail(bad.clone()), Step::Ok]);
    let r = rig(config(1, 16), fake).await;
    r.submit("a").await;
    r.wait_final("a").await;
    assert_eq!(r.fake.starts().len(), 1);
    assert_eq!(r.rec.of("a").last(), Some(&JobEvent::Failed(bad)));
    assert_eq!(
        r.stored("a").await.state,
        JobState::Failed {
            code: "invalid_media".into(),
            reason: "no video stream".into()
        }
    );
    assert_eq!((r.pool.stats().failed, r.pool.stats().retried), (1, 0));
    r.check();
}

#[tokio::test]
async fn cancel_a_queued_job() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = FakeTranscoder::default();
    fake.script("a", vec![Step::Gate(gate.clone())]);
    let r = rig(config(1, 16), fake).await;
    r.submit("a").await;
    r.submit("b").await;
    assert_eq!(r.pool.cancel("b").await, Ok(true));
    assert_eq!(r.stored("b").await.state, JobState::Cancelled);
    assert_eq!(
        r.rec.of("b"),
        vec![JobEvent::Queued { position: 1 }, JobEvent::Cancelled]
    );
    assert_eq!(r.pool.cancel("b").await, Ok(false), "final already");
    assert_eq!(r.pool.cancel("nope").await, Ok(false));
    gate.add_permits(1);
    r.wait_final("a").await;
    assert_eq!(r.fake.started_ids(), vec!["a"]);
    assert_eq!(r.pool.stats().cancelled, 1);
    r.check();
}

#[tokio::test]
async fn cancel_a_running_job_drops_its_run() {
    let fake = FakeTranscoder::default();
    fake.script("a", vec![Step::Hang]);
    let r = rig(config(1, 16), fake).await;
    r.submit("a").await;
    let f = r.fake.clone();
    wait_for("a started", || f.starts().len() == 1).await;
    assert_eq!(r.fake.drops(), 0);
    assert_eq!(r.pool.cancel("a").await, Ok(true));
    assert_eq!(r.fake.drops(), 1, "the run future was dropped");
    assert_eq!(r.stored("a").await.state, JobState::Cancelled);
    r.wait_final("a").await;
    assert_eq!(r.rec.of("a").last(), Some(&JobEvent::Cancelled));
    let stats = r.pool.stats();
    assert_eq!((stats.cancelled, stats.running), (1, 0));
    // The worker is free again.
    r.submit("b").await;
    r.wait_final("b").await;
    r.check();
}

#[tokio::test]
async fn restart_requeues_unfinished_jobs() {
    let store = Arc::new(MemStore::default());
    let fake = Arc::new(FakeTranscoder::default());
    fake.script("a", vec![Step::Hang]);
    let first = rig_on(config(1, 16), fake.clone(), store.clone()).await;
    first.pool.submit(spec("a", 1)).await.expect("a");
    first.pool.submit(spec("b", 2)).await.expect("b");
    wait_for("a started", || fake.starts().len() == 1).await;
    first.pool.stop_and_wait().await;
    wait_for("a's run dropped", || fake.drops() == 1).await;
    let a = store.job("a").await.unwrap().expect("a stored");
    assert_eq!((a.state, a.attempts), (JobState::Running, 1));
    // A finished job is not run again.
    let done = JobRecord {
        spec: spec("z", 0),
        state: JobState::Done,
        attempts: 1,
        updated_ms: 0,
    };
    store.put_job(&done).await.unwrap();
    assert_eq!(
        first.pool.submit(spec("c", 3)).await,
        Err(SubmitError::Stopped)
    );

    // Capacity 1: both are re-queued anyway (they were accepted).
    let second = rig_on(config(1, 1), Arc::new(FakeTranscoder::default()), store).await;
    second.wait_final("b").await;
    second.wait_final("a").await;
    assert_eq!(second.fake.started_ids(), vec!["a", "b"]);
    let a = second.stored("a").await;
    assert_eq!((a.state, a.attempts), (JobState::Done, 2));
    assert_eq!(
        second.rec.of("a"),
        vec![
            JobEvent::Queued { position: 1 },
            JobEvent::Started { attempt: 2 },
            JobEvent::Ready(info(2)),
        ]
    );
    assert_eq!(second.rec.of("b")[0], JobEvent::Queued { position: 2 });
    assert_eq!(second.stored("z").await, done);
    second.check();
}

#[tokio::test]
async fn progress_reaches_the_listener_in_order() {
    let fake = FakeTranscoder::default();
    fake.script("a", vec![Step::Progress(vec![10.0, 50.0, 100.0])]);
    let r = rig(config(1, 16), fake).await;
    r.submit("a").await;
    r.wait_final("a").await;
    let progress = |percent| {
        JobEvent::Progress(JobProgress {
            stage: "transcoding".into(),
            percent,
            playable: None,
        })
    };
    assert_eq!(
        r.rec.of("a"),
        vec![
            JobEvent::Queued { position: 1 },
            JobEvent::Started { attempt: 1 },
            progress(10.0),
            progress(50.0),
            progress(100.0),
            JobEvent::Ready(info(1)),
        ]
    );
    r.check();
}

#[tokio::test]
async fn two_workers_run_two_jobs_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = FakeTranscoder::default();
    fake.script("a", vec![Step::Gate(gate.clone())]);
    fake.script("b", vec![Step::Gate(gate.clone())]);
    let r = rig(config(2, 16), fake).await;
    r.submit("a").await;
    r.submit("b").await;
    let f = r.fake.clone();
    // Neither can finish before the gate opens: both run concurrently.
    wait_for("both started", || f.starts().len() == 2).await;
    assert_eq!(r.pool.stats().running, 2);
    gate.add_permits(2);
    r.wait_final("a").await;
    r.wait_final("b").await;
    assert_eq!(r.pool.stats().done, 2);
    r.check();
}

#[tokio::test]
async fn a_dead_encoder_is_replaced_and_its_job_retried() {
    let fake = FakeTranscoder::default();
    fake.script("a", vec![Step::Hang, Step::Ok]);
    let r = rig(config(1, 16), fake).await;
    r.submit("a").await;
    let f = r.fake.clone();
    wait_for("a started", || f.starts().len() == 1).await;
    let children = r.pool.actor.get_children();
    assert_eq!(children.len(), 1);
    children[0].kill();
    r.wait_final("a").await;
    assert_eq!(r.rec.of("a").last(), Some(&JobEvent::Ready(info(2))));
    assert_eq!(r.fake.drops(), 1, "the dead encoder's run was dropped");
    let stats = r.pool.stats();
    assert_eq!((stats.workers, stats.retried, stats.done), (1, 1, 1));
    r.check();
}

/// Two nodes' pools on one store: a job runs only on the node holding its
/// lease (the other's scans leave it alone); when that node dies its job
/// is taken over by the other, once, with its attempts kept.
#[tokio::test]
async fn in_a_cluster_a_job_runs_on_one_node_and_a_dead_nodes_jobs_are_taken_over() {
    use crate::lease::{Leases, Placement};
    let store = Arc::new(MemStore::default());
    let leases = Arc::new(MemLeases::default());
    let ttl = Duration::from_millis(300);
    let claims = |node: &str| {
        Some(Claims::new(Arc::new(Placement::new(
            node.into(),
            leases.clone(),
            ttl,
        ))))
    };
    let fa = Arc::new(FakeTranscoder::default());
    fa.script("a", vec![Step::Hang]);
    let a = rig_claimed(config(1, 16), fa.clone(), store.clone(), claims("a")).await;
    let fb = Arc::new(FakeTranscoder::default());
    let b = rig_claimed(config(1, 16), fb.clone(), store.clone(), claims("b")).await;
    a.pool.submit(spec("a", 1)).await.expect("a on node a");
    b.pool.submit(spec("b", 2)).await.expect("b on node b");
    wait_for("a running on node a", || fa.starts().len() == 1).await;
    b.wait_final("b").await;
    // Several scans of node b later, a is still node a's alone.
    tokio::time::sleep(ttl * 4).await;
    assert_eq!(fb.started_ids(), vec!["b"], "node b ran a job node a holds");
    assert_eq!(fa.started_ids(), vec!["a"]);
    assert_eq!(
        b.pool.submit(spec("a", 1)).await.map(|_| ()),
        Err(SubmitError::Duplicate),
        "a job id another node holds"
    );

    // Node a dies (its pool stops without a word: its lease expires).
    a.pool.stop_and_wait().await;
    drop(a);
    b.wait_final("a").await;
    assert_eq!(fb.started_ids(), vec!["b", "a"], "taken over once");
    let stored = b.stored("a").await;
    assert_eq!((stored.state, stored.attempts), (JobState::Done, 2));
    let holder = leases
        .holder(crate::lease::LeaseKind::Job, "a")
        .await
        .unwrap()
        .expect("a lease");
    assert_eq!(holder.owner, "b");
    b.check();
}
