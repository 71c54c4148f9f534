//! A real `redis-server` (Debian package, installed by
//! `scripts/install-deps.sh --test`) on a free 127.0.0.1 port, without
//! persistence, killed when dropped. `stop()` kills it early (tests of
//! Redis going away), `restart()` brings it back on the same port, and
//! `pause()`/`resume()` freeze and thaw it (a Redis that hangs).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .expect("free port")
                .local_addr()
                .expect("addr")
                .port();
            let mut r = RedisServer { child: None, port };
            if r.spawn().await {
                return r;
            }
        }
        panic!("redis-server did not start (run scripts/install-deps.sh --test)");
    }

    async fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let Ok(mut child) = child else {
            panic!("cannot run redis-server (run scripts/install-deps.sh --test)");
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                self.child = Some(child);
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing
    /// answers (a hung Redis).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws a [`RedisServer::pause`]d server (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        let child = self.child.as_ref().expect("redis-server running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: signals our own child process, which has not been reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    /// Starts it again on the same port (empty: no persistence).
    pub async fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn().await,
            "redis-server did not restart on port {}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
