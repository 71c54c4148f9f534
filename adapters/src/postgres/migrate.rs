//! Schema migrations for PostgreSQL: the numbered files of `sql/` (embedded
//! in the binary), applied in order in one transaction under an advisory
//! lock, each recorded in `chalktalk_schema_version`. Running it again, or
//! from several nodes at once, applies nothing twice; a database whose
//! recorded version is newer than the binary's newest migration is refused.

use deadpool_postgres::Object;

use super::PgSetupError;

/// One numbered migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this binary knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_store.sql",
        sql: include_str!("../../../sql/001_store.sql"),
    },
    Migration {
        version: 2,
        name: "002_media.sql",
        sql: include_str!("../../../sql/002_media.sql"),
    },
    Migration {
        version: 3,
        name: "003_kv.sql",
        sql: include_str!("../../../sql/003_kv.sql"),
    },
    Migration {
        version: 4,
        name: "004_fences.sql",
        sql: include_str!("../../../sql/004_fences.sql"),
    },
    Migration {
        version: 5,
        name: "005_thread_fences.sql",
        sql: include_str!("../../../sql/005_thread_fences.sql"),
    },
    Migration {
        version: 6,
        name: "006_programs.sql",
        sql: include_str!("../../../sql/006_programs.sql"),
    },
    Migration {
        version: 7,
        name: "007_billing.sql",
        sql: include_str!("../../../sql/007_billing.sql"),
    },
    Migration {
        version: 8,
        name: "008_revenue.sql",
        sql: include_str!("../../../sql/008_revenue.sql"),
    },
];

/// The version table (created by `migrate`, before any migration).
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS chalktalk_schema_version (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)";

/// Key of the advisory lock that serializes migrations ("chalktlk").
const LOCK: i64 = 0x6368_616c_6b74_6c6b;

/// The newest version this binary knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The version before.
    pub from: i32,
    /// Versions applied now, in order.
    pub applied: Vec<i32>,
}

fn failed(version: i32) -> impl Fn(tokio_postgres::Error) -> PgSetupError {
    move |e| PgSetupError::Migration {
        version,
        message: e
            .as_db_error()
            .map(|d| d.message().to_owned())
            .unwrap_or_else(|| e.to_string()),
    }
}

/// Applies every pending migration.
pub async fn migrate(client: &mut Object) -> Result<Migrated, PgSetupError> {
    let tx = client.transaction().await.map_err(failed(0))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(failed(0))?;
    tx.batch_execute(VERSION_TABLE).await.map_err(failed(0))?;
    let from = current(&tx).await.map_err(failed(0))?;
    if from > latest() {
        return Err(PgSetupError::SchemaTooNew {
            found: from,
            known: latest(),
        });
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        tx.batch_execute(m.sql).await.map_err(failed(m.version))?;
        tx.execute(
            "INSERT INTO chalktalk_schema_version (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(failed(m.version))?;
        applied.push(m.version);
    }
    tx.commit().await.map_err(failed(0))?;
    if !applied.is_empty() {
        tracing::info!(from, ?applied, "postgres schema migrated");
    }
    Ok(Migrated { from, applied })
}

/// Checks that the schema is exactly the binary's (for `serve` told not to
/// migrate).
pub async fn check(client: &Object) -> Result<(), PgSetupError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('chalktalk_schema_version') IS NOT NULL",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(failed(0))?;
    let found = if exists {
        current(client).await.map_err(failed(0))?
    } else {
        0
    };
    match found.cmp(&latest()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(PgSetupError::SchemaTooNew {
            found,
            known: latest(),
        }),
        std::cmp::Ordering::Less => Err(PgSetupError::SchemaBehind {
            found,
            known: latest(),
        }),
    }
}

async fn current<C: deadpool_postgres::GenericClient>(c: &C) -> Result<i32, tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM chalktalk_schema_version",
            &[],
        )
        .await?;
    row.try_get(0)
}
