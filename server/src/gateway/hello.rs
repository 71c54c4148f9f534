//! The hello handshake of a WebSocket connection: the first frame must be
//! a binary `hello` within [`HELLO_TIMEOUT`] naming a supported protocol
//! version, a valid device and a token (in the hello, the header or the
//! subprotocol) that is valid and whose session is not revoked. Any failure
//! answers an error frame and closes the socket with the matching close code.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use chalktalk_actors::outbound::err_frame;
use chalktalk_protocol::{ClientMsg, CloseCode, ErrorCode, decode_client, negotiate, valid_id};
use futures_util::StreamExt;

use super::App;

/// Time allowed for the hello frame.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn close(ws: &mut WebSocket, code: u16, reason: &str) {
    let _ = ws
        .send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// tungstenite reports an oversized message as a capacity error.
pub(super) fn is_too_big(e: &axum::Error) -> bool {
    let s = e.to_string();
    s.contains("too long") || s.contains("Space limit") || s.contains("too big")
}

pub(super) struct Hello {
    pub(super) user: String,
    pub(super) role: chalktalk_protocol::Role,
    /// Row of the permission matrix (the token's plan).
    pub(super) plan: chalktalk_services::accounts::Plan,
    /// Sign-in session of the token (none for dev tokens).
    pub(super) sid: Option<String>,
    pub(super) device: String,
    pub(super) version: u16,
    pub(super) inbox_since: Option<u64>,
}

/// Reads and checks the first frame; on failure the socket is closed.
pub(super) async fn hello(
    ws: &mut WebSocket,
    app: &App,
    header_token: Option<String>,
) -> Option<Hello> {
    let first = match tokio::time::timeout(HELLO_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(WsMessage::Binary(b)))) => b,
        Ok(Some(Ok(_))) => {
            let _ = ws
                .send(WsMessage::Binary(err_frame(
                    0,
                    ErrorCode::HelloRequired,
                    "the first frame must be a binary hello",
                )))
                .await;
            close(ws, CloseCode::HELLO_REQUIRED, "hello required").await;
            return None;
        }
        Ok(Some(Err(e))) => {
            tracing::debug!(%e, "socket error before hello");
            if is_too_big(&e) {
                close(ws, CloseCode::TOO_BIG, "frame larger than max_frame_bytes").await;
            }
            return None;
        }
        Ok(None) => return None,
        Err(_) => {
            close(ws, CloseCode::HELLO_REQUIRED, "no hello in time").await;
            return None;
        }
    };
    let refuse = async |ws: &mut WebSocket, id, code: ErrorCode, msg: String, close_code| {
        let _ = ws
            .send(WsMessage::Binary(err_frame(id, code, msg.clone())))
            .await;
        close(ws, close_code, code.as_str()).await;
    };
    let frame = match decode_client(&first) {
        Ok(f) => f,
        Err(e) => {
            refuse(ws, e.id, e.code, e.message, CloseCode::HELLO_REQUIRED).await;
            return None;
        }
    };
    let ClientMsg::Hello {
        v,
        token,
        device,
        inbox_since,
    } = frame.m
    else {
        refuse(
            ws,
            frame.id,
            ErrorCode::HelloRequired,
            "the first frame must be hello".into(),
            CloseCode::HELLO_REQUIRED,
        )
        .await;
        return None;
    };
    let Some(version) = negotiate(&v) else {
        let msg = format!(
            "none of {v:?} is supported; this server speaks {:?}",
            chalktalk_protocol::SUPPORTED_VERSIONS
        );
        refuse(
            ws,
            frame.id,
            ErrorCode::UnsupportedVersion,
            msg,
            CloseCode::UNSUPPORTED_VERSION,
        )
        .await;
        return None;
    };
    if !valid_id(&device) {
        refuse(
            ws,
            frame.id,
            ErrorCode::Invalid,
            "device must be 1-64 characters of [A-Za-z0-9_.:@-]".into(),
            CloseCode::HELLO_REQUIRED,
        )
        .await;
        return None;
    }
    let Some(token) = token.or(header_token) else {
        refuse(
            ws,
            frame.id,
            ErrorCode::Unauthorized,
            "no token in hello, header or subprotocol".into(),
            CloseCode::UNAUTHORIZED,
        )
        .await;
        return None;
    };
    // Refuses tokens of revoked sessions too (the shared list).
    match app.auth.verify_live(&token).await {
        Ok(c) => Some(Hello {
            plan: c.plan(),
            user: c.sub,
            role: c.role,
            sid: c.sid,
            device,
            version,
            inbox_since,
        }),
        Err(e) => {
            let cc = if e.code == ErrorCode::TokenExpired {
                CloseCode::TOKEN_EXPIRED
            } else {
                CloseCode::UNAUTHORIZED
            };
            refuse(ws, frame.id, e.code, e.message, cc).await;
            None
        }
    }
}
