//! GCRA (generic cell rate algorithm) in integer microseconds, the clocks it
//! runs on and the single-bucket [`SessionLimiter`] of WebSocket sessions.
//!
//! A bucket's whole state is its TAT (theoretical arrival time). With the
//! emission interval `T = period / rate` and the tolerance `τ = burst · T`,
//! a request at `now` is allowed when `max(TAT, now) + T − now ≤ τ`, and then
//! `TAT = max(TAT, now) + T`. A TAT at or before `now` is a full bucket,
//! the same as no state at all, which is why idle keys can be dropped. The
//! Lua script of the Redis limiter (`redis.rs`) is the same computation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Decision, Quota};

/// A monotonic time source in µs since an arbitrary origin.
pub trait Clock: Send + Sync + 'static {
    fn now_us(&self) -> u64;
}

/// The process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct FakeClock(AtomicU64);

impl FakeClock {
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.0.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_us(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now_us(&self) -> u64 {
        (**self).now_us()
    }
}

/// The outcome of one GCRA step: the TAT to store (`None`: unchanged,
/// refused) and the raw numbers of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub new_tat: Option<u64>,
    pub allowed: bool,
    /// TAT after the step minus now: how much of the tolerance is used.
    pub backlog_us: u64,
    /// Time until a refused request would be allowed (0 when allowed).
    pub retry_us: u64,
}

/// One request against a bucket whose TAT is `tat` (`None`: no state).
pub(crate) fn step(quota: &Quota, tat: Option<u64>, now: u64) -> Step {
    let t = quota.emission_us();
    let tau = quota.tolerance_us();
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(t);
    let allow_at = new_tat.saturating_sub(tau);
    if now < allow_at {
        Step {
            new_tat: None,
            allowed: false,
            backlog_us: tat - now,
            retry_us: allow_at - now,
        }
    } else {
        Step {
            new_tat: Some(new_tat),
            allowed: true,
            backlog_us: new_tat - now,
            retry_us: 0,
        }
    }
}

fn ceil_secs(us: u64) -> u64 {
    us.div_ceil(1_000_000)
}

/// The decision for raw GCRA numbers (shared by the local and Redis paths).
pub(crate) fn decision(quota: &Quota, allowed: bool, backlog_us: u64, retry_us: u64) -> Decision {
    let t = quota.emission_us();
    let tau = quota.tolerance_us();
    let remaining = tau.saturating_sub(backlog_us) / t;
    Decision {
        allowed,
        limit: quota.burst.max(1),
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset_after_secs: ceil_secs(backlog_us),
        retry_after_secs: if allowed {
            0
        } else {
            ceil_secs(retry_us).max(1)
        },
    }
}

impl Step {
    pub(crate) fn decision(&self, quota: &Quota) -> Decision {
        decision(quota, self.allowed, self.backlog_us, self.retry_us)
    }
}

/// One bucket, in process: the WebSocket frame limiter of one session.
#[derive(Debug)]
pub struct SessionLimiter {
    quota: Quota,
    tat: Option<u64>,
    clock: MonotonicClock,
}

impl SessionLimiter {
    /// A full bucket of `quota` (see [`Quota::ws_frames`]).
    pub fn new(quota: Quota) -> SessionLimiter {
        SessionLimiter {
            quota,
            tat: None,
            clock: MonotonicClock::default(),
        }
    }

    /// Counts one frame; false when it is over the limit.
    pub fn take(&mut self) -> bool {
        let s = step(&self.quota, self.tat, self.clock.now_us());
        if let Some(t) = s.new_tat {
            self.tat = Some(t);
        }
        s.allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    /// Runs `n` requests at `now` against `tat`, returning the decisions.
    fn run(q: &Quota, tat: &mut Option<u64>, now: u64, n: usize) -> Vec<Decision> {
        (0..n)
            .map(|_| {
                let s = step(q, *tat, now);
                if let Some(t) = s.new_tat {
                    *tat = Some(t);
                }
                s.decision(q)
            })
            .collect()
    }

    #[test]
    fn burst_then_refused() {
        let q = Quota::new(60, Duration::from_secs(60), 5);
        let mut tat = None;
        let d = run(&q, &mut tat, 0, 6);
        assert!(d[..5].iter().all(|d| d.allowed));
        let remaining: Vec<u32> = d.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [4, 3, 2, 1, 0, 0]);
        assert!(d.iter().all(|d| d.limit == 5));
        assert_eq!(d[0].reset_after_secs, 1);
        assert_eq!(d[4].reset_after_secs, 5);
        assert!(!d[5].allowed);
        assert_eq!(d[5].retry_after_secs, 1);
        assert_eq!(d[5].reset_after_secs, 5);
    }

    #[test]
    fn steady_rate_is_allowed_forever() {
        // 10/s burst 2: one request every 100 ms never runs out.
        let q = Quota::new(10, Duration::from_secs(1), 2);
        let mut tat = None;
        for i in 0..1000u64 {
            let d = run(&q, &mut tat, i * SEC / 10, 1)[0];
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 1);
        }
        // Twice that rate: every other request is refused once the burst
        // is used.
        let mut tat = None;
        let allowed = (0..100u64)
            .filter(|i| run(&q, &mut tat, i * SEC / 20, 1)[0].allowed)
            .count();
        assert!((50..=52).contains(&allowed), "{allowed}");
    }

    #[test]
    fn refills_and_resets() {
        let q = Quota::new(10, Duration::from_secs(3600), 3);
        let mut tat = None;
        let d = run(&q, &mut tat, 0, 4);
        assert!(!d[3].allowed);
        // One emission interval (6 min) later: exactly one more.
        assert_eq!(d[3].retry_after_secs, 360);
        assert_eq!(d[3].reset_after_secs, 1080);
        let d = run(&q, &mut tat, 359 * SEC, 1)[0];
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 1);
        let d = run(&q, &mut tat, 360 * SEC, 2);
        assert!(d[0].allowed && !d[1].allowed);
        // After the reset time the bucket is full again: same as no state.
        let reset = 360 * SEC + d[1].reset_after_secs * SEC;
        let s = step(&q, tat, reset);
        assert_eq!(s, step(&q, None, reset));
        assert_eq!(s.decision(&q).remaining, 2);
    }

    #[test]
    fn session_limiter_takes_the_burst() {
        let mut s = SessionLimiter::new(Quota::new(1, Duration::from_secs(3600), 4));
        assert_eq!((0..6).filter(|_| s.take()).count(), 4);
    }

    #[test]
    fn fake_clock_moves_when_told() {
        let c = FakeClock::default();
        assert_eq!(c.now_us(), 0);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now_us(), 1_500_000);
    }
}
