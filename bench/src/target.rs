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

/// A server under test.
pub struct Target {
    pub url: String,
    pub pid: Option<u32>,
    auth: Auth,
    child: Option<tokio::process::Child>,
    dir: Option<std::path::PathBuf>,
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
            });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = scratch_dir("srv");
        let secret = chalktalk_actors::new_id("secret").repeat(2);
        let mut cmd = tokio::process::Command::new(chalktalk_services::binaries::sibling(
            chalktalk_services::binaries::SERVER,
        ));
        if let Some(store) = &args.store {
            cmd.env("CHALKTALK_STORE", store);
        }
        let child = cmd
            .arg("serve")
            .env("CHALKTALK_LISTEN", format!("127.0.0.1:{port}"))
            .env("CHALKTALK_DATA_DIR", &dir)
            .env("CHALKTALK_JWT_SECRET", &secret)
            .env("CHALKTALK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let t = Target {
            url: format!("ws://127.0.0.1:{port}/ws"),
            pid: child.id(),
            auth: Auth::new(secret.as_bytes()),
            child: Some(child),
            dir: Some(dir),
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

    /// A handle that can connect clients but does not own the server.
    pub fn clone_handle(&self) -> Target {
        Target {
            url: self.url.clone(),
            pid: self.pid,
            auth: self.auth.clone(),
            child: None,
            dir: None,
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

    /// Resident memory of the server process, if known.
    pub fn rss_bytes(&self) -> Option<u64> {
        chalktalk_actors::metrics::resident_bytes(Some(self.pid?))
    }

    /// CPU seconds (user + system) the server process has used, if known.
    pub fn cpu_seconds(&self) -> Option<f64> {
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
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
