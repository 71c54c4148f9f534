//! chalktalk-actors: the realtime core on ractor. ReviewRoom and
//! ChatThread actors, the Inbox actor, their supervisors, the directory that
//! finds them, the connection's Session (plain state its reader drives) and
//! the ports (traits) through which they reach storage.
//!
//! Dependency rule: this crate knows no HTTP, no database driver and no
//! socket type; the application crate wires real adapters in.

pub mod directory;
pub mod encoder;
pub mod handle;
pub mod inbox;
pub mod lease;
pub mod live;
pub mod metrics;
pub mod outbound;
pub mod relay;
pub mod room;
pub mod session;
pub mod store;
pub mod supervisor;
pub mod thread;

use std::sync::Arc;
use std::time::Duration;

use chalktalk_protocol::Limits;

pub use directory::Directory;
pub use outbound::{Out, Outbound, OutboundStats, SessionId};

/// Tunables of the realtime core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub limits: Limits,
    /// How long a dropped connection stays in presence.
    pub presence_grace: Duration,
    /// How long a `typing {on: true}` lasts without being renewed; then the
    /// thread tells its viewers `typing {on: false}`.
    pub typing_timeout: Duration,
    /// How long an empty room or thread waits before it stops.
    pub idle_stop: Duration,
    /// Write a room snapshot after this many events.
    pub snapshot_every: u64,
    /// Most events sent one by one on join/open; further behind gets a
    /// snapshot (rooms) or the newest page (threads).
    pub catchup_max: u64,
    /// Most queued messages per room/thread actor before shedding.
    pub queue_limit: usize,
    /// Allow admin-only debug requests (`debug_panic`). Off in production.
    pub debug_hooks: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            limits: Limits::default(),
            presence_grace: Duration::from_secs(10),
            typing_timeout: Duration::from_secs(6),
            idle_stop: Duration::from_secs(30),
            snapshot_every: 10_000,
            catchup_max: 400,
            queue_limit: 8192,
            debug_hooks: false,
        }
    }
}

/// Live review rooms by the video (asset) they show, so media progress can
/// reach them. Rooms register when they start and leave when they stop.
pub type MediaWatch = std::sync::Arc<
    std::sync::Mutex<
        std::collections::HashMap<
            String,
            std::collections::HashMap<String, ractor::ActorRef<room::RoomMsg>>,
        >,
    >,
>;

/// What every actor of the core shares.
pub struct Deps {
    pub media_watch: MediaWatch,
    pub store: Arc<dyn store::Store>,
    pub config: CoreConfig,
    pub stats: Arc<OutboundStats>,
    pub inbox: ractor::ActorRef<inbox::InboxMsg>,
    /// Leases and fencing of rooms (`None`: a node outside any cluster).
    pub placement: Option<Arc<lease::Placement>>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random id with a prefix, e.g. `r-3f9a0c1b2d4e5f60a7b8`.
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 10];
    // getrandom only fails when the OS has no entropy source at all.
    if getrandom::fill(&mut b).is_err() {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&n.to_le_bytes()[..10]);
    }
    let mut s = String::with_capacity(prefix.len() + 21);
    s.push_str(prefix);
    s.push('-');
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it
/// (an actor that panicked is restarted; its shared registry stays usable).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
