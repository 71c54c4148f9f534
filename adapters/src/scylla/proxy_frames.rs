//! Forged CQL answers for the adapter's tests against scylla-proxy in dry
//! mode (`proxy_tests.rs`): no server
//! behind it, every answer forged here. The handshake succeeds (forged
//! SUPPORTED / READY; metadata queries fail and the driver goes on with
//! placeholder metadata), PREPAREs are answered from the statement texts
//! and the `cql/` schema (`schema_check.rs` gives the bind markers' types),
//! EXECUTE and BATCH get empty rows, `[applied] = true` or VOID, unless a
//! test's rule answers first with an error. Each rule reports the frames it
//! answered, so the tests count requests: what is retried, what is not,
//! and which reads run at the serial consistency.
//!
//! What this does not show: anything about data (the proxy stores nothing).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use chalktalk_actors::store::StoreError;
use scylla_proxy::{
    Condition, Node, Proxy, Reaction, RequestFrame, RequestOpcode, RequestReaction, RequestRule,
    ResponseFrame, ResponseOpcode, RunningProxy,
};
use tokio::sync::mpsc;

use super::schema_check::{parse, schema};
use super::statements::ALL;
use super::{ScyllaOptions, ScyllaStore};

pub(super) type Feedback = mpsc::UnboundedReceiver<(RequestFrame, Option<u16>)>;

pub(super) fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s.as_bytes());
}

pub(super) fn put_type(buf: &mut BytesMut, ty: &str) {
    let id = match ty {
        "text" | "[key]" => 0x000D,
        "bigint" => 0x0002,
        "blob" => 0x0003,
        "boolean" => 0x0004,
        "float" => 0x0008,
        "int" => 0x0009,
        "tinyint" => 0x0014,
        "list<text>" => {
            buf.put_u16(0x0020);
            buf.put_u16(0x000D);
            return;
        }
        other => panic!("no CQL type id for {other}"),
    };
    buf.put_u16(id);
}

/// Column specs: flags (global table spec), count, keyspace, table, specs.
pub(super) fn put_columns(buf: &mut BytesMut, table: &str, cols: &[(String, String)]) {
    buf.put_i32(0x0001);
    buf.put_i32(cols.len() as i32);
    put_string(buf, "ks");
    put_string(buf, table);
    for (name, ty) in cols {
        put_string(buf, name);
        put_type(buf, ty);
    }
}

/// The statement name behind a prepared id (`<NAME>`).
pub(super) fn id_of(name: &str) -> String {
    format!("<{name}>")
}

pub(super) fn name_of_text(text: &str) -> Option<&'static str> {
    ALL.iter().find(|(_, t)| *t == text).map(|(n, _)| *n)
}

pub(super) fn text_of(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// What the proxy answers to requests that are not the adapter's (the
/// driver's metadata queries): an error, which the driver survives.
pub(super) fn refuse(frame: &RequestFrame) -> ResponseFrame {
    ResponseFrame::forged_error(frame.params, scylla::errors::DbError::ServerError, None)
        .expect("error frame")
}

/// RESULT Prepared for a statement of `ALL`: its bind markers typed from
/// the schema, no result metadata (the driver reads it from each answer).
pub(super) fn prepared(frame: RequestFrame) -> ResponseFrame {
    let body = &frame.body;
    let len = i32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    let text = std::str::from_utf8(&body[4..4 + len]).unwrap_or("");
    let Some(name) = name_of_text(text) else {
        return refuse(&frame);
    };
    let p = parse(text);
    let table = &schema()[&p.table];
    let binds: Vec<(String, String)> = p
        .binds
        .iter()
        .map(|b| {
            let ty = if b == "[limit]" {
                "int".to_string()
            } else {
                table.columns[b].clone()
            };
            (b.clone(), ty)
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.put_i32(0x0004);
    let id = id_of(name);
    buf.put_u16(id.len() as u16);
    buf.put_slice(id.as_bytes());
    // Variables metadata: flags, count, pk count (0: no token routing), specs.
    buf.put_i32(0x0001);
    buf.put_i32(binds.len() as i32);
    buf.put_i32(0);
    put_string(&mut buf, "ks");
    put_string(&mut buf, &p.table);
    for (name, ty) in &binds {
        put_string(&mut buf, name);
        put_type(&mut buf, ty);
    }
    // Result metadata: none.
    buf.put_i32(0x0004);
    buf.put_i32(0);
    ResponseFrame::new(
        frame.params.for_response(),
        ResponseOpcode::Result,
        buf.freeze(),
    )
}

/// The statement name an EXECUTE or BATCH names first.
pub(super) fn executed(frame: &RequestFrame) -> String {
    let b = &frame.body;
    let at = if frame.opcode == RequestOpcode::Batch {
        4
    } else {
        0
    };
    let len = u16::from_be_bytes([b[at], b[at + 1]]) as usize;
    let id = std::str::from_utf8(&b[at + 2..at + 2 + len]).unwrap_or("");
    id.trim_matches(['<', '>']).to_string()
}

/// The consistency of an EXECUTE (the short after its id).
pub(super) fn consistency(frame: &RequestFrame) -> u16 {
    let b = &frame.body;
    let len = u16::from_be_bytes([b[0], b[1]]) as usize;
    u16::from_be_bytes([b[2 + len], b[3 + len]])
}

pub(super) const LOCAL_SERIAL: u16 = 0x0009;

/// ROWS with `rows` (each a list of serialized values) for `cols`.
pub(super) fn rows(
    frame: &RequestFrame,
    table: &str,
    cols: &[(String, String)],
    rows: &[Vec<Vec<u8>>],
) -> ResponseFrame {
    let mut buf = BytesMut::new();
    buf.put_i32(0x0002);
    put_columns(&mut buf, table, cols);
    buf.put_i32(rows.len() as i32);
    for row in rows {
        for v in row {
            buf.put_i32(v.len() as i32);
            buf.put_slice(v);
        }
    }
    ResponseFrame::new(
        frame.params.for_response(),
        ResponseOpcode::Result,
        buf.freeze(),
    )
}

pub(super) fn applied_rows(frame: &RequestFrame, applied: bool) -> ResponseFrame {
    let cols = [("[applied]".to_string(), "boolean".to_string())];
    rows(frame, "t", &cols, &[vec![vec![u8::from(applied)]]])
}

/// The default answer: `[applied] = true` for conditional statements,
/// empty rows for reads, VOID for writes.
pub(super) fn answer(frame: RequestFrame) -> ResponseFrame {
    let name = executed(&frame);
    let Some(text) = text_of(&name) else {
        return refuse(&frame);
    };
    if text.contains(" IF ") {
        return applied_rows(&frame, true);
    }
    let p = parse(text);
    if p.select {
        let table = &schema()[&p.table];
        let cols: Vec<(String, String)> = p
            .columns
            .iter()
            .map(|c| (c.clone(), table.columns[c].clone()))
            .collect();
        return rows(&frame, &p.table, &cols, &[]);
    }
    let mut buf = BytesMut::new();
    buf.put_i32(0x0001);
    ResponseFrame::new(
        frame.params.for_response(),
        ResponseOpcode::Result,
        buf.freeze(),
    )
}

pub(super) fn body_has(name: &str) -> Condition {
    Condition::BodyContainsCaseSensitive(id_of(name).into_bytes().into_boxed_slice())
}

pub(super) fn executes(name: &str) -> Condition {
    Condition::RequestOpcode(RequestOpcode::Execute).and(body_has(name))
}

pub(super) fn batches(name: &str) -> Condition {
    Condition::RequestOpcode(RequestOpcode::Batch).and(body_has(name))
}

/// Handshake, prepares and default answers after `first` (a test's rules);
/// every EXECUTE/BATCH the defaults answer is reported on `seen`.
pub(super) fn rules(
    first: Vec<RequestRule>,
    seen: mpsc::UnboundedSender<(RequestFrame, Option<u16>)>,
) -> Vec<RequestRule> {
    let mut all = vec![
        RequestRule(
            Condition::RequestOpcode(RequestOpcode::Options),
            RequestReaction::forge_response(Arc::new(|f: RequestFrame| {
                ResponseFrame::forged_supported(f.params, &HashMap::new()).expect("supported")
            })),
        ),
        RequestRule(
            Condition::RequestOpcode(RequestOpcode::Startup)
                .or(Condition::RequestOpcode(RequestOpcode::Register)),
            RequestReaction::forge_response(Arc::new(|f: RequestFrame| {
                ResponseFrame::forged_ready(f.params)
            })),
        ),
        RequestRule(
            Condition::RequestOpcode(RequestOpcode::Prepare),
            RequestReaction::forge_response(Arc::new(prepared)),
        ),
    ];
    all.extend(first);
    all.push(RequestRule(
        Condition::RequestOpcode(RequestOpcode::Execute)
            .or(Condition::RequestOpcode(RequestOpcode::Batch)),
        RequestReaction::forge_response(Arc::new(answer)).with_feedback_when_performed(seen),
    ));
    // Metadata queries and anything else: an error (the driver copes).
    all.push(RequestRule(
        Condition::True,
        RequestReaction::forge().server_error(),
    ));
    all
}

pub(super) struct Harness {
    pub proxy: RunningProxy,
    pub store: Arc<ScyllaStore>,
    seen: Feedback,
    seen_tx: mpsc::UnboundedSender<(RequestFrame, Option<u16>)>,
}

impl Harness {
    pub(super) async fn start() -> Harness {
        let addr = SocketAddr::new(scylla_proxy::get_exclusive_local_address(), 9042);
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let proxy = Proxy::builder()
            .with_node(
                Node::builder()
                    .proxy_address(addr)
                    .request_rules(rules(Vec::new(), seen_tx.clone()))
                    .build_dry_mode(),
            )
            .build()
            .run()
            .await
            .expect("proxy runs");
        let mut opts = ScyllaOptions::from_url(&format!("scylla://{addr}/ks")).expect("url");
        opts.timeout = Duration::from_secs(3);
        let store = ScyllaStore::open_unmigrated(&opts)
            .await
            .expect("session through the proxy");
        Harness {
            proxy,
            store,
            seen,
            seen_tx,
        }
    }

    /// Installs `first` before the defaults; returns nothing seen so far.
    pub(super) fn script(&mut self, first: Vec<RequestRule>) {
        let rules = rules(first, self.seen_tx.clone());
        self.proxy.running_nodes[0].change_request_rules(Some(rules));
        while self.seen.try_recv().is_ok() {}
    }

    /// Statement names the defaults answered since the last call.
    pub(super) fn answered(&mut self) -> Vec<(String, u16)> {
        let mut out = Vec::new();
        while let Ok((f, _)) = self.seen.try_recv() {
            let c = if f.opcode == RequestOpcode::Execute {
                consistency(&f)
            } else {
                0
            };
            out.push((executed(&f), c));
        }
        out
    }
}

/// A rule answering `cond` with `reaction`, reporting on a fresh channel.
pub(super) fn failing(cond: Condition, reaction: RequestReaction) -> (RequestRule, Feedback) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        RequestRule(cond, reaction.with_feedback_when_performed(tx)),
        rx,
    )
}

pub(super) fn count(rx: &mut Feedback) -> usize {
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    n
}

pub(super) fn assert_unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: {r:?}"
    );
}
