//! The in-process [`Limiter`]: GCRA buckets in sharded maps, with bounded
//! memory. A bucket whose TAT has passed is full, the same as absent, so it
//! is dropped ("idle"): each shard sweeps its idle buckets at most every
//! [`SWEEP_EVERY`] and whenever it is full; a shard still full after a sweep
//! (more than `max_keys` live buckets, i.e. a flood of distinct clients)
//! drops the half closest to full, which can only let those clients in
//! earlier, never lock anyone out.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::gcra::{Clock, MonotonicClock, step};
use super::{Class, Decision, Limiter, Quotas};

const SHARDS: usize = 16;
/// Idle buckets are swept at least this often (µs), per shard.
pub const SWEEP_EVERY: u64 = 30_000_000;

struct Shard {
    buckets: HashMap<(Class, Box<str>), u64>,
    last_sweep: u64,
}

impl Shard {
    /// Drops the buckets whose TAT has passed.
    fn sweep(&mut self, now: u64) {
        self.buckets.retain(|_, tat| *tat > now);
        self.last_sweep = now;
    }

    /// Makes room for one more bucket under `cap`.
    fn make_room(&mut self, cap: usize, now: u64) {
        if self.buckets.len() < cap {
            return;
        }
        self.sweep(now);
        if self.buckets.len() < cap {
            return;
        }
        // Still full of live buckets: keep the fuller half.
        let mut tats: Vec<u64> = self.buckets.values().copied().collect();
        let mid = tats.len() / 2;
        let (_, median, _) = tats.select_nth_unstable(mid);
        let cut = *median;
        self.buckets.retain(|_, tat| *tat > cut);
        if self.buckets.len() >= cap {
            // All equal TATs: drop everything rather than grow.
            self.buckets.clear();
        }
        tracing::debug!(
            kept = self.buckets.len(),
            "rate limiter shard full of live buckets; dropped the emptiest half"
        );
    }
}

/// In-process limiter; clones share the buckets.
#[derive(Clone)]
pub struct LocalLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    quotas: Quotas,
    clock: Box<dyn Clock>,
    shard_cap: usize,
}

impl LocalLimiter {
    /// At most about `max_keys` buckets (at least 16), on the process clock.
    pub fn new(quotas: Quotas, max_keys: usize) -> LocalLimiter {
        LocalLimiter::with_clock(quotas, max_keys, MonotonicClock::default())
    }

    /// Same on a given clock (tests: [`FakeClock`](super::FakeClock)).
    pub fn with_clock(quotas: Quotas, max_keys: usize, clock: impl Clock) -> LocalLimiter {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    buckets: HashMap::new(),
                    last_sweep: 0,
                })
            })
            .collect();
        LocalLimiter {
            inner: Arc::new(Inner {
                shards,
                hasher: RandomState::new(),
                quotas,
                clock: Box::new(clock),
                shard_cap: max_keys.div_ceil(SHARDS).max(1),
            }),
        }
    }

    /// The quota table in use.
    pub fn quotas(&self) -> &Quotas {
        &self.inner.quotas
    }

    /// The decision for `key` in `class`, now.
    pub fn check_now(&self, key: &str, class: Class) -> Decision {
        let inner = &self.inner;
        let quota = inner.quotas.get(class);
        let now = inner.clock.now_us();
        let idx = (inner.hasher.hash_one((class, key)) as usize) % SHARDS;
        let mut shard = inner.shards[idx].lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_sub(shard.last_sweep) >= SWEEP_EVERY {
            shard.sweep(now);
        }
        let id = (class, Box::<str>::from(key));
        let tat = shard.buckets.get(&id).copied();
        let s = step(&quota, tat, now);
        if let Some(new_tat) = s.new_tat {
            if tat.is_none() {
                shard.make_room(inner.shard_cap, now);
            }
            shard.buckets.insert(id, new_tat);
        }
        s.decision(&quota)
    }

    /// Drops every idle bucket now.
    pub fn evict_idle(&self) {
        let now = self.inner.clock.now_us();
        for s in &self.inner.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).sweep(now);
        }
    }

    /// Buckets held (idle ones included until swept).
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).buckets.len())
            .sum()
    }

    /// True when no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Limiter for LocalLimiter {
    async fn check(&self, key: &str, class: Class) -> Decision {
        self.check_now(key, class)
    }

    fn backend(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{FakeClock, Quota};
    use super::*;

    fn limiter(max_keys: usize) -> (LocalLimiter, Arc<FakeClock>) {
        let clock = Arc::new(FakeClock::default());
        let quotas =
            Quotas::defaults().with(Class::Public, Quota::new(60, Duration::from_secs(60), 3));
        (
            LocalLimiter::with_clock(quotas, max_keys, clock.clone()),
            clock,
        )
    }

    #[test]
    fn keys_and_classes_are_separate() {
        let (l, _) = limiter(1000);
        assert_eq!(
            (0..5)
                .filter(|_| l.check_now("a", Class::Public).allowed)
                .count(),
            3
        );
        assert!(l.check_now("b", Class::Public).allowed);
        assert!(l.check_now("a", Class::Authenticated).allowed);
        assert_eq!(l.check_now("a", Class::Authenticated).limit, 1500);
    }

    #[test]
    fn idle_keys_are_evicted() {
        let (l, clock) = limiter(1000);
        for i in 0..50 {
            assert!(l.check_now(&format!("ip:{i}"), Class::Public).allowed);
        }
        assert_eq!(l.len(), 50);
        // One request costs 1 s of a 3 s tolerance: idle after 1 s.
        clock.advance(Duration::from_millis(999));
        l.evict_idle();
        assert_eq!(l.len(), 50);
        clock.advance(Duration::from_millis(1));
        l.evict_idle();
        assert!(l.is_empty());
        // Without an explicit sweep: the periodic one on the next check of
        // each shard. One fresh key per shard that holds an old key (the
        // shard of a key depends on the process's random hasher).
        let shard = |key: &str| (l.inner.hasher.hash_one((Class::Public, key)) as usize) % SHARDS;
        let mut old_shards = std::collections::BTreeSet::new();
        for i in 0..50 {
            let key = format!("ip:{i}");
            old_shards.insert(shard(&key));
            l.check_now(&key, Class::Public);
        }
        clock.advance(Duration::from_micros(SWEEP_EVERY));
        let mut fresh = 0;
        for target in &old_shards {
            let key = (0..)
                .map(|n| format!("fresh:{n}"))
                .find(|k| shard(k) == *target)
                .expect("some key lands in every shard");
            l.check_now(&key, Class::Public);
            fresh += 1;
        }
        assert_eq!(l.len(), fresh, "every old key was swept");
    }

    #[test]
    fn memory_is_bounded_under_a_flood_of_live_keys() {
        let (l, clock) = limiter(160);
        for i in 0..10_000 {
            clock.advance(Duration::from_micros(1));
            l.check_now(&format!("ip:{i}"), Class::Public);
        }
        assert!(l.len() <= 160, "{}", l.len());
        // The most recent clients are still limited.
        let last = "ip:9999";
        assert!(l.check_now(last, Class::Public).allowed);
        assert!(l.check_now(last, Class::Public).allowed);
        assert!(!l.check_now(last, Class::Public).allowed);
    }
}
