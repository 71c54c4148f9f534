//! The conformance suite every `MediaStore` adapter must pass, written only
//! against the trait. Ids carry a random suffix and `unfinished_jobs` is
//! checked only for the suite's own jobs, so it can run against a shared,
//! non-empty store (a ScyllaDB keyspace). Checks panic on the first
//! mismatch, comparing whole values.

use std::sync::Arc;

use chalktalk_actors::encoder::{JobKind, JobRecord, JobSpec, JobState, MediaStore};
use chalktalk_protocol::{Asset, MediaStage};

use super::store::unique;

/// Runs every check, one after another.
pub async fn run_all(store: Arc<dyn MediaStore>) {
    assets(&*store).await;
    jobs(&*store).await;
    unfinished_order(&*store).await;
    unfinished_follow_state(&*store).await;
}

/// A ready video asset with a rendition. Built from JSON so that it names
/// only the fields every asset has (the others default).
pub fn asset(id: &str) -> Asset {
    let json = serde_json::json!({
        "id": id,
        "kind": "video",
        "owner": "coach",
        "stage": "ready",
        "filename": "squat.mov",
        "size": 48_000_000u64,
        "created_ms": 1_700_000_000_000u64,
        "info": {
            "duration_ms": 12_500u64, "width": 1080, "height": 1920, "fps": 30.0,
            "rotation": 90,
            "renditions": [{
                "name": "720p", "width": 720, "height": 1280, "video_kbps": 2500,
                "mp4": "mp4/720p.mp4", "playlist": "hls/720p/index.m3u8", "copied": false
            }],
            "master": "hls/master.m3u8", "poster": "poster.jpg", "sprite": null,
            "sprite_vtt": null, "proxy": "proxy.mp4", "audio": null, "loudness_lufs": null
        },
        "error": null
    });
    match serde_json::from_value(json) {
        Ok(asset) => asset,
        Err(e) => panic!("test asset: {e}"),
    }
}

/// A job record in `state`, created at `created_ms`.
pub fn job(id: &str, created_ms: u64, state: JobState) -> JobRecord {
    JobRecord {
        spec: JobSpec {
            id: id.to_string(),
            owner: "coach".into(),
            kind: JobKind::VoiceOver {
                room: "r-1".into(),
                at_ms: 1250.5,
            },
            source_key: format!("uploads/{id}"),
            timeout_ms: 120_000,
            max_attempts: 3,
            created_ms,
        },
        state,
        attempts: 0,
        updated_ms: created_ms,
    }
}

/// This suite's unfinished jobs (among `ids`), in the store's order.
async fn unfinished_of(store: &dyn MediaStore, ids: &[&String]) -> Vec<JobRecord> {
    store
        .unfinished_jobs()
        .await
        .expect("unfinished jobs")
        .into_iter()
        .filter(|j| ids.contains(&&j.spec.id))
        .collect()
}

/// Round trip, overwrite, unknown id.
pub async fn assets(store: &dyn MediaStore) {
    let id = unique("asset");
    assert_eq!(store.asset(&id).await.unwrap(), None);
    let mut a = asset(&id);
    a.stage = MediaStage::Transcoding;
    a.info = None;
    store.put_asset(&a).await.unwrap();
    assert_eq!(store.asset(&id).await.unwrap(), Some(a));
    let ready = asset(&id);
    store.put_asset(&ready).await.unwrap();
    assert_eq!(store.asset(&id).await.unwrap(), Some(ready.clone()));
    // Listed by owner, once, among the owner's assets only.
    let owner = unique("owner");
    let mut mine = asset(&format!("{id}-b"));
    mine.owner = owner.clone();
    store.put_asset(&mine).await.unwrap();
    store.put_asset(&mine).await.unwrap();
    assert_eq!(
        store.assets_of(&owner, 10).await.unwrap(),
        vec![mine.clone()]
    );
    assert_eq!(
        store.assets_of(&unique("nobody"), 10).await.unwrap(),
        vec![]
    );
    // Deleted: gone from both reads, idempotent, others untouched.
    for _ in 0..2 {
        store.delete_asset(&mine.id, &owner).await.unwrap();
    }
    assert_eq!(store.asset(&mine.id).await.unwrap(), None);
    assert_eq!(store.assets_of(&owner, 10).await.unwrap(), vec![]);
    assert_eq!(store.asset(&id).await.unwrap(), Some(ready));
}

/// Round trip, overwrite (every state), unknown id.
pub async fn jobs(store: &dyn MediaStore) {
    let id = unique("job");
    assert_eq!(store.job(&id).await.unwrap(), None);
    let failed = JobState::Failed {
        code: "invalid_media".into(),
        reason: "no video stream".into(),
    };
    let states = [
        JobState::Queued,
        JobState::Running,
        JobState::Queued,
        failed,
        JobState::Cancelled,
        JobState::Done,
    ];
    for (n, state) in states.into_iter().enumerate() {
        let mut j = job(&id, 7, state);
        j.attempts = n as u32;
        j.updated_ms = 100 + n as u64;
        store.put_job(&j).await.unwrap();
        assert_eq!(store.job(&id).await.unwrap(), Some(j));
    }
    let mut video = job(&id, 7, JobState::Done);
    video.spec.kind = JobKind::Video;
    store.put_job(&video).await.unwrap();
    assert_eq!(store.job(&id).await.unwrap(), Some(video));
}

/// Unfinished jobs come oldest first (ties by id); final ones are left out.
pub async fn unfinished_order(store: &dyn MediaStore) {
    let ids: Vec<String> = (0..6).map(|_| unique("order")).collect();
    let mut tied = [ids[3].clone(), ids[4].clone()];
    tied.sort();
    let records = [
        job(&ids[0], 300, JobState::Queued),
        job(&ids[1], 100, JobState::Running),
        job(&ids[2], 200, JobState::Queued),
        job(&tied[1], 250, JobState::Queued),
        job(&tied[0], 250, JobState::Queued),
        job(&ids[5], 50, JobState::Done),
    ];
    for r in &records {
        store.put_job(r).await.unwrap();
    }
    let mut finals = Vec::new();
    for state in [
        JobState::Cancelled,
        JobState::Failed {
            code: "io".into(),
            reason: "gave up after 3 attempts: disk".into(),
        },
    ] {
        let id = unique("final");
        store.put_job(&job(&id, 10, state)).await.unwrap();
        finals.push(id);
    }
    let mut all: Vec<&String> = ids.iter().collect();
    all.extend(finals.iter());
    let got = unfinished_of(store, &all).await;
    let expected = vec![
        records[1].clone(),
        records[2].clone(),
        records[4].clone(),
        records[3].clone(),
        records[0].clone(),
    ];
    assert_eq!(got, expected);
}

/// A job enters and leaves the unfinished list as its state changes, and
/// keeps its place (its creation time) meanwhile.
pub async fn unfinished_follow_state(store: &dyn MediaStore) {
    let (a, b) = (unique("follow"), unique("follow"));
    let ids = [&a, &b];
    store.put_job(&job(&a, 10, JobState::Queued)).await.unwrap();
    store.put_job(&job(&b, 20, JobState::Queued)).await.unwrap();

    let mut running = job(&a, 10, JobState::Running);
    running.attempts = 1;
    store.put_job(&running).await.unwrap();
    let got = unfinished_of(store, &ids).await;
    assert_eq!(got, vec![running.clone(), job(&b, 20, JobState::Queued)]);

    let mut done = running.clone();
    done.state = JobState::Done;
    store.put_job(&done).await.unwrap();
    let got = unfinished_of(store, &ids).await;
    assert_eq!(got, vec![job(&b, 20, JobState::Queued)]);

    // Back to unfinished (a retry after a restart): listed again.
    store.put_job(&running).await.unwrap();
    let got = unfinished_of(store, &ids).await;
    assert_eq!(got, vec![running, job(&b, 20, JobState::Queued)]);
    store.put_job(&done).await.unwrap();
    store
        .put_job(&job(&b, 20, JobState::Cancelled))
        .await
        .unwrap();
    assert_eq!(unfinished_of(store, &ids).await, Vec::<JobRecord>::new());
}
