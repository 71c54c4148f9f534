//! `chalktalk payments backfill [--apply]`: lists the Stripe events no
//! receipt holds (`ProgramService::backfill`) and, with `--apply`, stores
//! and applies them. Opens the node's store: the embedded one only while
//! the node is stopped (a running node locks it), PostgreSQL at any time.

use std::sync::Arc;

use chalktalk_adapters::EmbeddedStore;
use chalktalk_adapters::programs::ProgramStore;
use chalktalk_services::programs::backfill::Backfill;

use crate::account_cli::CliError;
use crate::config::{Config, StoreConfig};

/// Runs the backfill with the node's settings (the Stripe key is needed).
pub async fn backfill(config: &Config, apply: bool, max: usize) -> Result<Backfill, CliError> {
    let store: Arc<dyn ProgramStore> = match &config.store {
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
    if config.payments.secret_key.is_none() {
        return Err(CliError::Refused(
            "no Stripe secret key (CHALKTALK_STRIPE_SECRET_KEY)".into(),
        ));
    }
    let svc = crate::programs::service(&config.payments, store, None).map_err(CliError::Refused)?;
    svc.backfill(apply, max)
        .await
        .map_err(|e| CliError::Refused(format!("{}: {e}", e.code())))
}
