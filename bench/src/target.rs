//! The server a benchmark talks to: a child `chalktalk serve` on a free
//! loopback port with a scratch data dir (removed afterwards), or a running
//! server named by URL. Also reads the server's resident memory.

use std::process::Stdio;
use std::time::Duration;

use chalktalk_protocol::Role;
use chalktalk_protocol::client::{Client, ClientOptions};

use super::{BenchError, TargetArgs};
use chalktalk_services::auth::Auth;

pub use chalktalk_actors::metrics::own_cpu_seconds;

/// A scratch directory under the system temp dir.
pub fn scratch_dir(kind: &str) -> std::path::PathBuf {
    let n = chalktalk_actors::new_id(kind);
    std::env::temp_dir().join(format!("chalktalk-bench-{n}"))
}

/// A server under test (with `--nodes`, the first node of a cluster; the
/// others in `peers`).
pub struct Target {
    pub url: String,
    pub pid: Option<u32>,
    auth: Auth,
    child: Option<tokio::process::Child>,
    dir: Option<std::path::PathBuf>,
    peers: Vec<Target>,
}

/// A free loopback port.
fn free_port() -> Result<u16, BenchError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `chalktalk serve` on `port` with `env`, and waits until it
/// listens.
async fn spawn_node(
    port: u16,
    secret: &str,
    store: Option<&str>,
    env: &[(String, String)],
    auth: &Auth,
) -> Result<Target, BenchError> {
    let dir = scratch_dir("srv");
    let mut cmd = tokio::process::Command::new(chalktalk_services::binaries::sibling(
        chalktalk_services::binaries::SERVER,
    ));
    if let Some(store) = store {
        cmd.env("CHALKTALK_STORE", store);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .arg("serve")
        .env("CHALKTALK_LISTEN", format!("127.0.0.1:{port}"))
        .env("CHALKTALK_DATA_DIR", &dir)
        .env("CHALKTALK_JWT_SECRET", secret)
        .env("CHALKTALK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let t = Target {
        url: format!("ws://127.0.0.1:{port}/ws"),
        pid: child.id(),
        auth: auth.clone(),
        child: Some(child),
        dir: Some(dir),
        peers: Vec::new(),
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(t);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the server did not start listening within 10 s".into())
}

/// How many peers `url`'s node sees up (`GET /api/v1/ops/cluster`).
async fn peers_up(url: &str, token: &str) -> Option<usize> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url.strip_prefix("ws://")?.split('/').next()?.to_string();
    let mut tcp = tokio::net::TcpStream::connect(&host).await.ok()?;
    let req = format!(
        "GET /api/v1/ops/cluster HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.ok()?;
    let mut body = Vec::new();
    tcp.read_to_end(&mut body).await.ok()?;
    let text = String::from_utf8_lossy(&body);
    let json = text.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(
        v["members"]
            .as_array()?
            .iter()
            .filter(|m| m["status"] == "up")
            .count(),
    )
}

impl Target {
    /// Starts a server, or describes the one given by `--target`.
    pub async fn open(args: &TargetArgs) -> Result<Target, BenchError> {
        if let Some(url) = &args.target {
            let secret = args
                .jwt_secret
                .clone()
                .ok_or("--target needs --jwt-secret (or CHALKTALK_JWT_SECRET)")?;
            return Ok(Target {
                url: url.clone(),
                pid: args.server_pid,
                auth: Auth::new(secret.as_bytes()),
                child: None,
                dir: None,
                peers: Vec::new(),
            });
        }
        let secret = chalktalk_actors::new_id("secret").repeat(2);
        let auth = Auth::new(secret.as_bytes());
        let store = args.store.as_deref();
        if args.nodes <= 1 {
            return spawn_node(free_port()?, &secret, store, &[], &auth).await;
        }
        if store.is_none_or(|s| s == "embedded") {
            return Err("--nodes needs a shared --store (postgres://...)".into());
        }
        let cluster_ports = (0..args.nodes)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let mut nodes = Vec::new();
        for (i, port) in cluster_ports.iter().enumerate() {
            let seeds: Vec<String> = cluster_ports
                .iter()
                .filter(|p| *p != port)
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            let env = [
                ("CHALKTALK_NODE_NAME", format!("n{}", i + 1)),
                ("CHALKTALK_CLUSTER_LISTEN", format!("127.0.0.1:{port}")),
                ("CHALKTALK_CLUSTER_SEEDS", seeds.join(",")),
                (
                    "CHALKTALK_CLUSTER_COOKIE",
                    "bench-cluster-cookie-0123".into(),
                ),
            ]
            .map(|(k, v)| (k.to_string(), v));
            nodes.push(spawn_node(free_port()?, &secret, store, &env, &auth).await?);
        }
        // Wait until every node sees every other one up.
        let token = auth.mint("bench-admin", Role::Admin, 3600)?;
        for _ in 0..300 {
            let mut all = true;
            for n in &nodes {
                if peers_up(&n.url, &token).await != Some(args.nodes - 1) {
                    all = false;
                }
            }
            if all {
                let mut nodes = nodes.into_iter();
                let mut first = nodes.next().ok_or("no node")?;
                first.peers = nodes.collect();
                return Ok(first);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the cluster did not form within 30 s".into())
    }

    /// Node `i` of the cluster, round-robin (the first node without
    /// `--nodes`).
    pub fn node(&self, i: usize) -> &Target {
        match i % (self.peers.len() + 1) {
            0 => self,
            k => &self.peers[k - 1],
        }
    }

    /// How many nodes serve.
    pub fn nodes(&self) -> usize {
        self.peers.len() + 1
    }

    /// A handle that can connect clients but does not own the server.
    pub fn clone_handle(&self) -> Target {
        Target {
            url: self.url.clone(),
            pid: self.pid,
            auth: self.auth.clone(),
            child: None,
            dir: None,
            peers: self.peers.iter().map(Target::clone_handle).collect(),
        }
    }

    pub fn token(&self, user: &str, role: Role) -> Result<String, BenchError> {
        Ok(self.auth.mint(user, role, 3600)?)
    }

    pub async fn connect(
        &self,
        user: &str,
        role: Role,
        device: &str,
    ) -> Result<Client, BenchError> {
        let mut opts = ClientOptions::new(self.token(user, role)?, device);
        opts.timeout = Duration::from_secs(30);
        Ok(Client::connect(&self.url, opts).await?)
    }

    /// Resident memory of the server processes (every node), if known.
    pub fn rss_bytes(&self) -> Option<u64> {
        let mut sum = chalktalk_actors::metrics::resident_bytes(Some(self.pid?))?;
        for p in &self.peers {
            sum += p.rss_bytes()?;
        }
        Some(sum)
    }

    /// CPU seconds (user + system) the server processes (every node) have
    /// used, if known.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let mut sum = self.own_cpu_seconds()?;
        for p in &self.peers {
            sum += p.cpu_seconds()?;
        }
        Some(sum)
    }

    fn own_cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // Fields after the command name (which may contain spaces).
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Some((utime + stime) / tick)
    }

    /// Stops a server this bench started and removes its data.
    pub async fn close(mut self) {
        for p in std::mem::take(&mut self.peers) {
            Box::pin(p.close()).await;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
