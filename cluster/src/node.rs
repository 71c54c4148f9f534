//! A running cluster node: ractor_cluster's `NodeServer` (cookie,
//! transitive connections), the member actor that hears heartbeats, the
//! heartbeat task that sends this node's beat to every member actor of the
//! others (found through the `ractor::pg` group they join) and ages the
//! view, and the dialer that (re)connects to the seeds with backoff, since
//! ractor_cluster never re-dials a lost peer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::node::{NodeConnectionMode, NodeServer, NodeServerMessage};
use serde::Serialize;

use crate::members::{MemberView, Members, MembershipEvent, Status, Timing};
use crate::wire::{Beat, ClusterMsg, NodeInfo, PROTOCOL_VERSION};

/// The `ractor::pg` scope and group of the member actors.
const SCOPE: &str = "chalktalk";
const GROUP: &str = "members";

/// How a node joins the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Unique name of this node.
    pub node: String,
    /// Where the cluster listener binds (ip and port).
    pub listen: SocketAddr,
    /// The host other nodes dial to reach `listen` (transitive connections).
    pub advertise_host: String,
    /// This node's HTTP address, shown to operators.
    pub http: String,
    /// `host:port` of other nodes' cluster listeners.
    pub seeds: Vec<String>,
    /// Shared secret every node must present.
    pub cookie: String,
    pub heartbeat: Duration,
    pub timing: Timing,
    /// How long a room's lease lasts unless its owner renews it (a third of
    /// it between renewals); a dead or frozen owner's rooms move after it.
    pub lease: Duration,
    /// Where a room or thread that no node serves starts.
    pub placement: chalktalk_actors::lease::PlacePolicy,
    /// Port of the relay link listener on `listen`'s ip (0: any free
    /// port; its address goes out in the beats).
    pub relay_port: u16,
    /// Mutual TLS between nodes (`tls.rs`); `None`: plain TCP with the
    /// cookie. With TLS, only the seeds are dialed (ractor_cluster's own
    /// dials of peers of peers are plain TCP): list every node.
    pub tls: Option<crate::Tls>,
}

/// What this node reports about itself in each heartbeat (asked once per
/// heartbeat and per view).
pub type InfoFn = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = NodeInfo> + Send>> + Send + Sync,
>;

/// Why a node could not join.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot start the cluster listener on {addr}: {message}")]
    Listen { addr: SocketAddr, message: String },
    #[error("cannot start the member actor: {0}")]
    Actor(String),
}

/// This node and its view of the others (`/api/v1/ops/cluster`).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub me: MemberView,
    pub members: Vec<MemberView>,
    pub events: Vec<MembershipEvent>,
    pub heartbeat_ms: u64,
    pub suspect_after_ms: u64,
    pub down_after_ms: u64,
}

struct MemberActor;

impl Actor for MemberActor {
    type Msg = ClusterMsg;
    type State = Arc<Mutex<Members>>;
    type Arguments = Arc<Mutex<Members>>;

    async fn pre_start(
        &self,
        myself: ActorRef<ClusterMsg>,
        members: Arc<Mutex<Members>>,
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::join_scoped(SCOPE.into(), GROUP.into(), vec![myself.get_cell()]);
        Ok(members)
    }

    async fn handle(
        &self,
        _: ActorRef<ClusterMsg>,
        msg: ClusterMsg,
        members: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let ClusterMsg::Beat(beat) = msg;
        let event = lock(members).heard(*beat, Instant::now(), now_ms());
        if let Some(e) = event {
            log_event(&e);
        }
        Ok(())
    }
}

fn lock(m: &Mutex<Members>) -> std::sync::MutexGuard<'_, Members> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    chalktalk_actors::now_ms()
}

fn log_event(e: &MembershipEvent) {
    match e.to {
        Status::Up => {
            tracing::info!(peer = %e.node, from = ?e.from, why = %e.why, "cluster member up")
        }
        Status::Suspect => tracing::warn!(peer = %e.node, why = %e.why, "cluster member suspect"),
        Status::Down => tracing::warn!(peer = %e.node, why = %e.why, "cluster member down"),
        Status::Refused => {
            tracing::error!(peer = %e.node, why = %e.why, "cluster member refused")
        }
    }
}

/// A node of the cluster; dropping it (or [`Cluster::shutdown`]) leaves.
pub struct Cluster {
    config: ClusterConfig,
    started_ms: u64,
    members: Arc<Mutex<Members>>,
    info: InfoFn,
    server: ActorRef<NodeServerMessage>,
    member: ActorRef<ClusterMsg>,
    /// `host:port` of this node's relay link listener (empty: none).
    relay_addr: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    /// Starts listening, joins the member group, and starts beating and
    /// dialing the seeds. With `relay`, also listens for relay links and
    /// gives the relay the dialer of the others' (`relay_link.rs`).
    pub async fn start(
        config: ClusterConfig,
        info: InfoFn,
        relay: Option<Arc<chalktalk_actors::relay::Relay>>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        // Fail early and clearly if the port is taken (the listener actor
        // would only log it).
        drop(
            std::net::TcpListener::bind(config.listen).map_err(|e| ClusterError::Listen {
                addr: config.listen,
                message: e.to_string(),
            })?,
        );
        let server = NodeServer::new(
            config.listen.port(),
            config.cookie.clone(),
            config.node.clone(),
            config.advertise_host.clone(),
            config
                .tls
                .as_ref()
                .map(|t| ractor_cluster::IncomingEncryptionMode::Tls(t.acceptor.clone())),
            Some(if config.tls.is_some() {
                NodeConnectionMode::Isolated
            } else {
                NodeConnectionMode::Transitive
            }),
        )
        .with_listen_addr(config.listen.ip());
        let (server, _) =
            Actor::spawn(None, server, ())
                .await
                .map_err(|e| ClusterError::Listen {
                    addr: config.listen,
                    message: e.to_string(),
                })?;
        let members = Arc::new(Mutex::new(Members::new(
            config.node.clone(),
            PROTOCOL_VERSION,
            config.timing,
        )));
        let (member, _) = Actor::spawn(None, MemberActor, members.clone())
            .await
            .map_err(|e| ClusterError::Actor(e.to_string()))?;
        let started_ms = now_ms();
        let mut tasks = Vec::new();
        let mut relay_addr = String::new();
        if let Some(relay) = relay {
            let bind = SocketAddr::new(config.listen.ip(), config.relay_port);
            let (addr, task) = crate::relay_link::listen(
                bind,
                config.cookie.clone(),
                config.tls.clone(),
                relay.clone(),
            )
            .await
            .map_err(|e| ClusterError::Listen {
                addr: bind,
                message: format!("relay link listener: {e}"),
            })?;
            tasks.push(task);
            relay_addr = format!("{}:{}", config.advertise_host, addr.port());
            relay.set_opener(Arc::new(crate::relay_link::Dialer {
                me: config.node.clone(),
                cookie: config.cookie.clone(),
                tls: config.tls.clone(),
                members: members.clone(),
            }));
        }
        let mut cluster = Cluster {
            config,
            started_ms,
            members,
            info,
            server,
            member,
            relay_addr,
            tasks,
        };
        cluster.tasks.push(tokio::spawn(beat_loop(
            cluster.config.clone(),
            cluster.relay_addr.clone(),
            started_ms,
            cluster.members.clone(),
            cluster.info.clone(),
        )));
        cluster.tasks.push(tokio::spawn(dial_loop(
            cluster.config.clone(),
            cluster.server.clone(),
            cluster.members.clone(),
        )));
        tracing::info!(
            node = %cluster.config.node,
            listen = %cluster.config.listen,
            relay = %cluster.relay_addr,
            seeds = ?cluster.config.seeds,
            protocol = PROTOCOL_VERSION,
            "cluster node started"
        );
        Ok(Arc::new(cluster))
    }

    pub fn name(&self) -> &str {
        &self.config.node
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        self.config.heartbeat
    }

    /// Peers that are up, by name.
    pub fn up(&self) -> Vec<String> {
        lock(&self.members).up()
    }

    /// This node and what it knows of the others.
    pub async fn view(&self) -> ClusterView {
        let info = (self.info)().await;
        let now = Instant::now();
        let m = lock(&self.members);
        ClusterView {
            me: MemberView {
                node: self.config.node.clone(),
                http: self.config.http.clone(),
                relay: self.relay_addr.clone(),
                app_version: env!("CARGO_PKG_VERSION").into(),
                protocol: PROTOCOL_VERSION,
                status: Status::Up,
                started_ms: self.started_ms,
                heartbeat_age_ms: 0,
                rtt_ms: None,
                info,
            },
            members: m.view(now),
            events: m.events(),
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            suspect_after_ms: self.config.timing.suspect_after.as_millis() as u64,
            down_after_ms: self.config.timing.down_after.as_millis() as u64,
        }
    }

    /// Leaves: stops beating and dialing, closes every peer session.
    pub fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
        self.member.stop(Some("shutdown".into()));
        self.server.stop(Some("shutdown".into()));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Sends this node's beat to every other member actor, then ages the view.
async fn beat_loop(
    config: ClusterConfig,
    relay: String,
    started_ms: u64,
    members: Arc<Mutex<Members>>,
    info: InfoFn,
) {
    let mut tick = tokio::time::interval(config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tick.tick().await;
        seq += 1;
        let info = info().await;
        let now = Instant::now();
        let beat = Beat {
            version: PROTOCOL_VERSION,
            node: config.node.clone(),
            http: config.http.clone(),
            relay: relay.clone(),
            app_version: env!("CARGO_PKG_VERSION").into(),
            started_ms,
            seq,
            sent_ms: now_ms(),
            info,
            echoes: lock(&members).echoes(now),
        };
        for cell in ractor::pg::get_scoped_members(&SCOPE.into(), &GROUP.into()) {
            if cell.get_id().is_local() {
                continue;
            }
            let peer: ActorRef<ClusterMsg> = cell.into();
            if let Err(e) = peer.cast(ClusterMsg::Beat(Box::new(beat.clone()))) {
                tracing::debug!(error = %e, "heartbeat not sent");
            }
        }
        for e in lock(&members).tick(Instant::now(), now_ms()) {
            log_event(&e);
        }
    }
}

/// Dials every seed that is not a live member, with a per-seed backoff
/// (1 s doubling to 10 s) while it fails.
async fn dial_loop(
    config: ClusterConfig,
    server: ActorRef<NodeServerMessage>,
    members: Arc<Mutex<Members>>,
) {
    let own = [
        config.listen.to_string(),
        format!("{}:{}", config.advertise_host, config.listen.port()),
    ];
    let mut backoff: std::collections::HashMap<String, (Instant, Duration)> = Default::default();
    loop {
        let live: Vec<String> = lock(&members)
            .view(Instant::now())
            .into_iter()
            .filter(|m| m.status == Status::Up)
            .map(|m| m.node)
            .collect();
        let connected = peer_addrs(&server).await;
        for seed in &config.seeds {
            if own.contains(seed) || connected.iter().any(|a| a == seed) {
                continue;
            }
            if let Some((at, _)) = backoff.get(seed)
                && Instant::now() < *at
            {
                continue;
            }
            let dialed = match &config.tls {
                Some(t) => {
                    ractor_cluster::node::client::connect_enc(
                        &server,
                        seed.as_str(),
                        t.connector.clone(),
                        t.name.clone(),
                    )
                    .await
                }
                None => ractor_cluster::node::client::connect(&server, seed.as_str()).await,
            };
            match dialed {
                Ok(()) => {
                    tracing::info!(%seed, live = ?live, "dialed cluster seed");
                    backoff.remove(seed);
                }
                Err(e) => {
                    let wait = backoff.get(seed).map_or(Duration::from_secs(1), |(_, w)| {
                        (*w * 2).min(Duration::from_secs(10))
                    });
                    tracing::debug!(%seed, error = %e, retry_in_ms = wait.as_millis() as u64, "cluster seed unreachable");
                    backoff.insert(seed.clone(), (Instant::now() + wait, wait));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The addresses of the peers with an open session (as dialed or accepted).
async fn peer_addrs(server: &ActorRef<NodeServerMessage>) -> Vec<String> {
    match ractor::call_t!(server, NodeServerMessage::GetSessions, 1_000) {
        Ok(sessions) => sessions.values().map(|s| s.peer_addr.clone()).collect(),
        Err(_) => Vec::new(),
    }
}
