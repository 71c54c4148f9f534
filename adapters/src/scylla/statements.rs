//! Every CQL statement the ScyllaDB adapter runs on the data path, as text
//! ([`ALL`], checked against the `cql/` migrations by `schema_check.rs`),
//! prepared once when the store opens ([`Statements::prepare`]).
//!
//! Rules the texts follow (and the schema check enforces): each names one
//! table of the migrations and only its columns; every SELECT, UPDATE and
//! DELETE binds the whole partition key with `=` (token-aware routing: the
//! driver sends the request to a replica of that partition), except the
//! one documented full scan, [`KV_SCAN_ALL`]. Conditional statements
//! (`IF ...`) are lightweight transactions, run at the store's serial
//! consistency.

use scylla::client::session::Session;
use scylla::errors::PrepareError;
use scylla::statement::prepared::PreparedStatement;

macro_rules! statements {
    ($($name:ident = $text:expr;)*) => {
        $(pub(super) const $name: &str = $text;)*

        /// Every statement's name and text.
        #[cfg_attr(not(test), allow(dead_code))]
        pub(super) const ALL: &[(&str, &str)] = &[$((stringify!($name), $name)),*];

        /// The prepared statements, one field per text.
        #[allow(non_snake_case)]
        pub(super) struct Statements {
            $(pub $name: PreparedStatement,)*
        }

        impl Statements {
            /// Prepares every statement (one round trip each, at open).
            pub(super) async fn prepare(session: &Session) -> Result<Statements, (String, PrepareError)> {
                Ok(Statements {
                    $($name: session
                        .prepare($name)
                        .await
                        .map_err(|e| (stringify!($name).to_string(), e))?,)*
                })
            }
        }
    };
}

/// The version table's partition: one row per applied migration.
pub(super) const SCHEMA_SCOPE: &str = "chalktalk";

statements! {
    SCHEMA_VERSIONS = "SELECT version FROM schema_version WHERE scope = ?";

    ROOM_INSERT = "INSERT INTO rooms (id, video_id, owner, aspect, fps, created_ms) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    ROOM_GET = "SELECT id, video_id, owner, aspect, fps, created_ms FROM rooms WHERE id = ?";
    ROOM_EVENT_INSERT = "INSERT INTO room_events (room_id, seq, op_id, author, at_ms, body) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    ROOM_EVENTS_AFTER = "SELECT seq, body FROM room_events WHERE room_id = ? AND seq > ? LIMIT ?";
    ROOM_EVENTS_RANGE = "SELECT seq, body FROM room_events WHERE room_id = ? AND seq >= ? AND seq <= ?";
    ROOM_HEAD = "SELECT seq FROM room_events WHERE room_id = ? ORDER BY seq DESC LIMIT 1";
    ROOM_FENCE_GET = "SELECT fence FROM room_events WHERE room_id = ? LIMIT 1";
    ROOM_FENCE_CAS = "UPDATE room_events SET fence = ? WHERE room_id = ? IF fence = ?";
    SNAPSHOT_INSERT = "INSERT INTO room_snapshots (room_id, seq, body) VALUES (?, ?, ?) IF NOT EXISTS";
    SNAPSHOT_UPDATE = "UPDATE room_snapshots SET seq = ?, body = ? WHERE room_id = ? IF seq < ?";
    SNAPSHOT_GET = "SELECT seq, body FROM room_snapshots WHERE room_id = ?";

    THREAD_INSERT = "INSERT INTO threads (id, kind, title, created_by, members, created_ms) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    THREAD_GET = "SELECT id, kind, title, created_by, members, created_ms FROM threads WHERE id = ?";
    THREAD_MEMBERS_CAS = "UPDATE threads SET members = ? WHERE id = ? IF created_by = ? AND members = ?";
    THREAD_FENCE_GET = "SELECT fence FROM threads WHERE id = ?";
    THREAD_FENCE_CAS = "UPDATE threads SET fence = ? WHERE id = ? IF fence = ?";
    MESSAGE_INSERT = "INSERT INTO messages (thread_id, bucket, seq, msg_id, sender, at_ms, body) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    MESSAGES_AFTER = "SELECT seq, body FROM messages WHERE thread_id = ? AND bucket = ? AND seq > ? ORDER BY seq ASC LIMIT ?";
    MESSAGES_BEFORE = "SELECT seq, body FROM messages WHERE thread_id = ? AND bucket = ? AND seq < ? LIMIT ?";
    MESSAGES_RANGE = "SELECT seq, body FROM messages WHERE thread_id = ? AND bucket = ? AND seq >= ? AND seq <= ?";
    BUCKET_HEAD = "SELECT seq FROM messages WHERE thread_id = ? AND bucket = ? LIMIT 1";
    CURSOR_GET = "SELECT delivered, read FROM read_cursors WHERE thread_id = ? AND user_id = ?";
    CURSOR_INSERT = "INSERT INTO read_cursors (thread_id, user_id, delivered, read) VALUES (?, ?, ?, ?) IF NOT EXISTS";
    CURSOR_UPDATE = "UPDATE read_cursors SET delivered = ?, read = ? WHERE thread_id = ? AND user_id = ? IF delivered = ? AND read = ?";
    CURSORS = "SELECT user_id, delivered, read FROM read_cursors WHERE thread_id = ?";

    INBOX_INSERT = "INSERT INTO inbox (user_id, seq, at_ms, body) VALUES (?, ?, ?, ?) IF NOT EXISTS";
    INBOX_AFTER = "SELECT seq, body FROM inbox WHERE user_id = ? AND seq > ? LIMIT ?";
    INBOX_RANGE = "SELECT seq, body FROM inbox WHERE user_id = ? AND seq >= ? AND seq <= ?";
    INBOX_HEAD = "SELECT seq FROM inbox WHERE user_id = ? ORDER BY seq DESC LIMIT 1";
    MEMBERSHIP_INSERT = "INSERT INTO memberships (user_id, kind, target_id) VALUES (?, ?, ?)";
    MEMBERSHIPS = "SELECT target_id FROM memberships WHERE user_id = ? AND kind = ?";
    MEMBERSHIP_DELETE = "DELETE FROM memberships WHERE user_id = ? AND kind = ? AND target_id = ?";

    ASSET_INSERT = "INSERT INTO media_assets (id, kind, owner, stage, created_ms, body) VALUES (?, ?, ?, ?, ?, ?)";
    ASSET_OWNER_INSERT = "INSERT INTO media_assets_by_owner (owner, id) VALUES (?, ?)";
    ASSET_GET = "SELECT body FROM media_assets WHERE id = ?";
    ASSET_DELETE = "DELETE FROM media_assets WHERE id = ?";
    ASSET_OWNER_DELETE = "DELETE FROM media_assets_by_owner WHERE owner = ? AND id = ?";
    ASSETS_OF = "SELECT id FROM media_assets_by_owner WHERE owner = ?";
    JOB_INSERT = "INSERT INTO media_jobs (id, created_ms, state, attempts, updated_ms, body) VALUES (?, ?, ?, ?, ?, ?)";
    JOB_UNFINISHED_INSERT = "INSERT INTO media_jobs_unfinished (bucket, created_ms, id) VALUES (?, ?, ?)";
    JOB_UNFINISHED_DELETE = "DELETE FROM media_jobs_unfinished WHERE bucket = ? AND created_ms = ? AND id = ?";
    JOB_GET = "SELECT body FROM media_jobs WHERE id = ?";
    JOBS_UNFINISHED = "SELECT id FROM media_jobs_unfinished WHERE bucket = ?";

    PROGRAM_INSERT = "INSERT INTO programs (id, coach, body) VALUES (?, ?, ?)";
    PROGRAM_COACH_INSERT = "INSERT INTO programs_by_coach (coach, id) VALUES (?, ?)";
    PROGRAM_GET = "SELECT body FROM programs WHERE id = ?";
    PROGRAMS_OF = "SELECT id FROM programs_by_coach WHERE coach = ?";
    ENTITLEMENT_INSERT = "INSERT INTO entitlements (user_id, program, body) VALUES (?, ?, ?)";
    ENTITLEMENT_PROGRAM_INSERT = "INSERT INTO entitlements_by_program (program, user_id) VALUES (?, ?)";
    ENTITLEMENT_GET = "SELECT body FROM entitlements WHERE user_id = ? AND program = ?";
    ENTITLEMENTS_OF = "SELECT body FROM entitlements WHERE user_id = ?";
    ENTITLED_USERS = "SELECT user_id FROM entitlements_by_program WHERE program = ?";
    PROGRESS_INSERT = "INSERT INTO program_progress (user_id, program, item, body) VALUES (?, ?, ?, ?)";
    PROGRESS_OF = "SELECT body FROM program_progress WHERE user_id = ? AND program = ?";
    ORDER_INSERT = "INSERT INTO orders (id, version, payment, body) VALUES (?, ?, ?, ?) IF NOT EXISTS";
    ORDER_UPDATE = "UPDATE orders SET version = ?, payment = ?, body = ? WHERE id = ? IF version = ?";
    ORDER_GET = "SELECT body FROM orders WHERE id = ?";
    ORDER_PAYMENT_INSERT = "INSERT INTO orders_by_payment (payment, id) VALUES (?, ?)";
    ORDER_BY_PAYMENT = "SELECT id FROM orders_by_payment WHERE payment = ?";
    ORDER_COACH_INSERT = "INSERT INTO orders_by_coach (coach, created_ms, id) VALUES (?, ?, ?)";
    ORDERS_OF_COACH = "SELECT id FROM orders_by_coach WHERE coach = ? AND created_ms >= ? AND created_ms < ?";
    ORDER_MONTH_INSERT = "INSERT INTO orders_by_month (bucket, created_ms, id) VALUES (?, ?, ?)";
    ORDERS_OF_MONTH = "SELECT id FROM orders_by_month WHERE bucket = ? AND created_ms >= ? AND created_ms < ?";
    RECEIPT_INSERT = "INSERT INTO payment_receipts (id, received_ms, body) VALUES (?, ?, ?) IF NOT EXISTS";
    RECEIPT_PUT = "INSERT INTO payment_receipts (id, received_ms, body) VALUES (?, ?, ?)";
    RECEIPT_GET = "SELECT body FROM payment_receipts WHERE id = ?";
    RECEIPT_PENDING_INSERT = "INSERT INTO payment_receipts_pending (bucket, received_ms, id) VALUES (?, ?, ?)";
    RECEIPT_PENDING_DELETE = "DELETE FROM payment_receipts_pending WHERE bucket = ? AND received_ms = ? AND id = ?";
    RECEIPTS_PENDING = "SELECT id FROM payment_receipts_pending WHERE bucket = ?";

    SUB_INSERT = "INSERT INTO billing_subscriptions (id, user_id, version, body) VALUES (?, ?, ?, ?) IF NOT EXISTS";
    SUB_UPDATE = "UPDATE billing_subscriptions SET user_id = ?, version = ?, body = ? WHERE id = ? IF version = ?";
    SUB_GET = "SELECT body FROM billing_subscriptions WHERE id = ?";
    SUB_USER_INSERT = "INSERT INTO billing_subscriptions_by_user (user_id, id) VALUES (?, ?)";
    SUBS_OF = "SELECT id FROM billing_subscriptions_by_user WHERE user_id = ?";
    SUB_ALL_INSERT = "INSERT INTO billing_subscriptions_all (bucket, id) VALUES (?, ?)";
    SUBS_ALL_AFTER = "SELECT id FROM billing_subscriptions_all WHERE bucket = ? AND id > ?";
    OVERRIDE_PUT = "INSERT INTO plan_overrides (user_id, body) VALUES (?, ?)";
    OVERRIDE_DELETE = "DELETE FROM plan_overrides WHERE user_id = ?";
    OVERRIDE_GET = "SELECT body FROM plan_overrides WHERE user_id = ?";
    AUDIT_PUT = "INSERT INTO billing_audit (subject, at_ms, id, body) VALUES (?, ?, ?, ?)";
    AUDIT_OF = "SELECT body FROM billing_audit WHERE subject = ?";
    PAYOUT_PUT = "INSERT INTO payout_accounts (coach, body) VALUES (?, ?)";
    PAYOUT_ID_PUT = "INSERT INTO payout_accounts_by_id (account_id, coach) VALUES (?, ?)";
    PAYOUT_GET = "SELECT body FROM payout_accounts WHERE coach = ?";
    PAYOUT_BY_ID = "SELECT coach FROM payout_accounts_by_id WHERE account_id = ?";

    KV_GET = "SELECT value FROM kv WHERE part = ? AND ns = ? AND key = ?";
    KV_PUT = "INSERT INTO kv (part, ns, key, value) VALUES (?, ?, ?, ?)";
    KV_DELETE = "DELETE FROM kv WHERE part = ? AND ns = ? AND key = ?";
    KV_PUT_IF_ABSENT = "UPDATE kv SET value = ? WHERE part = ? AND ns = ? AND key = ? IF value = null";
    KV_CHECK_ABSENT = "UPDATE kv SET value = null WHERE part = ? AND ns = ? AND key = ? IF value = null";
    KV_PUT_IF_EQUALS = "UPDATE kv SET value = ? WHERE part = ? AND ns = ? AND key = ? IF value = ?";
    KV_DELETE_IF_EQUALS = "DELETE FROM kv WHERE part = ? AND ns = ? AND key = ? IF value = ?";
    KV_SCAN_RANGE = "SELECT key, value FROM kv WHERE part = ? AND ns = ? AND key >= ? AND key < ? LIMIT ?";
    KV_SCAN_FROM = "SELECT key, value FROM kv WHERE part = ? AND ns = ? AND key >= ?";
    KV_SCAN_ALL = "SELECT key, value FROM kv WHERE ns = ? ALLOW FILTERING";
}
