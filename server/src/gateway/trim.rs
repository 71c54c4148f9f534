//! Gives freed memory back to the OS after many connections have closed.
//!
//! glibc's allocator keeps freed heap pages of its arenas for reuse, so a
//! node that held 5,000 joined sessions keeps their ~200 MB resident after
//! they leave (reused by the next ones, so it is no leak, but it is RSS a
//! host's other tenants cannot have). Every second this task looks at
//! the number of open connections; when it has fallen by a quarter (and by
//! at least [`MIN_DROP`]) since its peak, it calls `malloc_trim(0)`, which
//! returns the free pages of every arena (a few ms of one core), and once
//! more [`FOLLOW_UP`] later, when the rooms those connections had joined
//! have stopped (presence grace, then `idle_stop`).

use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chalktalk_actors::Outbound;
use chalktalk_actors::SessionId;

/// How often the connection count is sampled (a lock and a `len`): often
/// enough to see a peak that lasted a few seconds (at 5 s, 10,000
/// connections open for 4 s were missed and nothing was trimmed).
const EVERY: Duration = Duration::from_secs(1);
/// Connections that must have closed since the peak before a trim.
const MIN_DROP: usize = 500;
/// The second trim after a drop: presence grace (10 s) + `idle_stop`
/// (30 s) and some margin.
const FOLLOW_UP: Duration = Duration::from_secs(60);

/// Starts the trimmer of a node with these open connections.
pub fn spawn(connections: Arc<Mutex<HashMap<SessionId, Outbound>>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut peak = 0usize;
        let mut follow_up: Option<tokio::time::Instant> = None;
        loop {
            every.tick().await;
            let open = connections.lock().unwrap_or_else(|e| e.into_inner()).len();
            peak = peak.max(open);
            let dropped = peak - open >= MIN_DROP && open <= peak / 4 * 3;
            let due = follow_up.is_some_and(|t| t <= tokio::time::Instant::now());
            if dropped || due {
                let released = tokio::task::spawn_blocking(trim).await.unwrap_or(false);
                tracing::debug!(peak, open, released, "malloc_trim after closed connections");
                follow_up = dropped.then(|| tokio::time::Instant::now() + FOLLOW_UP);
                peak = open;
            }
        }
    })
}

/// Returns free heap memory to the OS; true if some was released.
fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and madvises the allocator's own free
    // lists; it is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}
