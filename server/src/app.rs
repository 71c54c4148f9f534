//! `App`, the state shared by every request and connection of a node: the
//! directory of actors, auth, the services (accounts, permissions, media,
//! programs),
//! the HTTP state and the open connections. Built by `crate::server`, used
//! by the gateway and every route module.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chalktalk_actors::{Directory, Outbound, SessionId};

use chalktalk_services::accounts::{Accounts, SidIndex};
use chalktalk_services::auth::Auth;
use chalktalk_services::media::MediaService;
use chalktalk_services::permissions::Permissions;

/// State shared by every request: a handle, so a clone (one per request and
/// per connection) is one reference count, not a copy of the keys, maps and
/// services (~1 KiB inline plus ~900 bytes of heap per clone before).
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl App {
    pub fn new(state: AppState) -> App {
        App(Arc::new(state))
    }

    /// A reference that does not keep the node alive (for tasks the node
    /// owns, such as the cluster's heartbeat).
    pub fn downgrade(&self) -> std::sync::Weak<AppState> {
        Arc::downgrade(&self.0)
    }
}

impl std::ops::Deref for App {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// What an [`App`] refers to.
pub struct AppState {
    pub directory: Arc<Directory>,
    pub auth: Auth,
    pub heartbeat: Duration,
    pub next_session: Arc<AtomicU64>,
    pub connections: Arc<Mutex<HashMap<SessionId, Outbound>>>,
    pub draining: Arc<AtomicBool>,
    /// Rate limits of the HTTP routes (`crate::ratelimit`).
    pub ratelimit: chalktalk_adapters::ratelimit::RateLimits,
    /// The media pipeline (absent on nodes started without a media store).
    pub media: Option<Arc<MediaService>>,
    /// Upload and media routes.
    pub http: Option<crate::http::HttpState>,
    /// Accounts and sessions (absent on nodes without a key-value store).
    pub accounts: Option<Arc<Accounts>>,
    /// Open WebSocket connections by sign-in session (closing revoked ones).
    pub sids: SidIndex,
    /// Training programs, entitlements, Stripe (absent on stores without
    /// the program port: ScyllaDB).
    pub programs: Option<Arc<chalktalk_services::programs::ProgramService>>,
    /// The permission matrix and its facts (relationships, grants, profiles).
    pub perms: Arc<Permissions>,
    /// This node's cluster membership, once started (`cluster_listen`).
    pub cluster: std::sync::OnceLock<Arc<chalktalk_cluster::Cluster>>,
    /// The built web app served at `/` (`crate::webapp`), if found.
    pub web_dir: Option<std::path::PathBuf>,
}

impl axum::extract::FromRef<App> for Auth {
    fn from_ref(app: &App) -> Auth {
        app.auth.clone()
    }
}
