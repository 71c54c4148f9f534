//! Assembles a node from its configuration: the store (embedded,
//! PostgreSQL or ScyllaDB, `CHALKTALK_STORE`), the auth
//! keys, the actor directory and the HTTP/WebSocket gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use chalktalk_actors::Directory;
use chalktalk_actors::encoder::MediaStore;
use chalktalk_actors::store::Store;
use chalktalk_adapters::blob::BlobStore;

use chalktalk_services::accounts::{Accounts, SidIndex};
use chalktalk_services::auth::{Auth, SecretError};
use chalktalk_services::media::{MediaService, UrlSigner};
use chalktalk_services::permissions::Permissions;

use crate::app::{App, AppState};
use crate::config::{Config, StoreConfig};
use crate::gateway::Running;
use crate::http::HttpState;
use chalktalk_adapters::EmbeddedStore;
use chalktalk_adapters::blob::{LocalBlobStore, S3BlobStore};
use chalktalk_adapters::kv::Kv;
use chalktalk_adapters::postgres::{PgOptions, PgStore};
use chalktalk_adapters::programs::ProgramStore;
use chalktalk_adapters::scylla::{ScyllaOptions, ScyllaStore};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        dir: String,
        source: chalktalk_actors::store::StoreError,
    },
    /// The store named by `CHALKTALK_STORE` (`store`) could not be used:
    /// a bad URL, an unreachable server, a schema newer or older than this
    /// binary.
    #[error("cannot use the store of CHALKTALK_STORE (store = {store}): {message}")]
    StoreSetting { store: String, message: String },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot start the actor system: {0}")]
    Actors(String),
    #[error("cannot open the blob store: {0}")]
    Blobs(String),
    #[error("cannot start the media pipeline: {0}")]
    Media(String),
    #[error("cannot start rate limiting: {0}")]
    RateLimit(#[from] chalktalk_adapters::ratelimit::RateLimitError),
    #[error("cannot start accounts: {0}")]
    Accounts(String),
    #[error("cannot set up payments (CHALKTALK_STRIPE_*): {0}")]
    Payments(String),
    #[error("cannot join the cluster (CHALKTALK_CLUSTER_LISTEN): {0}")]
    Cluster(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Starts a node; the returned handle knows its bound address.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    match &config.store {
        StoreConfig::Embedded => {
            let store =
                EmbeddedStore::open(&config.data_dir).map_err(|source| StartError::Store {
                    dir: config.data_dir.display().to_string(),
                    source,
                })?;
            let stores = (Some(store.clone() as _), Some(store.clone() as _));
            start_with_programs(config, store.clone(), stores, Some(store)).await
        }
        StoreConfig::Postgres { url } => {
            let store = open_postgres(url, config.store_migrate).await?;
            let stores = (Some(store.clone() as _), Some(store.clone() as _));
            start_with_programs(config, store.clone(), stores, Some(store)).await
        }
        StoreConfig::Scylla { url } => {
            let store = open_scylla(url, config.store_migrate).await?;
            let stores = (Some(store.clone() as _), Some(store.clone() as _));
            start_with_programs(config, store.clone(), stores, Some(store)).await
        }
    }
}

/// Connects to the ScyllaDB store (applying pending migrations when
/// `migrate`; the keyspace must exist unless the URL says
/// `create_keyspace=N`); every failure names the setting.
pub async fn open_scylla(url: &str, migrate: bool) -> Result<Arc<ScyllaStore>, StartError> {
    let fail = |message: String| StartError::StoreSetting {
        store: crate::config::redact_store_url(url),
        message,
    };
    let mut opts = ScyllaOptions::from_url(url).map_err(|e| fail(e.to_string()))?;
    opts.migrate = migrate;
    ScyllaStore::connect(&opts)
        .await
        .map_err(|e| fail(e.to_string()))
}

/// Connects to the PostgreSQL store (applying pending migrations when
/// `migrate`); every failure names the setting.
pub async fn open_postgres(url: &str, migrate: bool) -> Result<Arc<PgStore>, StartError> {
    let mut opts = PgOptions::new(url);
    opts.migrate = migrate;
    PgStore::connect(&opts)
        .await
        .map_err(|e| StartError::StoreSetting {
            store: crate::config::redact_store_url(url),
            message: e.to_string(),
        })
}

/// Starts a node on a given store adapter, without the media pipeline.
pub async fn start_with_store(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<Running, StartError> {
    start_with_stores(config, store, None, None).await
}

/// The configured blob store: S3 when configured (the bucket is created if
/// missing), else local files.
pub async fn open_blobs(config: &Config) -> Result<Arc<dyn BlobStore>, StartError> {
    Ok(match &config.s3 {
        Some(s3) => {
            let store = S3BlobStore::new(s3);
            store
                .ensure_bucket()
                .await
                .map_err(|e| StartError::Blobs(format!("bucket {}: {e}", s3.bucket)))?;
            Arc::new(store)
        }
        None => Arc::new(
            LocalBlobStore::open(config.data_dir.join("blobs"))
                .map_err(|e| StartError::Blobs(e.to_string()))?,
        ),
    })
}

/// Starts a node; with a media store, also the upload routes and the
/// media pipeline (encoder pool, worker processes); with a key-value store,
/// also accounts and sessions (revocations in Redis when configured).
pub async fn start_with_stores(
    config: &Config,
    store: Arc<dyn Store>,
    media_store: Option<Arc<dyn MediaStore>>,
    kv: Option<Arc<dyn Kv>>,
) -> Result<Running, StartError> {
    start_with_programs(config, store, (media_store, kv), None).await
}

/// The optional ports beside the room store: media records and key-value
/// records.
pub type MoreStores = (Option<Arc<dyn MediaStore>>, Option<Arc<dyn Kv>>);

/// [`start_with_stores`], and with a program store also training programs,
/// entitlements and (when configured) Stripe.
pub async fn start_with_programs(
    config: &Config,
    store: Arc<dyn Store>,
    (media_store, kv): MoreStores,
    program_store: Option<Arc<dyn ProgramStore>>,
) -> Result<Running, StartError> {
    let mut auth = Auth::from_config(config.jwt_secret.as_deref(), &config.data_dir)?;
    // Revocations outlive the access tokens they refuse (plus leeway).
    let revocations_ttl = config.accounts.access_ttl + std::time::Duration::from_secs(60);
    let revocations = chalktalk_adapters::revocations::open(
        config.redis_url.as_deref(),
        kv.clone(),
        revocations_ttl,
    )
    .await
    .map_err(|e| StartError::Accounts(e.to_string()))?;
    if let Some(r) = &revocations {
        auth = auth.with_revocations(r.clone());
    }
    let kv_for_perms = kv.clone();
    let placement = match (&config.cluster, &kv) {
        (Some(c), Some(kv)) => Some(Arc::new(
            chalktalk_actors::lease::Placement::new(
                c.node.clone(),
                Arc::new(chalktalk_adapters::lease::KvLeases::new(kv.clone())),
                c.lease,
            )
            .with_policy(c.placement),
        )),
        (Some(_), None) => {
            return Err(StartError::Cluster(
                "a cluster node needs a store with the key-value port for its leases".into(),
            ));
        }
        (None, _) => None,
    };
    let accounts = match (kv, &revocations) {
        (Some(kv), Some(r)) => Some(Arc::new(
            Accounts::new(kv, auth.clone(), r.clone(), config.accounts.clone())
                .map_err(StartError::Accounts)?,
        )),
        _ => None,
    };
    let programs = program_store
        .map(|ps| crate::programs::service(&config.payments, ps, media_store.clone()))
        .transpose()
        .map_err(StartError::Payments)?
        .map(|p| p.with_rooms(store.clone()));
    let mut perms = Permissions::new(
        kv_for_perms,
        media_store.clone(),
        store.clone(),
        accounts.clone(),
    );
    if let Some(p) = &programs {
        perms = perms.with_programs(p.clone());
    }
    let perms = Arc::new(perms);
    let directory = Directory::start_placed(store, config.core.clone(), placement)
        .await
        .map_err(|e| StartError::Actors(e.to_string()))?;
    let (media, http) = match media_store {
        Some(ms) => {
            let blobs = open_blobs(config).await?;
            let signer = UrlSigner::new(&chalktalk_services::auth::link_key(
                config.jwt_secret.as_deref(),
                &config.data_dir,
            )?);
            let svc = MediaService::start(
                config.media.clone(),
                blobs.clone(),
                ms,
                directory.clone(),
                signer.clone(),
            )
            .await
            .map_err(|e| StartError::Media(e.to_string()))?;
            let state = HttpState::new(
                auth.clone(),
                config.uploads.clone(),
                blobs,
                svc.clone(),
                signer,
            );
            (Some(svc), Some(state))
        }
        None => (None, None),
    };
    let ratelimit = chalktalk_adapters::ratelimit::RateLimits::start(
        &config.ratelimit,
        config.redis_url.as_deref(),
    )
    .await?;
    let app = App::new(AppState {
        ratelimit,
        media,
        http,
        accounts,
        sids: SidIndex::default(),
        perms,
        programs: programs.clone(),
        web_dir: crate::webapp::find_dir(config.web_dir.as_deref()),
        directory,
        auth,
        heartbeat: config.heartbeat,
        next_session: Arc::new(AtomicU64::new(session_base())),
        connections: Arc::default(),
        draining: Arc::new(AtomicBool::new(false)),
        cluster: Default::default(),
    });
    if let Some(r) = &revocations {
        chalktalk_services::accounts::spawn_closer(
            r.as_ref(),
            app.connections.clone(),
            app.sids.clone(),
        );
    }
    let running =
        Running::start(config.listen, app)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen,
                source,
            })?;
    if let Some(p) = &programs {
        crate::programs::spawn_webhook_sweeper(p);
    }
    tracing::info!(addr = %running.addr, data_dir = %config.data_dir.display(), "chalktalk listening");
    if let Some(c) = &config.cluster {
        let mut c = c.clone();
        c.http = running.addr.to_string();
        let cluster = chalktalk_cluster::Cluster::start(
            c,
            node_info(&running.app),
            running.app.directory.relay().cloned(),
        )
        .await
        .map_err(|e| StartError::Cluster(e.to_string()))?;
        if let Some(relay) = running.app.directory.relay() {
            let weak = Arc::downgrade(&cluster);
            relay.set_liveness(Arc::new(move |node: &str| {
                weak.upgrade()
                    .is_some_and(|c| c.up().iter().any(|n| n == node))
            }));
        }
        let _ = running.app.cluster.set(cluster);
    }
    Ok(running)
}

/// The first connection id of this process: a random block of 2^20 ids
/// below 2^52 (exact in JavaScript), so that ids are not reused across a
/// node's restarts. Another node's relay may still name a session of the
/// previous process (a frame or a close in flight); it must reach nobody.
fn session_base() -> u64 {
    let mut r = [0u8; 4];
    let block = match getrandom::fill(&mut r) {
        Ok(()) => u64::from(u32::from_be_bytes(r)),
        Err(_) => chalktalk_actors::now_ms() & 0xffff_ffff,
    };
    (block << 20) | 1
}

/// What this node tells the cluster about itself in each heartbeat.
pub(crate) fn node_info(app: &crate::app::App) -> chalktalk_cluster::InfoFn {
    let weak = app.downgrade();
    Arc::new(move || {
        let weak = weak.clone();
        Box::pin(async move {
            let Some(app) = weak.upgrade() else {
                return chalktalk_cluster::NodeInfo::default();
            };
            let connections = app
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            let (rooms, threads) = app.directory.counts().await;
            let inboxes = app.directory.inboxes().await;
            let encoder_queued = app
                .media
                .as_ref()
                .and_then(|m| m.pool())
                .map_or(0, |p| p.stats().queued);
            chalktalk_cluster::NodeInfo {
                connections: connections as u64,
                rooms: rooms as u64,
                threads: threads as u64,
                inboxes: inboxes as u64,
                rss_bytes: chalktalk_actors::metrics::resident_bytes(None).unwrap_or(0),
                cpu_seconds: chalktalk_actors::metrics::own_cpu_seconds(),
                encoder_queued: encoder_queued as u64,
            }
        })
    })
}
