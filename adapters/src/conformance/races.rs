//! Races between two handles on one store: for a shared store (PostgreSQL)
//! these are two writers as two nodes would be; for the embedded store both
//! handles are the same. Written only against the ports; ids are random.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chalktalk_actors::store::{Store, StoreError};
use chalktalk_protocol::Cursor;

use super::store::{enc, room_event, unique};
use crate::kv::{Kv, KvBatch};

/// Runs every store race.
pub async fn run_store(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    two_writers_one_room(a.clone(), b.clone()).await;
    cursor_never_moves_backwards(a, b).await;
}

/// Runs every key-value race.
pub async fn run_kv(a: Arc<dyn Kv>, b: Arc<dyn Kv>) {
    insert_if_absent_race(a.clone(), b.clone()).await;
    compare_and_set_counter(a, b).await;
}

/// Two writers append to one room at once, each reading the head and
/// appending head + 1 (retrying on `Conflict`). Every acknowledged event is
/// stored exactly once, at the seq it was acknowledged for, with no gap.
pub async fn two_writers_one_room(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    const EACH: usize = 25;
    let room = unique("room");
    let writer = |store: Arc<dyn Store>, name: &'static str, room: String| {
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut conflicts = 0u32;
            while acked.len() < EACH {
                let head = store.room_head(&room).await.unwrap();
                let tag = format!("{name}-{}", acked.len());
                match store
                    .append_room_events(&room, 0, &enc([room_event(head + 1, &tag)]))
                    .await
                {
                    Ok(()) => acked.push((head + 1, tag)),
                    Err(StoreError::Conflict(_)) => conflicts += 1,
                    Err(e) => panic!("{name}: append: {e:?}"),
                }
                assert!(conflicts < 10_000, "{name}: no progress");
            }
            acked
        })
    };
    let wa = writer(a.clone(), "a", room.clone());
    let wb = writer(b.clone(), "b", room.clone());
    let mut acked = wa.await.expect("writer a");
    acked.extend(wb.await.expect("writer b"));
    acked.sort();
    let stored = a.room_events(&room, 0, 1000).await.unwrap();
    assert_eq!(stored.len(), 2 * EACH, "every acked event, nothing else");
    for (ev, (seq, tag)) in stored.iter().zip(&acked) {
        assert_eq!(*ev, room_event(*seq, tag), "seq {seq}");
    }
    assert_eq!(b.room_head(&room).await.unwrap(), (2 * EACH) as u64);
}

/// Many cursor writes through two handles at once while a reader polls: the
/// reader never sees a position go down, and the end state is the maximum.
pub async fn cursor_never_moves_backwards(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    const TASKS: u64 = 16;
    const PUTS: u64 = 20;
    let thread = unique("thread");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, thread, done) = (a.clone(), thread.clone(), done.clone());
        tokio::spawn(async move {
            let (mut d, mut r) = (0, 0);
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                for c in store.cursors(&thread).await.unwrap() {
                    assert!(c.delivered >= d && c.read >= r, "went back: {c:?}");
                    (d, r) = (c.delivered, c.read);
                }
                reads += 1;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        let thread = thread.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PUTS {
                // Values jump around between tasks: later puts are often lower.
                let delivered = (t * 7 + i * 13) % 97;
                let read = (t * 11 + i * 5) % 89;
                let c = Cursor {
                    user: "athlete".into(),
                    delivered,
                    read,
                };
                store.put_cursor(&thread, &c).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.expect("cursor task");
    }
    done.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    let max = |f: fn(u64, u64) -> u64| {
        (0..TASKS)
            .flat_map(|t| (0..PUTS).map(move |i| f(t, i)))
            .max()
            .unwrap_or(0)
    };
    let expected = Cursor {
        user: "athlete".into(),
        delivered: max(|t, i| (t * 7 + i * 13) % 97),
        read: max(|t, i| (t * 11 + i * 5) % 89),
    };
    assert_eq!(b.cursors(&thread).await.unwrap(), vec![expected]);
}

/// Twenty insert-if-absent batches for one key (and a record beside it)
/// through two handles at once: exactly one wins and its record is whole.
pub async fn insert_if_absent_race(a: Arc<dyn Kv>, b: Arc<dyn Kv>) {
    const NS: &str = "conformance";
    let key = unique("email");
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let kv = if i % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let batch = KvBatch::default()
                .if_absent(NS, key.clone())
                .put(NS, key.clone(), vec![i])
                .put(NS, format!("{key}/record"), vec![i]);
            (i, kv.apply(batch).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, won) = t.await.expect("batch task");
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one wins: {winners:?}");
    assert_eq!(a.get(NS, &key).await.unwrap(), Some(vec![winners[0]]));
    assert_eq!(
        b.get(NS, &format!("{key}/record")).await.unwrap(),
        Some(vec![winners[0]])
    );
}

/// Compare-and-set increments of one counter from two handles at once: no
/// increment is lost.
pub async fn compare_and_set_counter(a: Arc<dyn Kv>, b: Arc<dyn Kv>) {
    const NS: &str = "conformance";
    const TASKS: u32 = 8;
    const EACH: u32 = 10;
    let key = unique("counter");
    assert!(
        a.apply(KvBatch::default().put(NS, key.clone(), 0u32.to_be_bytes().to_vec()))
            .await
            .unwrap()
    );
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let kv = if t % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut tries = 0u32;
            while done < EACH {
                tries += 1;
                assert!(tries < 100_000, "no progress");
                let Some(old) = kv.get(NS, &key).await.unwrap() else {
                    panic!("counter vanished")
                };
                let n = u32::from_be_bytes(old.as_slice().try_into().expect("4 bytes"));
                let batch = KvBatch::default().if_equals(NS, key.clone(), old).put(
                    NS,
                    key.clone(),
                    (n + 1).to_be_bytes().to_vec(),
                );
                if kv.apply(batch).await.unwrap() {
                    done += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("counter task");
    }
    assert_eq!(
        b.get(NS, &key).await.unwrap(),
        Some((TASKS * EACH).to_be_bytes().to_vec())
    );
}
