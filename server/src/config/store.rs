//! The store setting (`store`, `CHALKTALK_STORE`, `--store`): `embedded`
//! (the default, a redb file in the data dir), a PostgreSQL URL
//! (`postgres://user[:password]@host[:port]/db`) or a ScyllaDB URL
//! (`scylla://[user[:password]@]host1[:port],host2[:port]/keyspace?dc=NAME`,
//! see `chalktalk_adapters::scylla::ScyllaOptions`), and `store_migrate`
//! (`CHALKTALK_STORE_MIGRATE`, default true: `serve` applies pending schema
//! migrations itself). A URL is checked here; whether the server answers is
//! checked when `serve` starts. Passwords never appear in errors or `Debug`.

use super::{ConfigError, Settings};

/// Where the node's durable records live.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// One redb file in the data dir.
    Embedded,
    /// A shared PostgreSQL database.
    Postgres { url: String },
    /// A ScyllaDB keyspace (shared by nodes).
    Scylla { url: String },
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Embedded => f.write_str("Embedded"),
            StoreConfig::Postgres { url } => write!(f, "Postgres({})", redact(url)),
            StoreConfig::Scylla { url } => write!(f, "Scylla({})", redact(url)),
        }
    }
}

/// The URL without its password (`user:***@`).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".into();
    };
    match rest.split_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn value<'a>(cli: &'a Option<String>, file: &'a Option<String>) -> Option<(&'a str, &'static str)> {
    match (cli, file) {
        (Some(v), _) => Some((v.trim(), "flag or environment")),
        (None, Some(v)) => Some((v.trim(), "config file")),
        (None, None) => None,
    }
}

/// The store settings of `cli` over `file` over the defaults.
pub fn resolve(cli: &Settings, file: &Settings) -> Result<(StoreConfig, bool), ConfigError> {
    let store = match value(&cli.store, &file.store) {
        None => StoreConfig::Embedded,
        Some(("embedded" | "", _)) => StoreConfig::Embedded,
        Some((url, from)) => {
            let bad = |message: String| ConfigError::Value {
                key: "store (CHALKTALK_STORE)",
                value: redact(url),
                from,
                message,
            };
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                chalktalk_adapters::postgres::check_url(url).map_err(|e| bad(e.to_string()))?;
                StoreConfig::Postgres {
                    url: url.to_string(),
                }
            } else if url.starts_with("scylla://") {
                chalktalk_adapters::scylla::check_url(url).map_err(|e| bad(e.to_string()))?;
                StoreConfig::Scylla {
                    url: url.to_string(),
                }
            } else {
                return Err(bad(
                    "expected `embedded`, `postgres://user@host[:port]/db` or \
                     `scylla://host[:port],.../keyspace`"
                        .into(),
                ));
            }
        }
    };
    let migrate = match value(&cli.store_migrate, &file.store_migrate) {
        None => true,
        Some((v, from)) => v.parse::<bool>().map_err(|_| ConfigError::Value {
            key: "store_migrate (CHALKTALK_STORE_MIGRATE)",
            value: v.to_string(),
            from,
            message: "expected true or false".into(),
        })?,
    };
    Ok((store, migrate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(store: &str) -> Settings {
        Settings {
            store: Some(store.into()),
            ..Settings::default()
        }
    }

    #[test]
    fn embedded_by_default_postgres_by_url() {
        let none = Settings::default();
        assert_eq!(
            resolve(&none, &none).unwrap(),
            (StoreConfig::Embedded, true)
        );
        assert_eq!(
            resolve(&with("embedded"), &none).unwrap().0,
            StoreConfig::Embedded
        );
        let url = "postgres://chalk:s3cret@db.internal:5433/chalktalk";
        let (store, _) = resolve(&with(url), &none).unwrap();
        assert_eq!(store, StoreConfig::Postgres { url: url.into() });
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("db.internal"),
            "{shown}"
        );
        let url = "scylla://chalk:s3cret@db1:9042,db2/chalktalk?dc=eu1";
        let (store, _) = resolve(&with(url), &none).unwrap();
        assert_eq!(store, StoreConfig::Scylla { url: url.into() });
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("db2"),
            "{shown}"
        );
        let off = Settings {
            store_migrate: Some("false".into()),
            ..Settings::default()
        };
        assert!(!resolve(&none, &off).unwrap().1);
    }

    #[test]
    fn bad_store_values_name_the_setting_and_hide_passwords() {
        let none = Settings::default();
        for bad in [
            "mysql://x@y/z",
            "scylla://h:9042",
            "scylla://u:hunter2@h:9042/ks?tls=true",
            "scylla://u:hunter2@h:notaport/ks",
            "postgres://u:hunter2@h:notaport/db",
        ] {
            let e = resolve(&with(bad), &none).unwrap_err().to_string();
            assert!(e.contains("CHALKTALK_STORE"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = resolve(
            &Settings {
                store_migrate: Some("maybe".into()),
                ..Settings::default()
            },
            &none,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("CHALKTALK_STORE_MIGRATE"), "{e}");
    }
}
