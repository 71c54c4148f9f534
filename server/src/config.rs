//! Configuration: defaults, overridden by an optional TOML file, overridden
//! by the environment (`CHALKTALK_*`), overridden by flags. Every value is
//! checked once here; a bad one is a clear error naming where it came from.

mod accounts;
mod cluster;
mod payments;
mod store;

pub use store::{StoreConfig, redact as redact_store_url};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chalktalk_actors::CoreConfig;
use serde::Deserialize;

/// A configuration problem, with the setting and its source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value {value:?} for {key} (from {from}): {message}")]
    Value {
        key: &'static str,
        value: String,
        from: &'static str,
        message: String,
    },
    #[error("{0}")]
    Secret(String),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected `text` or `json`".into()),
        }
    }
}

/// Settings as they may appear in flags, the environment or the file; all
/// optional. Field names are the file keys; flags are `--field-name` and
/// variables `CHALKTALK_FIELD_NAME`.
#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct Settings {
    /// Address to listen on (HTTP and WebSocket).
    #[arg(long, env = "CHALKTALK_LISTEN")]
    #[serde(deserialize_with = "scalar")]
    pub listen: Option<String>,
    /// Directory of the embedded store and the generated dev secret.
    #[arg(long, env = "CHALKTALK_DATA_DIR")]
    #[serde(deserialize_with = "scalar")]
    pub data_dir: Option<String>,
    /// Directory of the built web app served at `/` (default: `web` beside
    /// the binary, `../../web/dist` from it, or `web/dist` under the
    /// working directory, the first with an index.html).
    #[arg(long, env = "CHALKTALK_WEB_DIR")]
    #[serde(deserialize_with = "scalar")]
    pub web_dir: Option<String>,
    /// Where rooms, threads, inboxes, accounts and media records live:
    /// `embedded` (default: a redb file in the data dir),
    /// `postgres://user[:password]@host[:port]/db` or
    /// `scylla://[user[:password]@]host1[:port],host2[:port]/keyspace?dc=NAME`
    /// (both shared by nodes).
    #[arg(long, env = "CHALKTALK_STORE", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub store: Option<String>,
    /// `false`: `serve` leaves schema migrations to `chalktalk migrate` and
    /// refuses a database schema that is behind (default true).
    #[arg(long, env = "CHALKTALK_STORE_MIGRATE")]
    #[serde(deserialize_with = "scalar")]
    pub store_migrate: Option<String>,
    /// HS256 secret for access tokens (at least 32 bytes). Without it a
    /// random secret is generated once and kept in the data dir.
    #[arg(long, env = "CHALKTALK_JWT_SECRET", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub jwt_secret: Option<String>,
    /// `text` or `json`.
    #[arg(long, env = "CHALKTALK_LOG_FORMAT")]
    #[serde(deserialize_with = "scalar")]
    pub log_format: Option<String>,
    /// How long a dropped connection stays in presence, in ms.
    #[arg(long, env = "CHALKTALK_PRESENCE_GRACE_MS")]
    #[serde(deserialize_with = "scalar")]
    pub presence_grace_ms: Option<String>,
    /// How long an empty room waits before stopping, in ms.
    #[arg(long, env = "CHALKTALK_IDLE_STOP_MS")]
    #[serde(deserialize_with = "scalar")]
    pub idle_stop_ms: Option<String>,
    /// Heartbeat interval announced to clients, in ms; a connection silent
    /// for three intervals is closed.
    #[arg(long, env = "CHALKTALK_HEARTBEAT_MS")]
    #[serde(deserialize_with = "scalar")]
    pub heartbeat_ms: Option<String>,
    /// Enable admin-only debug requests (never in production).
    #[arg(long, env = "CHALKTALK_DEBUG_HOOKS")]
    #[serde(deserialize_with = "scalar")]
    pub debug_hooks: Option<String>,
    /// Quota overrides, `class=RATE/UNIT[:BURST]` separated by commas
    /// (classes public, authenticated, upload, webhooks, analytics; units
    /// s, min, hour, day), e.g. `public=200/min:300`.
    #[arg(long, env = "CHALKTALK_RATE_LIMITS")]
    #[serde(deserialize_with = "scalar")]
    pub rate_limits: Option<String>,
    /// Proxies (IPs or CIDR blocks, comma-separated) whose X-Forwarded-For
    /// names the client for rate limits; without it the TCP peer is.
    #[arg(long, env = "CHALKTALK_TRUSTED_PROXIES")]
    #[serde(deserialize_with = "scalar")]
    pub trusted_proxies: Option<String>,
    /// S3-compatible endpoint for blobs (uploads, renditions); without it
    /// blobs are local files in `<data_dir>/blobs`.
    #[arg(long, env = "CHALKTALK_S3_ENDPOINT")]
    #[serde(deserialize_with = "scalar")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "CHALKTALK_S3_BUCKET")]
    #[serde(deserialize_with = "scalar")]
    pub s3_bucket: Option<String>,
    #[arg(long, env = "CHALKTALK_S3_REGION")]
    #[serde(deserialize_with = "scalar")]
    pub s3_region: Option<String>,
    #[arg(long, env = "CHALKTALK_S3_ACCESS_KEY", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub s3_access_key: Option<String>,
    #[arg(long, env = "CHALKTALK_S3_SECRET_KEY", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub s3_secret_key: Option<String>,
    /// Encoder worker processes run at once (default 1: each uses every core).
    #[arg(long, env = "CHALKTALK_ENCODER_WORKERS")]
    #[serde(deserialize_with = "scalar")]
    pub encoder_workers: Option<String>,
    /// Jobs that may wait for an encoder before uploads get `busy`.
    #[arg(long, env = "CHALKTALK_ENCODER_QUEUE")]
    #[serde(deserialize_with = "scalar")]
    pub encoder_queue: Option<String>,
    /// Malware scanner command; the file path is appended. Exit 0 = clean,
    /// 1 = infected, other = scan failed (the upload is refused, retryable).
    #[arg(long, env = "CHALKTALK_SCAN_COMMAND")]
    #[serde(deserialize_with = "scalar")]
    pub scan_command: Option<String>,
    /// x264 preset of the renditions (default veryfast).
    #[arg(long, env = "CHALKTALK_ENCODER_PRESET")]
    #[serde(deserialize_with = "scalar")]
    pub encoder_preset: Option<String>,
    /// Longest accepted upload, seconds of media (default 1800).
    #[arg(long, env = "CHALKTALK_MAX_MEDIA_SECONDS")]
    #[serde(deserialize_with = "scalar")]
    pub max_media_seconds: Option<String>,
    /// Largest accepted video upload, MiB (default 2048).
    #[arg(long, env = "CHALKTALK_MAX_UPLOAD_MB")]
    #[serde(deserialize_with = "scalar")]
    pub max_upload_mb: Option<String>,
    /// Storage per user (the original sizes of their assets), MiB; 0: no
    /// quota (default 20480).
    #[arg(long, env = "CHALKTALK_QUOTA_MB")]
    #[serde(deserialize_with = "scalar")]
    pub quota_mb: Option<String>,
    /// Redis shared by the nodes (`redis://host:port/`): token revocations
    /// (and rate limits). Without it each node keeps its own.
    #[arg(long, env = "CHALKTALK_REDIS_URL", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub redis_url: Option<String>,
    /// External identity provider: expected `iss` of its ID tokens.
    #[arg(long, env = "CHALKTALK_OIDC_ISSUER")]
    #[serde(deserialize_with = "scalar")]
    pub oidc_issuer: Option<String>,
    /// Expected `aud` of the provider's ID tokens (our client id).
    #[arg(long, env = "CHALKTALK_OIDC_AUDIENCE")]
    #[serde(deserialize_with = "scalar")]
    pub oidc_audience: Option<String>,
    /// The provider's JWKS document (`http://` only).
    #[arg(long, env = "CHALKTALK_OIDC_JWKS_URL")]
    #[serde(deserialize_with = "scalar")]
    pub oidc_jwks_url: Option<String>,
    /// Failed sign-ins of one email that lock it (default 5).
    #[arg(long, env = "CHALKTALK_SIGNIN_LOCK_AFTER")]
    #[serde(deserialize_with = "scalar")]
    pub signin_lock_after: Option<String>,
    /// How long such a lock lasts, in seconds (default 900).
    #[arg(long, env = "CHALKTALK_SIGNIN_LOCK_SECS")]
    #[serde(deserialize_with = "scalar")]
    pub signin_lock_secs: Option<String>,
    /// Stripe secret key (`sk_...`): checkout and refunds (without it they
    /// answer `payments_disabled`).
    #[arg(long, env = "CHALKTALK_STRIPE_SECRET_KEY", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub stripe_secret_key: Option<String>,
    /// The signing secret of the Stripe webhook endpoint (`whsec_...`).
    #[arg(long, env = "CHALKTALK_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub stripe_webhook_secret: Option<String>,
    /// The signing secret of the Stripe webhook endpoint of events on
    /// connected accounts (Connect: `account.updated`).
    #[arg(
        long,
        env = "CHALKTALK_STRIPE_CONNECT_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    #[serde(deserialize_with = "scalar")]
    pub stripe_connect_webhook_secret: Option<String>,
    /// Another Stripe API base URL (tests, a local fake).
    #[arg(long, env = "CHALKTALK_STRIPE_API_BASE")]
    #[serde(deserialize_with = "scalar")]
    pub stripe_api_base: Option<String>,
    /// The platform's share of each sale, 0-100: the application fee of
    /// every destination charge to a coach's Connect account.
    #[arg(long, env = "CHALKTALK_PLATFORM_FEE_PERCENT")]
    #[serde(deserialize_with = "scalar")]
    pub platform_fee_percent: Option<String>,
    /// The Stripe Price (or Plan) id of the basic coach plan.
    #[arg(long, env = "CHALKTALK_STRIPE_PRICE_COACH_BASIC")]
    #[serde(deserialize_with = "scalar")]
    pub stripe_price_coach_basic: Option<String>,
    /// The Stripe Price (or Plan) id of the premium coach plan.
    #[arg(long, env = "CHALKTALK_STRIPE_PRICE_COACH_PREMIUM")]
    #[serde(deserialize_with = "scalar")]
    pub stripe_price_coach_premium: Option<String>,
    /// The Stripe Price (or Plan) id of the paid athlete plan.
    #[arg(long, env = "CHALKTALK_STRIPE_PRICE_ATHLETE_PAID")]
    #[serde(deserialize_with = "scalar")]
    pub stripe_price_athlete_paid: Option<String>,
    /// How long a past_due subscription keeps its plan, in seconds
    /// (default 604800, 7 days).
    #[arg(long, env = "CHALKTALK_PAST_DUE_GRACE_SECS")]
    #[serde(deserialize_with = "scalar")]
    pub past_due_grace_secs: Option<String>,
    /// Free trial days of a coach's first plan subscription (Checkout's
    /// `trial_period_days`; default 14, 0: none).
    #[arg(long, env = "CHALKTALK_COACH_TRIAL_DAYS")]
    #[serde(deserialize_with = "scalar")]
    pub coach_trial_days: Option<String>,
    /// Cluster listener `ip:port`; without it the node runs alone.
    #[arg(long, env = "CHALKTALK_CLUSTER_LISTEN")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_listen: Option<String>,
    /// Other nodes' cluster listeners, `host:port` separated by commas.
    #[arg(long, env = "CHALKTALK_CLUSTER_SEEDS")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_seeds: Option<String>,
    /// The secret every node of the cluster presents (required with
    /// `cluster_listen`, at least 16 bytes).
    #[arg(long, env = "CHALKTALK_CLUSTER_COOKIE", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub cluster_cookie: Option<String>,
    /// This node's name in the cluster (default: the cluster listen address).
    #[arg(long, env = "CHALKTALK_NODE_NAME")]
    #[serde(deserialize_with = "scalar")]
    pub node_name: Option<String>,
    /// Heartbeat interval between nodes, ms (default 500).
    #[arg(long, env = "CHALKTALK_CLUSTER_HEARTBEAT_MS")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_heartbeat_ms: Option<String>,
    /// Silence after which a node is suspect, ms (default 1500).
    #[arg(long, env = "CHALKTALK_CLUSTER_SUSPECT_MS")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_suspect_ms: Option<String>,
    /// Silence after which a node is down, ms (default 3000).
    #[arg(long, env = "CHALKTALK_CLUSTER_DOWN_MS")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_down_ms: Option<String>,
    /// Lease time of a room's owner, ms (default 4000): a dead or frozen
    /// owner's rooms move to another node after it.
    #[arg(long, env = "CHALKTALK_CLUSTER_LEASE_MS")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_lease_ms: Option<String>,
    /// Port of this node's relay link listener (on the cluster listen
    /// ip; frames of its rooms and threads for other nodes' sessions);
    /// default 0: any free port, told to the others in heartbeats.
    #[arg(long, env = "CHALKTALK_CLUSTER_RELAY_PORT")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_relay_port: Option<String>,
    /// Where a room or thread that no node serves starts: `first_use`
    /// (default: the node of its first member) or `rendezvous` (the node
    /// up with the highest rendezvous score for its id).
    #[arg(long, env = "CHALKTALK_CLUSTER_PLACEMENT")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_placement: Option<String>,
    /// Mutual TLS between nodes: this node's certificate chain (PEM). With
    /// `cluster_tls_key` and `cluster_tls_ca`; none of the three: plain TCP.
    #[arg(long, env = "CHALKTALK_CLUSTER_TLS_CERT")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_tls_cert: Option<String>,
    /// This node's private key (PEM).
    #[arg(long, env = "CHALKTALK_CLUSTER_TLS_KEY")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_tls_key: Option<String>,
    /// The cluster's CA certificate (PEM): peers must present a certificate
    /// it signed.
    #[arg(long, env = "CHALKTALK_CLUSTER_TLS_CA")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_tls_ca: Option<String>,
    /// The DNS name every node's certificate carries (default
    /// `chalktalk-cluster`).
    #[arg(long, env = "CHALKTALK_CLUSTER_TLS_NAME")]
    #[serde(deserialize_with = "scalar")]
    pub cluster_tls_name: Option<String>,
}

/// Accepts a TOML string, integer, float or boolean as text, so that
/// `heartbeat_ms = 5000` and `heartbeat_ms = "5000"` both work.
fn scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(Some(match Scalar::deserialize(d)? {
        Scalar::S(s) => s,
        Scalar::I(i) => i.to_string(),
        Scalar::F(f) => f.to_string(),
        Scalar::B(b) => b.to_string(),
    }))
}

/// The checked configuration of a server.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The built web app (`web_dir`); `None`: looked for (`crate::webapp`).
    pub web_dir: Option<PathBuf>,
    /// The store of durable records (`store`).
    pub store: StoreConfig,
    /// Apply pending schema migrations on `serve` (`store_migrate`).
    pub store_migrate: bool,
    /// `None` means: use (or create) the secret file in the data dir.
    pub jwt_secret: Option<String>,
    pub log_format: LogFormat,
    pub heartbeat: Duration,
    /// Rate limits (shared through `redis_url` when set).
    pub ratelimit: chalktalk_adapters::ratelimit::RateLimitConfig,
    pub core: CoreConfig,
    /// Blobs on S3 (else local files in `<data_dir>/blobs`).
    pub s3: Option<chalktalk_adapters::blob::S3Config>,
    pub media: chalktalk_services::media::MediaConfig,
    pub uploads: crate::http::UploadConfig,
    /// Redis shared by the nodes, if any.
    pub redis_url: Option<String>,
    /// Sign-in, tokens, sessions, the external identity provider.
    pub accounts: chalktalk_services::accounts::AccountsConfig,
    /// Cluster membership (`cluster_listen` and friends); `None`: alone.
    pub cluster: Option<chalktalk_cluster::ClusterConfig>,
    /// Stripe (programs sold through Checkout, webhooks).
    pub payments: chalktalk_services::programs::PaymentsConfig,
}

impl Config {
    /// Defaults suitable for tests: loopback on a free port, short timers.
    pub fn for_tests(data_dir: &Path) -> Config {
        let core = CoreConfig {
            presence_grace: Duration::from_millis(500),
            debug_hooks: true,
            ..CoreConfig::default()
        };
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            web_dir: None,
            store: StoreConfig::Embedded,
            store_migrate: true,
            jwt_secret: Some("test-secret-test-secret-test-secret!".into()),
            log_format: LogFormat::Text,
            heartbeat: Duration::from_secs(15),
            ratelimit: chalktalk_adapters::ratelimit::RateLimitConfig::default(),
            core,
            s3: None,
            media: chalktalk_services::media::MediaConfig::new(data_dir),
            uploads: crate::http::UploadConfig::new(data_dir.join("uploads")),
            redis_url: None,
            accounts: chalktalk_services::accounts::AccountsConfig::default(),
            cluster: None,
            payments: Default::default(),
        }
    }

    /// Resolves flags/env (`cli`) over the file named by `file` over defaults.
    pub fn resolve(cli: &Settings, file: Option<&Path>) -> Result<Config, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<Settings>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => Settings::default(),
        };
        fn pick<T: FromStr>(
            key: &'static str,
            cli: &Option<String>,
            file: &Option<String>,
            default: T,
        ) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            let (value, from) = match (cli, file) {
                (Some(v), _) => (v, "flag or environment"),
                (None, Some(v)) => (v, "config file"),
                (None, None) => return Ok(default),
            };
            value
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Value {
                    key,
                    value: value.clone(),
                    from,
                    message: e.to_string(),
                })
        }
        let ms = |key,
                  c: &Option<String>,
                  f: &Option<String>,
                  d: u64,
                  max: u64|
         -> Result<Duration, ConfigError> {
            let v: u64 = pick(key, c, f, d)?;
            if v == 0 || v > max {
                return Err(ConfigError::Value {
                    key,
                    value: v.to_string(),
                    from: "settings",
                    message: format!("must be within 1..={max}"),
                });
            }
            Ok(Duration::from_millis(v))
        };
        let f = &from_file;
        let core = CoreConfig {
            presence_grace: ms(
                "presence_grace_ms",
                &cli.presence_grace_ms,
                &f.presence_grace_ms,
                10_000,
                600_000,
            )?,
            idle_stop: ms(
                "idle_stop_ms",
                &cli.idle_stop_ms,
                &f.idle_stop_ms,
                30_000,
                3_600_000,
            )?,
            debug_hooks: pick("debug_hooks", &cli.debug_hooks, &f.debug_hooks, false)?,
            ..CoreConfig::default()
        };
        let jwt_secret = cli.jwt_secret.clone().or_else(|| f.jwt_secret.clone());
        let ratelimit = chalktalk_adapters::ratelimit::RateLimitConfig::from_settings(
            &pick::<String>(
                "rate_limits",
                &cli.rate_limits,
                &f.rate_limits,
                String::new(),
            )?,
            &pick::<String>(
                "trusted_proxies",
                &cli.trusted_proxies,
                &f.trusted_proxies,
                String::new(),
            )?,
        )
        .map_err(|message| ConfigError::Value {
            key: "rate_limits/trusted_proxies",
            value: String::new(),
            from: "settings",
            message,
        })?;
        if let Some(s) = &jwt_secret
            && s.len() < 32
        {
            return Err(ConfigError::Secret(
                "jwt_secret must be at least 32 bytes; unset it to use a generated dev secret"
                    .into(),
            ));
        }
        let data_dir: PathBuf = pick(
            "data_dir",
            &cli.data_dir,
            &f.data_dir,
            PathBuf::from("chalktalk-data"),
        )?;
        let s3 = match pick::<String>(
            "s3_endpoint",
            &cli.s3_endpoint,
            &f.s3_endpoint,
            String::new(),
        )? {
            e if e.is_empty() => None,
            endpoint => {
                let need = |key: &'static str,
                            c: &Option<String>,
                            fv: &Option<String>|
                 -> Result<String, ConfigError> {
                    let v: String = pick(key, c, fv, String::new())?;
                    if v.is_empty() {
                        return Err(ConfigError::Value {
                            key,
                            value: String::new(),
                            from: "settings",
                            message: "required with s3_endpoint".into(),
                        });
                    }
                    Ok(v)
                };
                Some(chalktalk_adapters::blob::S3Config {
                    endpoint,
                    region: pick(
                        "s3_region",
                        &cli.s3_region,
                        &f.s3_region,
                        "us-east-1".to_string(),
                    )?,
                    bucket: need("s3_bucket", &cli.s3_bucket, &f.s3_bucket)?,
                    access_key: need("s3_access_key", &cli.s3_access_key, &f.s3_access_key)?,
                    secret_key: need("s3_secret_key", &cli.s3_secret_key, &f.s3_secret_key)?,
                })
            }
        };
        let mut media = chalktalk_services::media::MediaConfig::new(&data_dir);
        let count = |key,
                     c: &Option<String>,
                     fv: &Option<String>,
                     d: usize,
                     max: usize|
         -> Result<usize, ConfigError> {
            let v: usize = pick(key, c, fv, d)?;
            if v == 0 || v > max {
                return Err(ConfigError::Value {
                    key,
                    value: v.to_string(),
                    from: "settings",
                    message: format!("must be within 1..={max}"),
                });
            }
            Ok(v)
        };
        media.pool.workers = count(
            "encoder_workers",
            &cli.encoder_workers,
            &f.encoder_workers,
            1,
            64,
        )?;
        media.pool.queue_capacity = count(
            "encoder_queue",
            &cli.encoder_queue,
            &f.encoder_queue,
            16,
            100_000,
        )?;
        media.limits.max_duration_ms = count(
            "max_media_seconds",
            &cli.max_media_seconds,
            &f.max_media_seconds,
            1800,
            86_400,
        )? as u64
            * 1000;
        media.max_video_bytes = count(
            "max_upload_mb",
            &cli.max_upload_mb,
            &f.max_upload_mb,
            2048,
            1 << 20,
        )? as u64
            * (1 << 20);
        let quota_mb: u64 = pick("quota_mb", &cli.quota_mb, &f.quota_mb, 20_480)?;
        media.quota_bytes = (quota_mb > 0).then(|| quota_mb.saturating_mul(1 << 20));
        let preset: String = pick(
            "encoder_preset",
            &cli.encoder_preset,
            &f.encoder_preset,
            "veryfast".to_string(),
        )?;
        const PRESETS: &[&str] = &[
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
        ];
        if !PRESETS.contains(&preset.as_str()) {
            return Err(ConfigError::Value {
                key: "encoder_preset",
                value: preset,
                from: "settings",
                message: format!("must be one of {}", PRESETS.join(", ")),
            });
        }
        media.settings.preset = preset;
        let scan: String = pick(
            "scan_command",
            &cli.scan_command,
            &f.scan_command,
            String::new(),
        )?;
        media.scan_command = (!scan.trim().is_empty())
            .then(|| scan.split_whitespace().map(str::to_string).collect());
        let mut uploads = crate::http::UploadConfig::new(data_dir.join("uploads"));
        uploads.max_upload_bytes = media.max_video_bytes;
        let redis_url = pick::<String>("redis_url", &cli.redis_url, &f.redis_url, String::new())?;
        let redis_url = (!redis_url.trim().is_empty()).then(|| redis_url.trim().to_string());
        let accounts = accounts::resolve(cli, f)?;
        let payments = payments::resolve(cli, f)?;
        let (store, store_migrate) = store::resolve(cli, f)?;
        let listen = pick(
            "listen",
            &cli.listen,
            &f.listen,
            SocketAddr::from(([127, 0, 0, 1], 7700)),
        )?;
        let cluster = cluster::resolve(cli, f, listen)?;
        Ok(Config {
            payments,
            cluster,
            store,
            store_migrate,
            redis_url,
            accounts,
            s3,
            media,
            uploads,
            listen,
            data_dir,
            web_dir: cli
                .web_dir
                .clone()
                .or_else(|| f.web_dir.clone())
                .filter(|d| !d.trim().is_empty())
                .map(PathBuf::from),
            jwt_secret,
            log_format: pick(
                "log_format",
                &cli.log_format,
                &f.log_format,
                LogFormat::Text,
            )?,
            heartbeat: ms(
                "heartbeat_ms",
                &cli.heartbeat_ms,
                &f.heartbeat_ms,
                15_000,
                300_000,
            )?,
            ratelimit,
            core,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nheartbeat_ms = 5000\ndebug_hooks = true\n",
        )
        .unwrap();
        let cli = Settings {
            listen: Some("127.0.0.1:9100".into()),
            ..Settings::default()
        };
        let c = Config::resolve(&cli, Some(&path)).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.heartbeat, Duration::from_secs(5));
        assert!(c.core.debug_hooks);
        assert_eq!(c.core.presence_grace, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let cli = Settings {
            listen: Some("not-an-address".into()),
            ..Settings::default()
        };
        let e = Config::resolve(&cli, None).unwrap_err().to_string();
        assert!(e.contains("listen") && e.contains("not-an-address"), "{e}");
        let cli = Settings {
            jwt_secret: Some("short".into()),
            ..Settings::default()
        };
        assert!(
            Config::resolve(&cli, None)
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let e = Config::resolve(&Settings::default(), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen"), "{e}");
    }
}
