//! Statement text against the schema, without a server: parses the CREATE
//! TABLE statements of every `cql/` migration (and the version table) and
//! checks that every statement the adapter prepares names only tables and
//! columns they create, and binds the whole partition key with `=` in
//! every SELECT, UPDATE and DELETE (the one documented full scan aside).
//! The same parse gives each statement's bind markers and result columns
//! with their CQL types, which `proxy_tests.rs` needs to forge PREPARED
//! and ROWS answers.

use std::collections::HashMap;

use super::migrate::{MIGRATIONS, VERSION_TABLE, statements};
use super::statements::{ALL, KV_SCAN_ALL};

/// A table as the migrations create it.
#[derive(Debug, Clone)]
pub(super) struct Table {
    /// Column name → CQL type (`text`, `bigint`, `list<text>`, ...).
    pub columns: HashMap<String, String>,
    pub partition_key: Vec<String>,
}

/// Every table of the migrations and the version table.
pub(super) fn schema() -> HashMap<String, Table> {
    let mut tables: HashMap<String, Table> = HashMap::new();
    let mut all: Vec<String> = MIGRATIONS.iter().flat_map(|m| statements(m.cql)).collect();
    all.push(VERSION_TABLE.to_string());
    for stmt in all {
        if let Some(rest) = stmt.strip_prefix("ALTER TABLE ") {
            // `ALTER TABLE t ADD col type [static]`
            let words: Vec<&str> = rest.split_whitespace().collect();
            let [name, "ADD", col, ty, ..] = words[..] else {
                panic!("unsupported ALTER TABLE: {stmt}");
            };
            tables
                .get_mut(name)
                .unwrap_or_else(|| panic!("ALTER of unknown table {name}"))
                .columns
                .insert(col.to_string(), ty.to_string());
            continue;
        }
        let (name, table) = parse_create(&stmt);
        tables.insert(name, table);
    }
    tables
}

fn parse_create(stmt: &str) -> (String, Table) {
    let rest = stmt
        .strip_prefix("CREATE TABLE IF NOT EXISTS ")
        .unwrap_or_else(|| panic!("not a CREATE TABLE: {stmt}"));
    let (name, body) = rest.split_once('(').expect("column list");
    // The column list ends at the parenthesis that closes the first one.
    let mut depth = 1;
    let close = body
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            depth == 0
        })
        .map(|(i, _)| i)
        .expect("closing parenthesis");
    let body = &body[..close];
    let mut columns = HashMap::new();
    let mut partition_key = Vec::new();
    // Split on commas outside parentheses and angle brackets.
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in body.char_indices() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if let Some(pk) = part.strip_prefix("PRIMARY KEY") {
            let pk = pk.trim();
            let pk = pk.strip_prefix('(').unwrap_or(pk);
            let first = if let Some(inner) = pk.strip_prefix('(') {
                inner.split(')').next().unwrap_or("")
            } else {
                pk.split([',', ')']).next().unwrap_or("")
            };
            partition_key = first.split(',').map(|c| c.trim().to_string()).collect();
            continue;
        }
        let mut words = part.split_whitespace();
        let col = words.next().expect("column name").to_string();
        let ty: Vec<&str> = words.collect();
        let inline_pk = ty.ends_with(&["PRIMARY", "KEY"]);
        let ty = if inline_pk {
            &ty[..ty.len() - 2]
        } else {
            &ty[..]
        };
        if inline_pk {
            partition_key = vec![col.clone()];
        }
        columns.insert(col, ty.join(" "));
    }
    (
        name.trim().to_string(),
        Table {
            columns,
            partition_key,
        },
    )
}

/// What a statement touches.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Parsed {
    pub table: String,
    /// Columns read (SELECT) or written (INSERT, UPDATE SET).
    pub columns: Vec<String>,
    /// `(column, operator)` of the WHERE clause.
    pub restrictions: Vec<(String, String)>,
    /// Columns of the IF clause (`IF NOT EXISTS`: none).
    pub conditions: Vec<String>,
    /// The column of each bind marker in order; `LIMIT ?` is `[limit]`.
    pub binds: Vec<String>,
    pub allow_filtering: bool,
    pub select: bool,
}

fn conds(clause: &str) -> Vec<(String, String, String)> {
    clause
        .split(" AND ")
        .map(|c| {
            let mut w = c.split_whitespace();
            let col = w.next().unwrap_or_default().to_string();
            let op = w.next().unwrap_or_default().to_string();
            let value = w.collect::<Vec<_>>().join(" ");
            (col, op, value)
        })
        .collect()
}

/// Parses the statement forms the adapter uses.
pub(super) fn parse(stmt: &str) -> Parsed {
    let mut p = Parsed {
        table: String::new(),
        columns: Vec::new(),
        restrictions: Vec::new(),
        conditions: Vec::new(),
        binds: Vec::new(),
        allow_filtering: false,
        select: false,
    };
    let (mut main, limit) = match stmt.split_once(" LIMIT ") {
        Some((m, l)) => (m.to_string(), Some(l.trim().to_string())),
        None => (stmt.to_string(), None),
    };
    if let Some(m) = main.strip_suffix(" ALLOW FILTERING") {
        p.allow_filtering = true;
        main = m.to_string();
    }
    if let Some((m, _order)) = main.split_once(" ORDER BY ") {
        main = m.to_string();
    }
    let (main, cond) = match main.split_once(" IF ") {
        Some((m, c)) => (m.to_string(), Some(c.to_string())),
        None => (main, None),
    };
    let (head, where_) = match main.split_once(" WHERE ") {
        Some((h, w)) => (h.to_string(), Some(w.to_string())),
        None => (main.clone(), None),
    };
    if let Some(rest) = head.strip_prefix("SELECT ") {
        p.select = true;
        let (cols, table) = rest.split_once(" FROM ").expect("FROM");
        p.columns = cols.split(',').map(|c| c.trim().to_string()).collect();
        p.table = table.trim().to_string();
    } else if let Some(rest) = head.strip_prefix("INSERT INTO ") {
        let (table, rest) = rest.split_once('(').expect("columns");
        let (cols, _values) = rest.split_once(')').expect("columns end");
        p.table = table.trim().to_string();
        p.columns = cols.split(',').map(|c| c.trim().to_string()).collect();
        p.binds = p.columns.clone();
    } else if let Some(rest) = head.strip_prefix("UPDATE ") {
        let (table, sets) = rest.split_once(" SET ").expect("SET");
        p.table = table.trim().to_string();
        for (col, value) in sets.split(',').filter_map(|s| s.split_once('=')) {
            let col = col.trim().to_string();
            if value.trim() == "?" {
                p.binds.push(col.clone());
            }
            p.columns.push(col);
        }
    } else if let Some(rest) = head.strip_prefix("DELETE FROM ") {
        p.table = rest.trim().to_string();
    } else {
        panic!("unknown statement form: {stmt}");
    }
    for (col, op, value) in where_.as_deref().map(conds).unwrap_or_default() {
        if value == "?" {
            p.binds.push(col.clone());
        }
        p.restrictions.push((col, op));
    }
    if let Some(c) = cond.filter(|c| c != "NOT EXISTS") {
        for (col, _op, value) in conds(&c) {
            if value == "?" {
                p.binds.push(col.clone());
            }
            p.conditions.push(col);
        }
    }
    if limit.as_deref() == Some("?") {
        p.binds.push("[limit]".into());
    }
    p
}

#[test]
fn every_statement_names_only_migrated_tables_and_columns() {
    let tables = schema();
    assert!(tables.len() >= 13, "tables parsed: {:?}", tables.keys());
    for (name, text) in ALL {
        let p = parse(text);
        let table = tables
            .get(&p.table)
            .unwrap_or_else(|| panic!("{name}: table `{}` is not in cql/", p.table));
        let known = |c: &String| table.columns.contains_key(c);
        for c in p.columns.iter().chain(p.conditions.iter()) {
            assert!(known(c), "{name}: `{}` has no column `{c}`", p.table);
        }
        for (c, _) in &p.restrictions {
            assert!(known(c), "{name}: `{}` has no column `{c}`", p.table);
        }
        for b in &p.binds {
            assert!(b == "[limit]" || known(b), "{name}: bind marker for `{b}`");
        }
        let insert = text.starts_with("INSERT");
        if insert {
            for pk in &table.partition_key {
                assert!(
                    p.columns.contains(pk),
                    "{name}: partition key `{pk}` not written"
                );
            }
        } else if *text == KV_SCAN_ALL {
            assert!(
                p.allow_filtering,
                "{name}: the full scan says ALLOW FILTERING"
            );
        } else {
            for pk in &table.partition_key {
                assert!(
                    p.restrictions.iter().any(|(c, op)| c == pk && op == "="),
                    "{name}: partition key `{pk}` of `{}` not bound with =",
                    p.table
                );
            }
            assert!(
                !p.allow_filtering,
                "{name}: ALLOW FILTERING outside the documented scan"
            );
        }
        // Statements and their texts agree on being conditional.
        assert_eq!(
            text.contains(" IF "),
            !p.conditions.is_empty() || text.ends_with("IF NOT EXISTS"),
            "{name}"
        );
    }
}

#[test]
fn the_parser_reads_what_the_migrations_say() {
    let tables = schema();
    let messages = &tables["messages"];
    assert_eq!(messages.partition_key, vec!["thread_id", "bucket"]);
    assert_eq!(messages.columns["bucket"], "bigint");
    assert_eq!(tables["threads"].columns["members"], "list<text>");
    assert_eq!(tables["rooms"].partition_key, vec!["id"]);
    assert_eq!(tables["kv"].partition_key, vec!["part"]);
    assert_eq!(
        tables["media_jobs_unfinished"].partition_key,
        vec!["bucket"]
    );
    for (name, t) in &tables {
        for (col, ty) in &t.columns {
            assert!(
                !ty.is_empty() && !ty.contains(' ') && !col.contains(['(', ')']),
                "{name}: column `{col}` of type `{ty}`"
            );
        }
    }
    let p = parse(super::statements::CURSOR_UPDATE);
    assert_eq!(
        p.binds,
        vec![
            "delivered",
            "read",
            "thread_id",
            "user_id",
            "delivered",
            "read"
        ]
    );
    // A wrong column would be caught.
    let bad = parse("SELECT nope FROM rooms WHERE id = ?");
    assert!(!tables["rooms"].columns.contains_key(&bad.columns[0]));
}
