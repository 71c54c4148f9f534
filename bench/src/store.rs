//! A write benchmark for any `Store`: many rooms appending at once, the load
//! a busy server puts on the room event log. Prints nothing; the caller
//! reports the returned [`StoreBench`].

use std::sync::Arc;
use std::time::Instant;

use chalktalk_actors::store::{EncodedEvent, RoomMeta, Store};
use chalktalk_protocol::{Annotation, Effect, Point, RoomEvent, RoomOp, Shape, Style};

use chalktalk_adapters::EmbeddedStore;

/// What one benchmark run measured. Latencies are per `append_room_events`
/// call, from the call to its durable acknowledgement.
#[derive(serde::Serialize, Debug, Clone)]
pub struct StoreBench {
    pub rooms: usize,
    pub events_per_call: usize,
    /// Events appended (successfully or not).
    pub ops: u64,
    /// `append_room_events` calls made.
    pub calls: u64,
    /// Calls that returned an error.
    pub errors: u64,
    pub seconds: f64,
    /// Events per second.
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Write transactions committed during the run (embedded store only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commits: Option<u64>,
    /// Calls per commit (embedded store only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_batch: Option<f64>,
}

/// Runs `rooms` tasks at once on the embedded store, each appending
/// `ops_per_room` events to its own new room, and reports commits and
/// batch size. Appends to one room must be consecutive, so a room cannot
/// have several calls in flight; instead `in_flight_per_room` events travel
/// in each call (1 = one event per call, the common case for live drawing).
pub async fn run_embedded(
    store: Arc<EmbeddedStore>,
    rooms: usize,
    ops_per_room: usize,
    in_flight_per_room: usize,
) -> StoreBench {
    let ids = create_rooms(&*store, rooms).await;
    let before = store.commit_count();
    let mut bench = drive(store.clone(), ids, ops_per_room, in_flight_per_room).await;
    let commits = store.commit_count() - before;
    bench.commits = Some(commits);
    bench.avg_batch = Some(if commits > 0 {
        bench.calls as f64 / commits as f64
    } else {
        0.0
    });
    bench
}

/// The same load on any store (no commit counts).
pub async fn run_any(
    store: Arc<dyn Store>,
    rooms: usize,
    ops_per_room: usize,
    in_flight_per_room: usize,
) -> StoreBench {
    let ids = create_rooms(&*store, rooms).await;
    drive(store, ids, ops_per_room, in_flight_per_room).await
}

/// Creates `rooms` new rooms (untimed) and returns their ids.
async fn create_rooms(store: &dyn Store, rooms: usize) -> Vec<String> {
    let run_id = getrandom::u64().unwrap_or(0);
    let ids: Vec<String> = (0..rooms)
        .map(|i| format!("bench-{run_id:016x}-{i}"))
        .collect();
    for id in &ids {
        let meta = RoomMeta {
            id: id.clone(),
            video_id: "bench-video".into(),
            owner: "bench-coach".into(),
            aspect: 16.0 / 9.0,
            fps: 30.0,
            created_ms: 0,
        };
        let _ = store.create_room(&meta).await;
    }
    ids
}

async fn drive(
    store: Arc<dyn Store>,
    ids: Vec<String>,
    ops_per_room: usize,
    in_flight_per_room: usize,
) -> StoreBench {
    let rooms = ids.len();
    let per_call = in_flight_per_room.max(1);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(rooms);
    for id in ids {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(ops_per_room.div_ceil(per_call));
            let mut errors = 0u64;
            let mut seq = 1u64;
            let mut left = ops_per_room as u64;
            while left > 0 {
                let n = left.min(per_call as u64);
                let events: Vec<EncodedEvent> = (seq..seq + n)
                    .map(|s| EncodedEvent::new(event(s, &id)))
                    .collect();
                let t = Instant::now();
                let result = store.append_room_events(&id, 0, &events).await;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                if result.is_err() {
                    errors += 1;
                }
                seq += n;
                left -= n;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        // A panicked task contributes nothing; its calls are simply missing.
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let ops = (rooms * ops_per_room) as u64;
    StoreBench {
        rooms,
        events_per_call: per_call,
        ops,
        calls: latencies.len() as u64,
        errors,
        seconds,
        ops_per_sec: if seconds > 0.0 {
            ops as f64 / seconds
        } else {
            0.0
        },
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        p999_ms: percentile(&latencies, 0.999),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        commits: None,
        avg_batch: None,
    }
}

/// Nearest-rank percentile of an ascending slice (0 if empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A realistic durable event: a committed 40-point pen stroke.
fn event(seq: u64, room: &str) -> RoomEvent {
    let points = (0..40)
        .map(|i| {
            let t = i as f32 / 40.0;
            Point(0.2 + 0.5 * t, 0.3 + 0.2 * (t * 6.0).sin().abs())
        })
        .collect();
    let ann = Annotation {
        id: format!("s{seq}"),
        author: "bench-coach".into(),
        t_ms: 12_000 + seq * 40,
        dur_ms: Some(3000),
        style: Style::default(),
        shape: Shape::Stroke { points },
    };
    RoomEvent {
        seq,
        by: "bench-coach".into(),
        op_id: format!("{room}-op-{seq}"),
        at_ms: 1_700_000_000_000 + seq,
        op: RoomOp::Add { ann: ann.clone() },
        target: None,
        effects: vec![Effect::Put { ann }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 500.0);
        assert_eq!(percentile(&v, 0.99), 990.0);
        assert_eq!(percentile(&v, 0.999), 999.0);
        assert_eq!(percentile(&v, 1.0), 1000.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_run_writes_everything() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let bench = run_embedded(store, 4, 10, 3).await;
        assert_eq!((bench.ops, bench.calls, bench.errors), (40, 16, 0));
        assert!(bench.commits.unwrap() >= 1 && bench.commits.unwrap() <= 16);
    }

    /// `cargo test --release -p chalktalk -p chalktalk-bench --lib store -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn measure() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let bench = run_embedded(store, 64, 2000, 1).await;
        println!("{}", serde_json::to_string_pretty(&bench).unwrap());
    }
}
