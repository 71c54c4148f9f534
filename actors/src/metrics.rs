//! The node's process metrics: counters and histograms that the hot paths
//! bump (one relaxed atomic add each), kept in one process-wide
//! [`Metrics`] ([`metrics()`]) and rendered in the Prometheus text format by
//! the server's `/metrics` route, together with the gauges it reads at
//! scrape time (connections, rooms, queues). Names and meanings:
//! docs/OPERATIONS.md, "Metrics".

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Everything the core and the adapters count.
pub struct Metrics {
    /// WebSocket messages received (after the handshake).
    pub frames_in: Counter,
    /// WebSocket messages written to sockets.
    pub frames_out: Counter,
    /// Connections that completed `hello`.
    pub sessions_opened: Counter,
    /// `resync` frames sent (a member fell too far behind).
    pub resyncs: Counter,
    /// Durable store commits (one per group-committed batch).
    pub store_commit_seconds: Histogram,
    /// Failed store commits.
    pub store_commit_failures: Counter,
    /// From the store's acknowledgement of a room's batch to its events
    /// queued for every member (and acks for their senders).
    pub fanout_seconds: Histogram,
    /// Media jobs, from their start to their end (any outcome).
    pub job_seconds: Histogram,
    /// Leases of rooms taken by this node (a room started here).
    pub lease_taken: Counter,
    /// Lease renewals that succeeded.
    pub lease_renewals: Counter,
    /// Leases lost while serving (another node took over, or renewals
    /// failed until expiry) and writes refused by a fence.
    pub lease_losses: Counter,
    /// Relay link batches (frames for another node's sessions) that could
    /// not be written: the link was down or broke.
    pub relay_batches_lost: Counter,
    /// Times this node found a gap in a relay link from an owner (and
    /// closed the sessions that used that owner, so they resume).
    pub relay_link_resets: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    frames_in: Counter::default(),
    frames_out: Counter::default(),
    sessions_opened: Counter::default(),
    resyncs: Counter::default(),
    // 50 µs .. ~3.3 s.
    store_commit_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 17)),
    store_commit_failures: Counter::default(),
    // 10 µs .. ~0.65 s.
    fanout_seconds: Histogram::new(exponential_buckets(0.000_01, 2.0, 17)),
    // 0.5 s .. ~34 min.
    job_seconds: Histogram::new(exponential_buckets(0.5, 2.0, 13)),
    lease_taken: Counter::default(),
    lease_renewals: Counter::default(),
    lease_losses: Counter::default(),
    relay_batches_lost: Counter::default(),
    relay_link_resets: Counter::default(),
});

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Records one store commit of `took`.
    pub fn store_commit(&self, took: Duration, ok: bool) {
        self.store_commit_seconds.observe(took.as_secs_f64());
        if !ok {
            self.store_commit_failures.inc();
        }
    }

    /// Adds every metric of this struct to `registry` (names get the
    /// registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "frames_in",
            "WebSocket messages received after the handshake",
            self.frames_in.clone(),
        );
        registry.register(
            "frames_out",
            "WebSocket messages written to sockets",
            self.frames_out.clone(),
        );
        registry.register(
            "sessions_opened",
            "Connections that completed hello",
            self.sessions_opened.clone(),
        );
        registry.register(
            "resyncs",
            "resync frames sent to members that fell too far behind",
            self.resyncs.clone(),
        );
        registry.register_with_unit(
            "store_commit",
            "Durable store commits (one per group-committed batch)",
            Unit::Seconds,
            self.store_commit_seconds.clone(),
        );
        registry.register(
            "store_commit_failures",
            "Store commits that failed (every request of the batch got unavailable)",
            self.store_commit_failures.clone(),
        );
        registry.register_with_unit(
            "fanout",
            "From the store's acknowledgement of a room's batch to its events queued for every member",
            Unit::Seconds,
            self.fanout_seconds.clone(),
        );
        registry.register_with_unit(
            "media_job",
            "Media jobs from start to end, any outcome",
            Unit::Seconds,
            self.job_seconds.clone(),
        );
        registry.register(
            "lease_taken",
            "Room leases taken by this node",
            self.lease_taken.clone(),
        );
        registry.register(
            "lease_renewals",
            "Room lease renewals that succeeded",
            self.lease_renewals.clone(),
        );
        registry.register(
            "lease_losses",
            "Room leases lost while serving, and writes refused by a fence",
            self.lease_losses.clone(),
        );
        registry.register(
            "relay_batches_lost",
            "Relay link batches for another node that could not be written (link down or broken)",
            self.relay_batches_lost.clone(),
        );
        registry.register(
            "relay_link_resets",
            "Gaps found in relay links from owners (the sessions that used the owner were closed to resume)",
            self.relay_link_resets.clone(),
        );
    }
}

/// Resident memory (VmRSS) of process `pid`, or of this one.
pub fn resident_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU seconds (user + system) this process has used.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes only into the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0.0;
        }
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }
}
