//! `chalktalk account create`: the only way to make an admin account (and
//! a convenient way to make any other). Opens the node's store: the
//! embedded one only while the node is stopped (a running node locks it),
//! a PostgreSQL one at any time.

use std::io::BufRead;

use chalktalk_protocol::Role;

use crate::config::{Config, StoreConfig};
use chalktalk_adapters::EmbeddedStore;
use chalktalk_adapters::kv::Kv;
use chalktalk_services::accounts::Accounts;

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot open the store in {dir} (is a node running on it?): {message}")]
    Store { dir: String, message: String },
    #[error("cannot read the password from standard input: {0}")]
    Stdin(std::io::Error),
    #[error("{0}")]
    Refused(String),
}

/// Creates an account with the password on the first line of stdin;
/// prints nothing itself, returns the new user id.
pub async fn create_account(config: &Config, email: &str, role: Role) -> Result<String, CliError> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(CliError::Stdin)?;
    let password = password.trim_end_matches(['\r', '\n']);
    let store: std::sync::Arc<dyn Kv> = match &config.store {
        StoreConfig::Embedded => {
            EmbeddedStore::open(&config.data_dir).map_err(|e| CliError::Store {
                dir: config.data_dir.display().to_string(),
                message: e.to_string(),
            })?
        }
        StoreConfig::Postgres { url } => crate::server::open_postgres(url, config.store_migrate)
            .await
            .map_err(|e| CliError::Refused(e.to_string()))?,
        StoreConfig::Scylla { url } => crate::server::open_scylla(url, config.store_migrate)
            .await
            .map_err(|e| CliError::Refused(e.to_string()))?,
    };
    let auth =
        chalktalk_services::auth::Auth::from_config(config.jwt_secret.as_deref(), &config.data_dir)
            .map_err(|e| CliError::Refused(e.to_string()))?;
    let revs = chalktalk_services::accounts::EmbeddedRevocations::open(
        store.clone(),
        config.accounts.access_ttl,
    )
    .await
    .map_err(|e| CliError::Refused(e.to_string()))?;
    let svc = Accounts::new(
        store,
        auth,
        std::sync::Arc::new(revs),
        config.accounts.clone(),
    )
    .map_err(CliError::Refused)?;
    match svc.create_account(email, password, role).await {
        Ok(Some(a)) => Ok(a.id),
        Ok(None) => Err(CliError::Refused(format!(
            "an account with email {email} exists"
        ))),
        Err(e) => Err(CliError::Refused(
            crate::http::ApiError::from(e).body().to_string(),
        )),
    }
}
