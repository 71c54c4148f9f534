//! Schema migrations for ScyllaDB: the numbered files of `cql/` (embedded
//! in the binary), applied in order, statement by statement
//! (`query_unpaged`, then waiting for schema agreement), each recorded in
//! the keyspace's `schema_version` table. Every statement is `CREATE ...
//! IF NOT EXISTS`, so running it again (or from two nodes at once) is
//! harmless; a keyspace whose recorded version is newer than the binary's
//! newest migration is refused. The keyspace itself is created only when
//! the options ask for it ([`ScyllaOptions::create_keyspace`]).

use std::time::{SystemTime, UNIX_EPOCH};

use scylla::client::session::Session;
use scylla::value::Row;

use super::statements::SCHEMA_SCOPE;
use super::{ScyllaOptions, ScyllaSetupError};

/// One numbered migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub cql: &'static str,
}

/// Every migration this binary knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_rooms.cql",
        cql: include_str!("../../../cql/001_rooms.cql"),
    },
    Migration {
        version: 2,
        name: "002_threads.cql",
        cql: include_str!("../../../cql/002_threads.cql"),
    },
    Migration {
        version: 3,
        name: "003_inbox_and_memberships.cql",
        cql: include_str!("../../../cql/003_inbox_and_memberships.cql"),
    },
    Migration {
        version: 4,
        name: "004_media.cql",
        cql: include_str!("../../../cql/004_media.cql"),
    },
    Migration {
        version: 5,
        name: "005_kv.cql",
        cql: include_str!("../../../cql/005_kv.cql"),
    },
    Migration {
        version: 6,
        name: "006_assets_by_owner.cql",
        cql: include_str!("../../../cql/006_assets_by_owner.cql"),
    },
    Migration {
        version: 7,
        name: "007_fences.cql",
        cql: include_str!("../../../cql/007_fences.cql"),
    },
    Migration {
        version: 8,
        name: "008_thread_fences.cql",
        cql: include_str!("../../../cql/008_thread_fences.cql"),
    },
    Migration {
        version: 9,
        name: "009_programs.cql",
        cql: include_str!("../../../cql/009_programs.cql"),
    },
    Migration {
        version: 10,
        name: "010_billing.cql",
        cql: include_str!("../../../cql/010_billing.cql"),
    },
    Migration {
        version: 11,
        name: "011_revenue.cql",
        cql: include_str!("../../../cql/011_revenue.cql"),
    },
];

/// The version table, created before any migration (one partition,
/// `scope = 'chalktalk'`, one row per applied version).
pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    scope       text,
    version     int,
    name        text,
    applied_ms  bigint,
    PRIMARY KEY ((scope), version)
)";

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

/// The statements of a migration file: `--` comments dropped, split on
/// `;`, blanks skipped.
pub fn statements(cql: &str) -> Vec<String> {
    let text: String = cql
        .lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn failed(version: i32) -> impl Fn(String) -> ScyllaSetupError {
    move |message| ScyllaSetupError::Migration { version, message }
}

/// Runs one DDL statement and waits until every node agrees on the schema.
async fn ddl(session: &Session, cql: &str) -> Result<(), String> {
    session
        .query_unpaged(cql, ())
        .await
        .map_err(|e| e.to_string())?;
    session
        .await_schema_agreement()
        .await
        .map(drop)
        .map_err(|e| format!("schema agreement: {e}"))
}

/// Switches the session to the keyspace, creating it first when asked.
async fn use_keyspace(
    session: &Session,
    opts: &ScyllaOptions,
    create: bool,
) -> Result<(), ScyllaSetupError> {
    if create && let Some(replication) = &opts.create_keyspace {
        let mut cql = format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {replication}",
            opts.keyspace
        );
        if opts.disable_tablets {
            cql.push_str(" AND tablets = {'enabled': false}");
        }
        ddl(session, &cql).await.map_err(failed(0))?;
    }
    session
        .use_keyspace(&opts.keyspace, false)
        .await
        .map_err(|e| {
            let text = e.to_string();
            if text.contains("does not exist") || text.contains("Keyspace") && text.contains("not")
            {
                ScyllaSetupError::NoKeyspace(opts.keyspace.clone())
            } else {
                ScyllaSetupError::Unreachable(text)
            }
        })
}

/// The recorded version (0 without a version table).
async fn current(session: &Session) -> Result<i32, String> {
    let result = session
        .query_unpaged(
            "SELECT version FROM schema_version WHERE scope = ?",
            (SCHEMA_SCOPE,),
        )
        .await
        .map_err(|e| e.to_string())?;
    let rows = result.into_rows_result().map_err(|e| e.to_string())?;
    let mut max = 0;
    for row in rows.rows::<Row>().map_err(|e| e.to_string())? {
        let row = row.map_err(|e| e.to_string())?;
        if let Some(Some(scylla::value::CqlValue::Int(v))) = row.columns.first() {
            max = max.max(*v);
        }
    }
    Ok(max)
}

/// Applies every pending migration.
pub async fn migrate(
    session: &Session,
    opts: &ScyllaOptions,
) -> Result<Migrated, ScyllaSetupError> {
    use_keyspace(session, opts, true).await?;
    ddl(session, VERSION_TABLE).await.map_err(failed(0))?;
    let from = current(session).await.map_err(failed(0))?;
    if from > latest() {
        return Err(ScyllaSetupError::SchemaTooNew {
            found: from,
            known: latest(),
        });
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        for stmt in statements(m.cql) {
            match ddl(session, &stmt).await {
                Ok(()) => {}
                // ALTER TABLE ... ADD has no IF NOT EXISTS: a migration that
                // stopped after it (before its version row) finds the column
                // there when run again.
                Err(e) if stmt.starts_with("ALTER TABLE") && already_added(&e) => {}
                Err(e) => return Err(failed(m.version)(e)),
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        session
            .query_unpaged(
                "INSERT INTO schema_version (scope, version, name, applied_ms) VALUES (?, ?, ?, ?)",
                (SCHEMA_SCOPE, m.version, m.name, now),
            )
            .await
            .map_err(|e| failed(m.version)(e.to_string()))?;
        applied.push(m.version);
    }
    if !applied.is_empty() {
        tracing::info!(from, ?applied, keyspace = %opts.keyspace, "scylla schema migrated");
    }
    Ok(Migrated { from, applied })
}

/// The server's answer to an `ALTER TABLE ... ADD` of a column that is
/// there already.
fn already_added(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    e.contains("already exist") || e.contains("conflicts with an existing column")
}

/// Checks that the schema is exactly the binary's (for `serve` told not to
/// migrate).
pub async fn check(session: &Session, opts: &ScyllaOptions) -> Result<(), ScyllaSetupError> {
    use_keyspace(session, opts, false).await?;
    let found = match current(session).await {
        Ok(v) => v,
        // No version table yet: nothing was ever migrated.
        Err(e) if e.contains("schema_version") || e.contains("unconfigured table") => 0,
        Err(e) => return Err(ScyllaSetupError::Unreachable(e)),
    };
    match found.cmp(&latest()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(ScyllaSetupError::SchemaTooNew {
            found,
            known: latest(),
        }),
        std::cmp::Ordering::Less => Err(ScyllaSetupError::SchemaBehind {
            found,
            known: latest(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_split_into_create_statements() {
        for m in MIGRATIONS {
            let stmts = statements(m.cql);
            assert!(!stmts.is_empty(), "{}", m.name);
            for s in &stmts {
                assert!(
                    s.starts_with("CREATE TABLE IF NOT EXISTS")
                        || (s.starts_with("ALTER TABLE ") && s.contains(" ADD ")),
                    "{}: {s}",
                    m.name
                );
            }
        }
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=latest()).collect::<Vec<_>>());
        for m in MIGRATIONS {
            assert!(m.name.starts_with(&format!("{:03}_", m.version)));
        }
    }
}
