//! `chalktalk migrate`: applies the pending schema migrations of the
//! configured store (`CHALKTALK_STORE`) and says what it did. The embedded
//! store has no schema to migrate.

use crate::config::{Config, StoreConfig, redact_store_url};
use chalktalk_adapters::postgres::{PgOptions, migrate_url};
use chalktalk_adapters::scylla::ScyllaOptions;

/// Why `migrate` failed (the message names the setting).
#[derive(Debug, thiserror::Error)]
#[error("cannot migrate the store of CHALKTALK_STORE (store = {store}): {message}")]
pub struct MigrateError {
    store: String,
    message: String,
}

/// Runs the migrations; the answer is one line for the operator.
pub async fn run(config: &Config) -> Result<String, MigrateError> {
    match &config.store {
        StoreConfig::Embedded => {
            Ok("embedded store: no schema migrations (tables are created on open)".into())
        }
        StoreConfig::Postgres { url } => {
            let done = migrate_url(&PgOptions::new(url))
                .await
                .map_err(|e| MigrateError {
                    store: redact_store_url(url),
                    message: e.to_string(),
                })?;
            Ok(if done.applied.is_empty() {
                format!("postgres: schema at version {}, nothing to do", done.from)
            } else {
                format!(
                    "postgres: schema version {} -> {} (applied {:?})",
                    done.from,
                    done.applied.last().copied().unwrap_or(done.from),
                    done.applied
                )
            })
        }
        StoreConfig::Scylla { url } => {
            let fail = |message: String| MigrateError {
                store: redact_store_url(url),
                message,
            };
            let opts = ScyllaOptions::from_url(url).map_err(|e| fail(e.to_string()))?;
            let done = chalktalk_adapters::scylla::migrate_url(&opts)
                .await
                .map_err(|e| fail(e.to_string()))?;
            Ok(if done.applied.is_empty() {
                format!("scylla: schema at version {}, nothing to do", done.from)
            } else {
                format!(
                    "scylla: schema version {} -> {} (applied {:?})",
                    done.from,
                    done.applied.last().copied().unwrap_or(done.from),
                    done.applied
                )
            })
        }
    }
}
