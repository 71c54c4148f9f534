//! `chalktalk-bench …` (also reached as `chalktalk bench …`): load
//! generators that start (or target) a real server over loopback and print
//! one JSON object of measurements. A crate of its own, so the server
//! build carries neither the benches nor the protocol's client. Results
//! and the commands that reproduce them live in docs/BENCHMARKS.md.

mod ops;
mod ratelimit;
mod rooms;
mod sessions;
mod signin;
mod stats;
mod store;
mod target;
mod transcode;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

pub use stats::Summary;
pub use target::Target;

/// Errors of a benchmark run.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Where the server under test is.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// ws:// URL of a running server; without it the bench starts one
    /// (`chalktalk serve`, the server binary beside this one) on a free loopback port.
    #[arg(long)]
    pub target: Option<String>,
    /// The target's JWT secret (needed with --target).
    #[arg(long, env = "CHALKTALK_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The target's process id, to report its memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The store of the server the bench starts (`CHALKTALK_STORE`:
    /// `embedded`, the default, or `postgres://user@host[:port]/db`).
    #[arg(long)]
    pub store: Option<String>,
    /// Start this many nodes forming a cluster on loopback (they need a
    /// shared `--store`); clients are spread over them (`bench rooms`:
    /// each room's drawer on the first node, its members round-robin).
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Live fan-out: one drawer per room streams point batches; every other
    /// member receives them.
    Rooms(rooms::RoomsArgs),
    /// Memory per idle connected session.
    Sessions(sessions::SessionsArgs),
    /// Durable op throughput and ack latency over the WebSocket.
    Ops(ops::OpsArgs),
    /// Durable append throughput of a store alone (embedded by default).
    Store(StoreArgs),
    /// The video pipeline on a file, as the server runs it.
    Transcode(transcode::TranscodeArgs),
    /// Rate-limit decisions: in process, and with `--redis` through Redis.
    Ratelimit(ratelimit::RatelimitArgs),
    /// Password checks (argon2id) per second: what bounds sign-ins.
    Signin(signin::SigninArgs),
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    #[arg(long, default_value_t = 64)]
    pub rooms: usize,
    #[arg(long, default_value_t = 2000)]
    pub ops_per_room: usize,
    /// Events per append call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Directory for the database (a fresh temporary one by default).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// `embedded` (default) or `postgres://user@host[:port]/db` (its
    /// migrations are applied; the bench writes rooms of its own).
    #[arg(long)]
    pub store: Option<String>,
    /// Accepted for symmetry; output is always JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a benchmark and returns its JSON report.
pub async fn run(cmd: BenchCommand) -> Result<String, BenchError> {
    let value = match cmd {
        BenchCommand::Rooms(a) => serde_json::to_value(rooms::run(a).await?)?,
        BenchCommand::Sessions(a) => serde_json::to_value(sessions::run(a).await?)?,
        BenchCommand::Ops(a) => serde_json::to_value(ops::run(a).await?)?,
        BenchCommand::Transcode(a) => serde_json::to_value(transcode::run(a).await?)?,
        BenchCommand::Ratelimit(a) => serde_json::to_value(ratelimit::run(a).await?)?,
        BenchCommand::Signin(a) => serde_json::to_value(signin::run(a).await?)?,
        BenchCommand::Store(a) if a.store.as_deref().is_some_and(|s| s != "embedded") => {
            let url = a.store.clone().unwrap_or_default();
            let store = chalktalk_adapters::postgres::PgStore::connect(
                &chalktalk_adapters::postgres::PgOptions::new(&url),
            )
            .await?;
            let r = store::run_any(store, a.rooms, a.ops_per_room, a.batch).await;
            serde_json::to_value(r)?
        }
        BenchCommand::Store(a) => {
            let dir = a
                .dir
                .clone()
                .unwrap_or_else(|| target::scratch_dir("store"));
            let store = chalktalk_adapters::EmbeddedStore::open(&dir)?;
            let r = store::run_embedded(store, a.rooms, a.ops_per_room, a.batch).await;
            if a.dir.is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            serde_json::to_value(r)?
        }
    };
    Ok(serde_json::to_string(&value)?)
}

/// Connects `n` clients concurrently (at most 64 handshakes at a time).
pub async fn connect_many(
    target: &Target,
    users: Vec<(String, chalktalk_protocol::Role)>,
) -> Result<Vec<chalktalk_protocol::client::Client>, BenchError> {
    use futures_util::StreamExt;
    let target = Arc::new(target.clone_handle());
    let clients: Vec<Result<_, BenchError>> =
        futures_util::stream::iter(users.into_iter().enumerate())
            .map(|(i, (user, role))| {
                let t = target.clone();
                async move { t.connect(&user, role, &format!("dev{i}")).await }
            })
            .buffered(64)
            .collect()
            .await;
    clients.into_iter().collect()
}
