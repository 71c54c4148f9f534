//! Assembles a node from its configuration: the embedded store, the auth
//! keys, the actor directory and the HTTP/WebSocket gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use chalktalk_actors::Directory;
use chalktalk_actors::store::Store;

use crate::auth::{Auth, SecretError};
use crate::config::Config;
use crate::gateway::{App, Running};
use crate::store::EmbeddedStore;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        dir: String,
        source: chalktalk_actors::store::StoreError,
    },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot start the actor system: {0}")]
    Actors(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Starts a node; the returned handle knows its bound address.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let store = EmbeddedStore::open(&config.data_dir).map_err(|source| StartError::Store {
        dir: config.data_dir.display().to_string(),
        source,
    })?;
    start_with_store(config, store).await
}

/// Starts a node on a given store adapter.
pub async fn start_with_store(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<Running, StartError> {
    let auth = Auth::from_config(config.jwt_secret.as_deref(), &config.data_dir)?;
    let directory = Directory::start(store, config.core.clone())
        .await
        .map_err(|e| StartError::Actors(e.to_string()))?;
    let app = App {
        directory,
        auth,
        heartbeat: config.heartbeat,
        next_session: Arc::new(AtomicU64::new(1)),
        connections: Arc::default(),
        draining: Arc::new(AtomicBool::new(false)),
    };
    let running =
        Running::start(config.listen, app)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen,
                source,
            })?;
    tracing::info!(addr = %running.addr, data_dir = %config.data_dir.display(), "chalktalk listening");
    Ok(running)
}
