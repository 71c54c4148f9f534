//! A throwaway PostgreSQL server for tests: Debian's `initdb` and `pg_ctl`
//! (found under `/usr/lib/postgresql/<version>/bin`, else on `PATH`) run a
//! fresh cluster in a temp dir, listening only on 127.0.0.1 on a free port,
//! its socket dir inside the temp dir. PostgreSQL refuses to run as root, so
//! when the tests run as root the server runs as `nobody` (through
//! `runuser`) and the temp dir is handed to that user. Dropping the
//! [`TestServer`] stops the server (`pg_ctl stop -m immediate`) and removes
//! the dir.
//!
//! Set `CHALKTALK_TEST_POSTGRES=postgres://...` to use a server of your own
//! instead (every test then works in a fresh database of it).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// Where Debian installs the server binaries.
const DEBIAN_BIN: &str = "/usr/lib/postgresql";
/// The user the server runs as when the tests run as root.
const SERVER_USER: &str = "nobody";

/// A running test server (or an outside one from `CHALKTALK_TEST_POSTGRES`).
pub struct TestServer {
    dir: Option<PathBuf>,
    bin: PathBuf,
    port: u16,
    url: String,
    as_root: bool,
    running: bool,
    /// `listen_addresses` (127.0.0.1, and an address of a test network).
    listen: String,
}

impl TestServer {
    /// Starts a fresh server; panics with the reason when it cannot.
    pub fn start() -> TestServer {
        Self::start_on(None)
    }

    /// Starts a fresh server that also listens on `also` = (address,
    /// network in CIDR form) and lets clients of that network in: for
    /// nodes in network namespaces a test made (their 127.0.0.1 is their
    /// own).
    pub fn start_on(also: Option<(&str, &str)>) -> TestServer {
        if let Ok(url) = std::env::var("CHALKTALK_TEST_POSTGRES") {
            return TestServer {
                dir: None,
                bin: PathBuf::new(),
                port: 0,
                url,
                as_root: false,
                running: false,
                listen: String::new(),
            };
        }
        let bin = find_bin().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries (initdb, pg_ctl) not found under {DEBIAN_BIN}/*/bin \
                 or on PATH: run scripts/install-deps.sh --test (Debian package postgresql)"
            )
        });
        let as_root = is_root();
        let n = getrandom::u64().unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("chalktalk-pg-{n:016x}"));
        std::fs::create_dir_all(dir.join("sock")).expect("create the server's temp dir");
        if as_root {
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{SERVER_USER}:"))
                .arg(&dir));
        }
        let mut server = TestServer {
            dir: Some(dir.clone()),
            bin,
            port: 0,
            url: String::new(),
            as_root,
            running: false,
            listen: match also {
                Some((addr, _)) => format!("127.0.0.1,{addr}"),
                None => "127.0.0.1".into(),
            },
        };
        let data = dir.join("data");
        run(server.tool("initdb").arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]));
        if let Some((_, net)) = also {
            use std::io::Write;
            let hba = data.join("pg_hba.conf");
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&hba)
                .expect("open pg_hba.conf");
            writeln!(f, "host all all {net} trust").expect("write pg_hba.conf");
        }
        // A free port can be taken between the probe and the start: retry.
        for _ in 0..5 {
            let port = free_port();
            let opts = format!(
                "-c listen_addresses={} -p {port} -k {} -c max_connections=100 \
                 -c shared_buffers=32MB",
                server.listen,
                dir.join("sock").display()
            );
            let ok = server
                .tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-w", "-t", "60", "-o", &opts, "start"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                server.port = port;
                server.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                server.running = true;
                return server;
            }
        }
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        panic!("pg_ctl start failed; server log:\n{log}");
    }

    /// The URL of the `postgres` database (superuser, no password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates a fresh database and returns its URL.
    pub async fn fresh_db(&self) -> String {
        let name = format!("t{:016x}", getrandom::u64().unwrap_or(0));
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a test database");
        match self.url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("test server URL without a database: {}", self.url),
        }
    }

    /// Stops the server (fast), keeping its data; [`TestServer::resume`]
    /// starts it again on the same port. No-op for an outside server.
    pub fn stop(&mut self) {
        if self.running {
            self.pg_ctl(&["-m", "fast", "-w", "stop"]);
            self.running = false;
        }
    }

    pub fn resume(&mut self) {
        if !self.running && self.dir.is_some() {
            let Some(dir) = self.dir.clone() else { return };
            let opts = format!(
                "-c listen_addresses={} -p {} -k {}",
                self.listen,
                self.port,
                dir.join("sock").display()
            );
            let log = dir.join("log");
            let log = log.to_string_lossy();
            self.pg_ctl(&["-l", &log, "-w", "-t", "60", "-o", &opts, "start"]);
            self.running = true;
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let Some(dir) = &self.dir else { return };
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(dir.join("data"))
            .args(args));
    }

    /// A server tool, run as the server's user when we are root.
    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", SERVER_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.running
            && let Some(dir) = &self.dir
        {
            let _ = self
                .tool("pg_ctl")
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `pg_ctl`, else the
/// directory of `pg_ctl` on `PATH`.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_BIN)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("pg_ctl").is_file() && d.join("initdb").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
