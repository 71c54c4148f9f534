//! What the caller belongs to, for the app's home screen: `GET
//! /api/v1/me/rooms` (review rooms with their last activity) and `GET
//! /api/v1/me/threads` (chat threads with the caller's unread count and
//! the last message). Both read the store's membership index
//! (`Store::memberships`) and then each room's or thread's head, so they
//! cost a few reads per entry; admins get their own memberships only.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use chalktalk_actors::store::MembershipKind;
use chalktalk_protocol::Message;
use serde_json::{Value, json};

use super::{ApiResult, LiveCaller, storage};
use crate::app::App;

/// Messages after the caller's read cursor that are looked at to count
/// the unread ones; `unread` is at most this.
pub const UNREAD_SCAN: u64 = 100;

/// `GET /api/v1/me/rooms`: the review rooms you are a member of, most
/// recently active first.
#[utoipa::path(get, path = "/api/v1/me/rooms", tag = "me", responses((status = 200, description = "{rooms: [{room, video_id, owner, created_ms, head, last_activity_ms}]}: last_activity_ms is the time of the newest event (created_ms when none), newest first"), (status = 401, description = "unauthorized"), (status = 503, description = "unavailable")), security(("bearer" = [])))]
pub async fn rooms(State(app): State<App>, LiveCaller(c): LiveCaller) -> ApiResult {
    let store = &app.perms.store;
    let ids = store
        .memberships(&c.sub, MembershipKind::Room)
        .await
        .map_err(storage)?;
    let mut out: Vec<(u64, Value)> = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(m) = store.room(&id).await.map_err(storage)? else {
            continue;
        };
        let head = store.room_head(&id).await.map_err(storage)?;
        let last = if head == 0 {
            m.created_ms
        } else {
            store
                .room_events(&id, head - 1, 1)
                .await
                .map_err(storage)?
                .first()
                .map_or(m.created_ms, |e| e.at_ms)
        };
        out.push((
            last,
            json!({
                "room": m.id, "video_id": m.video_id, "owner": m.owner,
                "created_ms": m.created_ms, "head": head, "last_activity_ms": last,
            }),
        ));
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    let rooms: Vec<Value> = out.into_iter().map(|(_, v)| v).collect();
    Ok(Json(json!({ "rooms": rooms })).into_response())
}

/// Whether `m` counts as unread for `me`: a message from someone else
/// (edits and deletions of earlier messages do not count).
fn counts(m: &Message, me: &str) -> bool {
    m.from != me && m.edit.is_none()
}

/// `GET /api/v1/me/threads`: your chat threads with your cursor, the
/// number of unread messages and the newest message, most recent first.
#[utoipa::path(get, path = "/api/v1/me/threads", tag = "me", responses((status = 200, description = "{threads: [{thread: ThreadInfo, read, delivered, unread, last: Message|null, last_ms}]}: unread counts messages from others after your read cursor that are not edits or deletions, looking at most 100 messages past the cursor (so at most 100); newest last_ms first"), (status = 401, description = "unauthorized"), (status = 503, description = "unavailable")), security(("bearer" = [])))]
pub async fn threads(State(app): State<App>, LiveCaller(c): LiveCaller) -> ApiResult {
    let store = &app.perms.store;
    let ids = store
        .memberships(&c.sub, MembershipKind::Thread)
        .await
        .map_err(storage)?;
    let mut out: Vec<(u64, Value)> = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(m) = store.thread(&id).await.map_err(storage)? else {
            continue;
        };
        if !m.members.contains(&c.sub) {
            continue;
        }
        let head = store.thread_head(&id).await.map_err(storage)?;
        let cursor = store
            .cursors(&id)
            .await
            .map_err(storage)?
            .into_iter()
            .find(|k| k.user == c.sub);
        let (read, delivered) = cursor.map_or((0, 0), |k| (k.read.min(head), k.delivered));
        let scan = (head - read).min(UNREAD_SCAN);
        let after = store
            .messages_after(&id, head - scan, scan as usize)
            .await
            .map_err(storage)?;
        let unread = after.iter().filter(|x| counts(x, &c.sub)).count();
        let last = after.last().cloned();
        let last = match last {
            Some(l) => Some(l),
            None if head > 0 => store
                .messages_after(&id, head - 1, 1)
                .await
                .map_err(storage)?
                .pop(),
            None => None,
        };
        let last_ms = last.as_ref().map_or(m.created_ms, |l| l.at_ms);
        let info = chalktalk_protocol::ThreadInfo {
            id: m.id.clone(),
            kind: m.kind,
            title: m.title.clone(),
            created_by: m.created_by.clone(),
            members: m.members.clone(),
            head,
            room: chalktalk_protocol::room_of_thread(m.kind, &m.id).map(str::to_owned),
        };
        out.push((
            last_ms,
            json!({
                "thread": info, "read": read, "delivered": delivered,
                "unread": unread, "last": last, "last_ms": last_ms,
            }),
        ));
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    let threads: Vec<Value> = out.into_iter().map(|(_, v)| v).collect();
    Ok(Json(json!({ "threads": threads })).into_response())
}
