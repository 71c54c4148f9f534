//! Brute-force protection of sign-in, per node: failures are counted per
//! key (`email:{normalised}`, `ip:{address}`, within a window); a key that
//! reaches its limit is locked for a while, never for ever. A locked key
//! refuses every attempt, right password or not, whether or not the
//! account exists, until the lock expires. Unknown emails count like known
//! ones, so locks reveal nothing either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Keys remembered before old entries are pruned.
const PRUNE_AT: usize = 100_000;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failures: u32,
    first_ms: u64,
    locked_until: u64,
}

/// Failure counters and locks.
#[derive(Debug)]
pub struct Throttle {
    window_ms: u64,
    lock_ms: u64,
    map: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    pub fn new(window: Duration, lock_for: Duration) -> Throttle {
        Throttle {
            window_ms: window.as_millis() as u64,
            lock_ms: lock_for.as_millis() as u64,
            map: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds until the longest lock among `keys` ends, if any is locked.
    pub fn locked(&self, keys: &[&str]) -> Option<u64> {
        let now = chalktalk_actors::now_ms();
        let m = self.lock();
        keys.iter()
            .filter_map(|k| m.get(*k))
            .filter(|e| e.locked_until > now)
            .map(|e| (e.locked_until - now).div_ceil(1000).max(1))
            .max()
    }

    /// Counts a failure of each `(key, limit)`; a key reaching its limit
    /// is locked.
    pub fn fail(&self, keys: &[(&str, u32)]) {
        let now = chalktalk_actors::now_ms();
        let mut m = self.lock();
        if m.len() > PRUNE_AT {
            let (w, l) = (self.window_ms, self.lock_ms);
            m.retain(|_, e| e.locked_until > now || now.saturating_sub(e.first_ms) < w.max(l));
        }
        for (key, limit) in keys {
            let e = m.entry((*key).to_string()).or_default();
            if now.saturating_sub(e.first_ms) > self.window_ms {
                *e = Entry {
                    first_ms: now,
                    ..Entry::default()
                };
            }
            e.failures += 1;
            if e.failures >= (*limit).max(1) {
                e.locked_until = now + self.lock_ms;
                e.failures = 0;
                e.first_ms = now;
            }
        }
    }

    /// Forgets the failures of `key` (a successful sign-in).
    pub fn clear(&self, key: &str) {
        let mut m = self.lock();
        if m.get(key)
            .is_some_and(|e| e.locked_until <= chalktalk_actors::now_ms())
        {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_then_expires() {
        let t = Throttle::new(Duration::from_secs(60), Duration::from_millis(200));
        for _ in 0..2 {
            assert_eq!(t.locked(&["email:a"]), None);
            t.fail(&[("email:a", 3), ("ip:1", 100)]);
        }
        t.clear("email:a");
        t.fail(&[("email:a", 3)]);
        t.fail(&[("email:a", 3)]);
        assert_eq!(
            t.locked(&["email:a", "ip:1"]),
            None,
            "cleared by the success"
        );
        t.fail(&[("email:a", 3)]);
        assert_eq!(t.locked(&["ip:1", "email:a"]), Some(1));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.locked(&["email:a"]), None);
    }
}
