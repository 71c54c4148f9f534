//! Fakes for the pool tests: a scripted transcoder (per job, one step per
//! attempt), an in-memory MediaStore, an in-memory lease store (the real
//! ones are checked by the adapters' conformance suite) and a listener
//! that records events and checks that a final state was stored before it
//! was announced.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chalktalk_protocol::{Asset, MediaInfo};
use tokio::sync::Semaphore;

use crate::encoder::pool::{EncoderPool, PoolConfig, PoolHandle};
use crate::encoder::{
    JobError, JobEvent, JobKind, JobListener, JobProgress, JobRecord, JobSpec, MediaStore,
    ProgressFn, Transcoder,
};
use crate::lease::{Acquired, Lease, LeaseKind, Leases};
use crate::lock;
use crate::store::StoreError;

/// What one run of a job does.
pub enum Step {
    Ok,
    Fail(JobError),
    Panic(&'static str),
    /// Never finishes; its drop is counted.
    Hang,
    /// Waits for a permit of the gate, then succeeds; a drop while waiting
    /// is counted.
    Gate(Arc<Semaphore>),
    /// Reports these percentages, then succeeds.
    Progress(Vec<f32>),
}

/// What the fake returns for a successful run.
pub fn info(attempt: u32) -> MediaInfo {
    MediaInfo {
        duration_ms: u64::from(attempt) * 1000,
        ..MediaInfo::default()
    }
}

/// A run started: job id, attempt, and how many run futures had been
/// dropped unfinished by then.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub id: String,
    pub attempt: u32,
    pub drops_before: usize,
}

#[derive(Default)]
pub struct FakeTranscoder {
    scripts: Mutex<HashMap<String, VecDeque<Step>>>,
    starts: Mutex<Vec<Start>>,
    drops: Arc<AtomicUsize>,
}

impl FakeTranscoder {
    pub fn script(&self, id: &str, steps: Vec<Step>) {
        lock(&self.scripts).insert(id.to_string(), steps.into());
    }

    pub fn starts(&self) -> Vec<Start> {
        lock(&self.starts).clone()
    }

    pub fn started_ids(&self) -> Vec<String> {
        self.starts().into_iter().map(|s| s.id).collect()
    }

    /// Run futures dropped before they finished.
    pub fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }
}

/// Counts a drop of the run future unless disarmed.
struct DropGuard {
    drops: Arc<AtomicUsize>,
    armed: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if self.armed {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl Transcoder for FakeTranscoder {
    async fn run(
        &self,
        job: &JobSpec,
        attempt: u32,
        progress: ProgressFn,
    ) -> Result<MediaInfo, JobError> {
        let step = lock(&self.scripts)
            .get_mut(&job.id)
            .and_then(|s| s.pop_front())
            .unwrap_or(Step::Ok);
        lock(&self.starts).push(Start {
            id: job.id.clone(),
            attempt,
            drops_before: self.drops(),
        });
        let mut guard = DropGuard {
            drops: self.drops.clone(),
            armed: true,
        };
        let result = match step {
            Step::Ok => Ok(info(attempt)),
            Step::Fail(e) => Err(e),
            Step::Panic(why) => panic!("{why}"),
            Step::Hang => std::future::pending().await,
            Step::Gate(gate) => {
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
                Ok(info(attempt))
            }
            Step::Progress(steps) => {
                for percent in steps {
                    progress(JobProgress {
                        stage: "transcoding".into(),
                        percent,
                        playable: None,
                    });
                    tokio::task::yield_now().await;
                }
                Ok(info(attempt))
            }
        };
        guard.armed = false;
        result
    }
}

#[derive(Default)]
pub struct MemStore {
    jobs: Mutex<HashMap<String, JobRecord>>,
    assets: Mutex<HashMap<String, Asset>>,
}

#[async_trait]
impl MediaStore for MemStore {
    async fn put_asset(&self, asset: &Asset) -> Result<(), StoreError> {
        lock(&self.assets).insert(asset.id.clone(), asset.clone());
        Ok(())
    }

    async fn asset(&self, id: &str) -> Result<Option<Asset>, StoreError> {
        Ok(lock(&self.assets).get(id).cloned())
    }

    async fn assets_of(&self, owner: &str, limit: usize) -> Result<Vec<Asset>, StoreError> {
        let mut v: Vec<Asset> = lock(&self.assets)
            .values()
            .filter(|a| a.owner == owner)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.truncate(limit);
        Ok(v)
    }

    async fn delete_asset(&self, id: &str, _owner: &str) -> Result<(), StoreError> {
        lock(&self.assets).remove(id);
        Ok(())
    }

    async fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        lock(&self.jobs).insert(job.spec.id.clone(), job.clone());
        Ok(())
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(lock(&self.jobs).get(id).cloned())
    }

    async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut out: Vec<JobRecord> = lock(&self.jobs)
            .values()
            .filter(|j| !j.state.is_final())
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.spec.created_ms, &a.spec.id).cmp(&(b.spec.created_ms, &b.spec.id)));
        Ok(out)
    }
}

/// Records every event; checks final events against the store.
pub struct Recorder {
    store: Arc<MemStore>,
    events: Mutex<Vec<(String, JobEvent)>>,
    violations: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn new(store: Arc<MemStore>) -> Arc<Recorder> {
        Arc::new(Recorder {
            store,
            events: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        })
    }

    pub fn of(&self, id: &str) -> Vec<JobEvent> {
        lock(&self.events)
            .iter()
            .filter(|(j, _)| j == id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn is_final(&self, id: &str) -> bool {
        self.of(id).last().is_some_and(|e| {
            matches!(
                e,
                JobEvent::Ready(_) | JobEvent::Failed(_) | JobEvent::Cancelled
            )
        })
    }

    pub fn violations(&self) -> Vec<String> {
        lock(&self.violations).clone()
    }
}

#[async_trait]
impl JobListener for Recorder {
    async fn on_event(&self, job: &JobSpec, event: JobEvent) {
        let final_event = matches!(
            event,
            JobEvent::Ready(_) | JobEvent::Failed(_) | JobEvent::Cancelled
        );
        if final_event {
            let stored = lock(&self.store.jobs).get(&job.id).map(|r| r.state.clone());
            if !stored.as_ref().is_some_and(|s| s.is_final()) {
                lock(&self.violations).push(format!(
                    "{}: {event:?} announced while stored {stored:?}",
                    job.id
                ));
            }
        }
        lock(&self.events).push((job.id.clone(), event));
    }
}

/// A pool over fakes.
pub struct Rig {
    pub pool: PoolHandle,
    pub fake: Arc<FakeTranscoder>,
    pub store: Arc<MemStore>,
    pub rec: Arc<Recorder>,
}

pub fn config(workers: usize, queue_capacity: usize) -> PoolConfig {
    PoolConfig {
        workers,
        queue_capacity,
        retry_backoff: Duration::from_millis(10),
    }
}

pub fn spec(id: &str, created_ms: u64) -> JobSpec {
    JobSpec {
        id: id.into(),
        owner: "coach".into(),
        kind: JobKind::Video,
        source_key: format!("uploads/{id}"),
        timeout_ms: 5_000,
        max_attempts: 3,
        created_ms,
    }
}

pub async fn rig_on(config: PoolConfig, fake: Arc<FakeTranscoder>, store: Arc<MemStore>) -> Rig {
    rig_claimed(config, fake, store, None).await
}

/// A pool of a cluster node (with `claims`).
pub async fn rig_claimed(
    config: PoolConfig,
    fake: Arc<FakeTranscoder>,
    store: Arc<MemStore>,
    claims: Option<Arc<crate::encoder::pool::Claims>>,
) -> Rig {
    let rec = Recorder::new(store.clone());
    let pool = EncoderPool::start_claimed(config, fake.clone(), store.clone(), rec.clone(), claims)
        .await
        .expect("start pool");
    Rig {
        pool,
        fake,
        store,
        rec,
    }
}

pub async fn rig(config: PoolConfig, fake: FakeTranscoder) -> Rig {
    rig_on(config, Arc::new(fake), Arc::default()).await
}

impl Rig {
    pub async fn submit(&self, id: &str) -> JobRecord {
        let created = crate::now_ms();
        self.pool.submit(spec(id, created)).await.expect("accepted")
    }

    pub async fn wait_final(&self, id: &str) {
        let rec = self.rec.clone();
        wait_for(&format!("{id} final"), || rec.is_final(id)).await;
    }

    pub async fn stored(&self, id: &str) -> JobRecord {
        self.store.job(id).await.unwrap().expect("stored job")
    }

    pub fn check(&self) {
        assert_eq!(self.rec.violations(), Vec::<String>::new());
    }
}

/// Polls `cond` every 5 ms for up to 5 s.
pub async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Leases in memory, with the port's semantics (epochs grow on every
/// change of hands; a released or expired lease is free).
#[derive(Default)]
pub struct MemLeases {
    leases: Mutex<HashMap<(LeaseKind, String), Lease>>,
}

#[async_trait]
impl Leases for MemLeases {
    async fn acquire(
        &self,
        kind: LeaseKind,
        id: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<Acquired, StoreError> {
        let now = crate::now_ms();
        let mut all = lock(&self.leases);
        let key = (kind, id.to_string());
        let next = match all.get(&key) {
            Some(l) if l.owner == owner && l.expires_ms > now => l.epoch,
            Some(l) if l.expires_ms > now => return Ok(Acquired::Busy(l.clone())),
            Some(l) => l.epoch + 1,
            None => 1,
        };
        let l = Lease {
            kind,
            id: id.to_string(),
            owner: owner.to_string(),
            epoch: next,
            expires_ms: now + ttl_ms,
        };
        all.insert(key, l.clone());
        Ok(Acquired::Held(l))
    }

    async fn renew(&self, lease: &Lease, ttl_ms: u64) -> Result<Option<Lease>, StoreError> {
        let now = crate::now_ms();
        let mut all = lock(&self.leases);
        match all.get_mut(&(lease.kind, lease.id.clone())) {
            Some(l) if l.epoch == lease.epoch && l.owner == lease.owner && l.expires_ms > now => {
                l.expires_ms = now + ttl_ms;
                Ok(Some(l.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut all = lock(&self.leases);
        if let Some(l) = all.get_mut(&(lease.kind, lease.id.clone()))
            && l.epoch == lease.epoch
        {
            l.expires_ms = 0;
        }
        Ok(())
    }

    async fn holder(&self, kind: LeaseKind, id: &str) -> Result<Option<Lease>, StoreError> {
        Ok(lock(&self.leases).get(&(kind, id.to_string())).cloned())
    }
}
