//! Thread history and sending a message over HTTP (the WebSocket
//! fallback). Sending goes through the thread's actor, the single writer,
//! so members viewing the thread over WebSocket see the message live.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chalktalk_actors::outbound::{Out, Outbound};
use chalktalk_actors::store::ThreadMeta;
use chalktalk_actors::thread::{Draft, ThreadMsg};
use chalktalk_protocol::{Attachment, ErrorCode, Reply, Role, ServerFrame, decode_server};
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, LiveCaller, require, storage, subject};
use crate::accounts::JsonBody;
use crate::app::App;
use crate::http::ApiError;
use chalktalk_services::auth::Claims;

/// Session ids of HTTP senders (apart from WebSocket sessions).
static NEXT: AtomicU64 = AtomicU64::new(1 << 62);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The thread if `c` is a member (admins: any), else 404.
async fn member_thread(app: &App, c: &Claims, id: &str) -> Result<ThreadMeta, ApiError> {
    let hidden = || ApiError::not_found(format!("no thread {id} of yours"));
    if id.is_empty() || id.len() > 128 {
        return Err(hidden());
    }
    let meta = app
        .perms
        .store
        .thread(id)
        .await
        .map_err(storage)?
        .ok_or_else(hidden)?;
    if c.role != Role::Admin && !meta.members.contains(&c.sub) {
        return Err(hidden());
    }
    Ok(meta)
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<u64>,
    limit: Option<u32>,
}

/// `GET /api/v1/threads/{id}/messages[?before=seq&limit=n]`: up to
/// `limit` (1..=100, default 50) messages before `before`, ascending.
#[utoipa::path(get, path = "/api/v1/threads/{id}/messages", tag = "threads", params(("id" = String, Path, description = "thread id"), ("before" = Option<u64>, Query, description = "messages with seq < before"), ("limit" = Option<u32>, Query, description = "1..=100, default 50")), responses((status = 200, description = "{thread, messages: [Message], more}"), (status = 404, description = "not a thread of yours"), (status = 422, description = "validation_failed"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn history(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult {
    let meta = member_thread(&app, &c, &id).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "1 to 100"));
    }
    let store = &app.perms.store;
    let before = q.before.unwrap_or(u64::MAX);
    let msgs = store
        .messages_before(&meta.id, before, limit as usize + 1)
        .await
        .map_err(storage)?;
    let more = msgs.len() > limit as usize;
    let msgs = msgs[msgs.len().saturating_sub(limit as usize)..].to_vec();
    Ok(Json(json!({ "thread": meta.id, "messages": msgs, "more": more })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SendReq {
    msg_id: Option<String>,
    text: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    attachments: Vec<Attachment>,
    reply_to: Option<u64>,
}

fn ws_error(code: ErrorCode, msg: String) -> ApiError {
    match code {
        ErrorCode::Forbidden => ApiError::forbidden(msg),
        ErrorCode::NotFound | ErrorCode::NotMember => ApiError::not_found(msg),
        ErrorCode::Overloaded => ApiError::busy(1, msg),
        ErrorCode::Internal | ErrorCode::Unavailable => ApiError::unavailable(msg),
        _ => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            msg.clone(),
        )
        .with("fields", json!({ "message": msg })),
    }
}

/// `POST /api/v1/threads/{id}/messages` `{"msg_id", "text", "attachments"?,
/// "reply_to"?}`: 201 `{"seq", "dup"}` once stored. Same rules as the
/// WebSocket `send` (membership, the matrix, limits, idempotent `msg_id`).
#[utoipa::path(post, path = "/api/v1/threads/{id}/messages", tag = "threads", params(("id" = String, Path, description = "thread id")), request_body = SendReq, responses((status = 201, description = "{thread, seq, dup: false}"), (status = 200, description = "{thread, seq, dup: true}"), (status = 403, description = "the matrix refuses"), (status = 404, description = "not a thread of yours"), (status = 422, description = "validation_failed"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn send(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<SendReq>,
) -> ApiResult {
    let meta = member_thread(&app, &c, &id).await?;
    if !meta.members.contains(&c.sub) {
        return Err(ApiError::forbidden(
            "admins read threads; only members send",
        ));
    }
    require(
        app.perms
            .message(subject(&c), meta.kind, &meta.members)
            .await
            .map_err(storage)?,
    )?;
    let mut fields = serde_json::Map::new();
    if b.msg_id.as_deref().is_none_or(str::is_empty) {
        fields.insert("msg_id".into(), "required".into());
    }
    if b.text.is_none() && b.attachments.is_empty() {
        fields.insert("text".into(), "required".into());
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let draft = Draft {
        msg_id: b.msg_id.unwrap_or_default(),
        text: b.text.unwrap_or_default(),
        attachments: b.attachments,
        reply_to: b.reply_to,
    };
    let session = NEXT.fetch_add(1, Ordering::Relaxed);
    let (out, mut rx) = Outbound::new(
        session,
        c.sub.clone(),
        "http".into(),
        app.directory.deps.stats.clone(),
    );
    let handle = app
        .directory
        .thread(&meta.id)
        .await
        .map_err(|e| ApiError::unavailable(format!("thread unavailable: {e:?}")))?;
    handle
        .send(ThreadMsg::Send { out, req: 1, draft }, false)
        .map_err(|(e, _)| ApiError::busy(1, format!("the thread is busy ({e:?}); retry")))?;
    let reply = tokio::time::timeout(SEND_TIMEOUT, async {
        while let Some(o) = rx.recv().await {
            let Out::Frame(bytes) = o else { continue };
            match decode_server(&bytes) {
                Ok(ServerFrame::Ok { id: 1, r }) => return Ok(r),
                Ok(ServerFrame::Err { id: 1, code, msg }) => return Err(ws_error(code, msg)),
                _ => {}
            }
        }
        Err(ApiError::unavailable("the thread stopped; retry"))
    })
    .await
    .map_err(|_| ApiError::unavailable("the thread did not answer in time; retry"))??;
    match reply {
        Reply::Ack { seq, dup } => {
            let status = if dup {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((
                status,
                Json(json!({ "thread": meta.id, "seq": seq, "dup": dup })),
            )
                .into_response())
        }
        other => Err(ApiError::internal(format!("unexpected reply {other:?}"))),
    }
}
