//! The one server type of the end-to-end tests: [`TestServer`], a real
//! chalktalk node on a loopback port, built with [`TestServer::builder`].
//!
//! - In this process (the default): the whole app over an embedded store in
//!   its data dir, with config overrides ([`Builder::config`],
//!   [`Builder::redis`], [`Builder::rate_limits`]), another node's accounts
//!   ([`Builder::accounts_of`]) or a store of the test's own
//!   ([`Builder::store`]); the app is reachable through
//!   [`TestServer::app`]; or on a PostgreSQL database
//!   ([`Builder::postgres`], see `postgres.rs`).
//! - As a child process ([`Builder::child`]): `chalktalk serve` with its
//!   environment ([`Builder::env`], [`Builder::env_remove`]) and, if asked,
//!   its logs ([`Builder::capture_stderr`]); [`TestServer::kill9`] ends it
//!   with SIGKILL (no shutdown code runs).
//! - Routes only ([`Builder::routes`]): a given router served by
//!   `axum::serve` (the upload tests' recording handler).
//!
//! The data dir (a temporary directory, or the test's own with
//! [`Builder::in_dir`]) is kept across [`TestServer::restart`]s. Clients
//! connect directly ([`TestServer::connect`]) or through a loopback proxy
//! that can cut or stall their links ([`TestServer::proxy`]). The server
//! dereferences to its REST API ([`Api`]: requests and account helpers).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chalktalk::app::App;
use chalktalk::config::{Config, StoreConfig};
use chalktalk::gateway::Running;
use chalktalk_actors::store::Store;
use chalktalk_adapters::EmbeddedStore;
use chalktalk_adapters::ratelimit::RateLimitConfig;
use chalktalk_protocol::Role;
use chalktalk_protocol::client::Client;
use chalktalk_services::auth::Auth;
use tokio::task::JoinHandle;

use super::api::Api;
use super::proxy::Proxy;
use super::{SECRET, connect, worker_exe};

/// Where the node's stores come from (in-process nodes).
#[derive(Clone)]
enum Stores {
    /// One embedded store in the data dir for rooms, media and accounts
    /// (what `chalktalk serve` does).
    Embedded,
    /// Rooms in its own embedded store, no media pipeline, accounts and
    /// sessions in another node's store (one accounts database, several
    /// nodes).
    AccountsOf(Arc<EmbeddedStore>),
    /// The test's own rooms store, no media pipeline, no accounts.
    Custom(Arc<dyn Store>),
    /// The stores the configuration names (`chalktalk::server::start`):
    /// a PostgreSQL database for rooms, media and accounts.
    Configured,
}

/// How the node runs.
enum Mode {
    InProcess(Stores),
    Child,
    Routes(axum::Router),
}

/// The data dir: a temporary one owned by the server, or the test's.
enum Dir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl Dir {
    fn path(&self) -> &Path {
        match self {
            Dir::Temp(t) => t.path(),
            Dir::Given(p) => p,
        }
    }
}

/// What runs now.
enum Process {
    None,
    Child(Child),
    Routes(JoinHandle<()>),
}

/// A change to the configuration of an in-process node.
type Tweak = Box<dyn FnOnce(&mut Config)>;

/// Options of a [`TestServer`]; [`Builder::start`] starts it.
pub struct Builder {
    mode: Mode,
    dir: Option<Dir>,
    tweaks: Vec<Tweak>,
    env: Vec<(String, Option<String>)>,
    capture_stderr: bool,
    netns: Option<(String, String)>,
}

impl Builder {
    /// Runs `chalktalk serve` as a child process (configured by
    /// [`Builder::env`]; config tweaks do not reach it).
    pub fn child(mut self) -> Builder {
        self.mode = Mode::Child;
        self
    }

    /// Serves `router` (in this process) instead of a whole node.
    pub fn routes(mut self, router: axum::Router) -> Builder {
        self.mode = Mode::Routes(router);
        self
    }

    /// Uses `dir` as the data dir (the test keeps it) instead of a
    /// temporary one.
    pub fn in_dir(mut self, dir: &Path) -> Builder {
        self.dir = Some(Dir::Given(dir.to_path_buf()));
        self
    }

    /// Uses (and owns) the temporary directory `dir` as the data dir.
    pub fn in_temp_dir(mut self, dir: tempfile::TempDir) -> Builder {
        self.dir = Some(Dir::Temp(dir));
        self
    }

    /// Changes the node's configuration (in-process nodes).
    pub fn config(mut self, tweak: impl FnOnce(&mut Config) + 'static) -> Builder {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Shares rate limits and revocations through the Redis at `url`.
    pub fn redis(self, url: Option<&str>) -> Builder {
        let url = url.map(str::to_string);
        self.config(move |c| c.redis_url = url)
    }

    /// Rate limits as in `CHALKTALK_RATE_LIMITS` and trusted proxies as in
    /// `CHALKTALK_TRUSTED_PROXIES`.
    pub fn rate_limits(self, limits: &str, proxies: &str) -> Builder {
        let rl = RateLimitConfig::from_settings(limits, proxies).expect("rate limit settings");
        self.config(move |c| c.ratelimit = rl)
    }

    /// Accounts and sessions in `other`'s store (its own rooms, no media).
    pub fn accounts_of(mut self, other: &TestServer) -> Builder {
        let store = other.store.clone().expect("an in-process node");
        self.mode = Mode::InProcess(Stores::AccountsOf(store));
        self
    }

    /// Rooms in `store` (no media pipeline, no accounts).
    pub fn store(mut self, store: Arc<dyn Store>) -> Builder {
        self.mode = Mode::InProcess(Stores::Custom(store));
        self
    }

    /// Rooms, media and accounts in the PostgreSQL database at `url`, as
    /// `CHALKTALK_STORE=postgres://...` does (in-process nodes; a child
    /// takes `.env("CHALKTALK_STORE", url)`).
    pub fn postgres(mut self, url: &str) -> Builder {
        self.mode = Mode::InProcess(Stores::Configured);
        let url = url.to_string();
        self.config(move |c| c.store = StoreConfig::Postgres { url })
    }

    /// An environment variable of the child process.
    pub fn env(mut self, key: &str, value: &str) -> Builder {
        self.env.push((key.to_string(), Some(value.to_string())));
        self
    }

    /// Removes `key` from the child's environment (even one the harness
    /// sets, such as `CHALKTALK_JWT_SECRET`).
    pub fn env_remove(mut self, key: &str) -> Builder {
        self.env.push((key.to_string(), None));
        self
    }

    /// Pipes the child's stderr (its logs) for [`TestServer::take_stderr`]
    /// instead of passing it through.
    pub fn capture_stderr(mut self) -> Builder {
        self.capture_stderr = true;
        self
    }

    /// Runs the child in network namespace `ns` (see `common::netns`),
    /// listening on `addr` there.
    pub fn netns(mut self, ns: &str, addr: &str) -> Builder {
        self.netns = Some((ns.to_string(), addr.to_string()));
        self
    }

    pub async fn start(self) -> TestServer {
        let dir = match self.dir {
            Some(d) => d,
            None => Dir::Temp(tempfile::tempdir().expect("tempdir")),
        };
        let mut config = Config::for_tests(dir.path());
        if let Mode::InProcess(_) = self.mode {
            // Media jobs run in real worker processes.
            config.media.worker_exe = worker_exe();
        }
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        let placeholder = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut s = TestServer {
            running: None,
            url: String::new(),
            auth: Auth::new(SECRET.as_bytes()),
            api: Api(placeholder),
            store: None,
            config,
            mode: self.mode,
            env: self.env,
            capture_stderr: self.capture_stderr,
            netns: self.netns,
            process: Process::None,
            dir,
        };
        s.launch(1).await;
        s
    }
}

/// A running chalktalk node (see the module documentation).
pub struct TestServer {
    /// The in-process node (`None` for a child, for routes only, or while
    /// stopped).
    pub running: Option<Running>,
    /// Its WebSocket URL.
    pub url: String,
    /// Mints tokens the node accepts.
    pub auth: Auth,
    api: Api,
    /// The embedded store of an in-process node.
    pub store: Option<Arc<EmbeddedStore>>,
    config: Config,
    mode: Mode,
    env: Vec<(String, Option<String>)>,
    capture_stderr: bool,
    netns: Option<(String, String)>,
    process: Process,
    dir: Dir,
}

impl TestServer {
    /// The options of a new node.
    pub fn builder() -> Builder {
        Builder {
            mode: Mode::InProcess(Stores::Embedded),
            dir: None,
            tweaks: Vec::new(),
            env: Vec::new(),
            capture_stderr: false,
            netns: None,
        }
    }

    /// A node in this process with the test configuration.
    pub async fn start() -> TestServer {
        TestServer::builder().start().await
    }

    /// A node in this process with `tweak`ed configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config) + 'static) -> TestServer {
        TestServer::builder().config(tweak).start().await
    }

    /// Starts whatever the mode says on the data dir, trying an in-process
    /// node up to `attempts` times (after a restart, the old store may take
    /// a moment to release the database file).
    async fn launch(&mut self, attempts: usize) {
        let addr = match &self.mode {
            Mode::InProcess(stores) => {
                let stores = stores.clone();
                let mut last = None;
                let mut running = None;
                for attempt in 0..attempts {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                    match self.start_in_process(&stores).await {
                        Ok(r) => {
                            running = Some(r);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let running = running.unwrap_or_else(|| panic!("node did not start: {last:?}"));
                let addr = running.addr;
                self.running = Some(running);
                addr
            }
            Mode::Child => self.spawn_child().await,
            Mode::Routes(router) => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().expect("addr");
                let app = router.clone();
                let task = tokio::spawn(async move {
                    axum::serve(listener, app).await.expect("serve");
                });
                self.process = Process::Routes(task);
                addr
            }
        };
        self.api = Api(addr);
        self.url = format!("ws://{addr}/ws");
    }

    async fn start_in_process(&mut self, stores: &Stores) -> Result<Running, String> {
        let c = &self.config;
        let r = match stores {
            Stores::Custom(store) => chalktalk::server::start_with_store(c, store.clone()).await,
            Stores::Configured => chalktalk::server::start(c).await,
            Stores::Embedded | Stores::AccountsOf(_) => {
                let store = EmbeddedStore::open(self.dir.path()).map_err(|e| e.to_string())?;
                let (media, kv): (Option<Arc<EmbeddedStore>>, Arc<EmbeddedStore>) = match stores {
                    Stores::AccountsOf(other) => (None, other.clone()),
                    _ => (Some(store.clone()), store.clone()),
                };
                self.store = Some(store.clone());
                let programs = media.is_some().then(|| store.clone() as _);
                chalktalk::server::start_with_programs(
                    c,
                    store,
                    (media.map(|m| m as _), Some(kv as _)),
                    programs,
                )
                .await
            }
        };
        r.map_err(|e| e.to_string())
    }

    async fn spawn_child(&mut self) -> SocketAddr {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let host: std::net::IpAddr = match &self.netns {
            Some((_, addr)) => addr.parse().expect("a namespace address"),
            None => [127, 0, 0, 1].into(),
        };
        let mut cmd = match &self.netns {
            Some((ns, _)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns])
                    .arg(env!("CARGO_BIN_EXE_chalktalk"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_chalktalk")),
        };
        cmd.arg("serve")
            .env("CHALKTALK_LISTEN", format!("{host}:{port}"))
            .env("CHALKTALK_DATA_DIR", self.dir.path())
            .env("CHALKTALK_JWT_SECRET", SECRET)
            .env("CHALKTALK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if self.capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd.spawn().expect("spawn chalktalk serve");
        // Up to 20 s: a node on PostgreSQL migrates a fresh database first.
        for _ in 0..800 {
            if tokio::net::TcpStream::connect((host, port)).await.is_ok() {
                self.process = Process::Child(child);
                return SocketAddr::from((host, port));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("child server did not listen");
    }

    /// The node's address.
    pub fn addr(&self) -> SocketAddr {
        self.api.0
    }

    /// The node's REST API (also reached through `Deref`).
    pub fn api(&self) -> Api {
        self.api
    }

    /// The app of an in-process node.
    pub fn app(&self) -> &App {
        &self.running.as_ref().expect("an in-process node").app
    }

    /// The data dir (kept across restarts).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of a child node.
    pub fn pid(&self) -> u32 {
        match &self.process {
            Process::Child(c) => c.id(),
            _ => panic!("not a child process"),
        }
    }

    /// The stderr of a child started with [`Builder::capture_stderr`].
    pub fn take_stderr(&mut self) -> ChildStderr {
        match &mut self.process {
            Process::Child(c) => c.stderr.take().expect("stderr captured, once"),
            _ => panic!("not a child process"),
        }
    }

    pub fn token(&self, user: &str, role: Role) -> String {
        self.auth.mint(user, role, 3600).expect("mint")
    }

    pub async fn connect(&self, user: &str, role: Role, device: &str) -> Client {
        connect(&self.url, self.token(user, role), device).await
    }

    /// A loopback proxy in front of the node: clients that connect to
    /// [`Proxy::url`] can have their links cut or stalled.
    pub async fn proxy(&self) -> Proxy {
        Proxy::start(self.addr()).await
    }

    /// Stops the node: a graceful shutdown in process, SIGKILL for a child,
    /// the serving task aborted for routes only.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.store = None;
        self.end_process();
    }

    /// SIGKILL of a child node: no shutdown code runs.
    pub fn kill9(&mut self) {
        match std::mem::replace(&mut self.process, Process::None) {
            Process::Child(mut c) => {
                c.kill().expect("kill -9");
                let _ = c.wait();
            }
            _ => panic!("kill9 needs a child process"),
        }
    }

    /// SIGTERM to a child node, then waits (up to 15 s) for it to exit:
    /// its shutdown code runs (connections closed, leases handed over).
    pub fn terminate(&mut self) {
        let Process::Child(c) = &mut self.process else {
            panic!("terminate needs a child process");
        };
        // SAFETY: kill(2) with the pid of our own child.
        let r = unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        assert_eq!(r, 0, "SIGTERM");
        let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if c.try_wait().expect("wait").is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < end,
                "no exit 15 s after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.process = Process::None;
    }

    /// A graceful restart of a child node: SIGTERM, then a new process on
    /// the same data dir and configuration (on a new port).
    pub async fn restart_gracefully(&mut self) {
        self.terminate();
        self.launch(200).await;
    }

    /// Stops the node and starts a new one on the same data dir (with the
    /// same configuration, on a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch(200).await;
    }

    fn end_process(&mut self) {
        match std::mem::replace(&mut self.process, Process::None) {
            Process::Child(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Process::Routes(task) => task.abort(),
            Process::None => {}
        }
    }
}

impl std::ops::Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.end_process();
    }
}
