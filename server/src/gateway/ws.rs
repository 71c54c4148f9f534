//! The transport of one WebSocket connection: the hello handshake
//! (`super::hello`: version, token, device) and inbox registration, then a
//! reader that enforces the idle limit, rate-limits each frame, decodes it
//! once and hands it to `super::dispatch` (the table of who checks and who
//! answers each message; one frame at a time: while it is handled the
//! reader reads nothing and TCP pushes back), and a
//! writer that drains the session's bounded outbound queue, sends
//! heartbeats and enforces a write timeout.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use bytes::Bytes;
use chalktalk_actors::inbox::InboxMsg;
use chalktalk_actors::outbound::OutboundRx;
use chalktalk_actors::{Out, Outbound};
use chalktalk_protocol::{
    CloseCode, ErrorCode, Limits, ServerFrame, Welcome, decode_client, encode,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::App;
use super::dispatch::{Dispatcher, Flow};
use super::hello::{Hello, close, hello, is_too_big};

/// Bytes of frames the writer hands the socket in one burst (one flush):
/// a burst must finish within the write stall limit even on a slow link.
const BURST_BYTES: usize = 256 * 1024;
/// Rate-limited frames in a row after which the connection is closed.
const FLOOD_STRIKES: u32 = 200;

use chalktalk_actors::outbound::err_frame;

fn unregister(app: &App, out: &Outbound) {
    let _ = app.directory.inbox().cast(InboxMsg::Unregister {
        user: out.user.clone(),
        session: out.session,
    });
}

/// Serves one upgraded connection until it ends.
///
/// The socket comes boxed: an unboxed one (~370 bytes) would be stored
/// twice in the connection's task for as long as the connection lives.
pub async fn serve(mut ws: Box<WebSocket>, app: App, header_token: Option<String>) {
    // Every step is boxed: an async fn's future keeps a slot for each
    // argument and for each awaited inner future beside the values moved
    // into it (rust-lang/rust#62958), so the task that lives as long as
    // the connection carries only this small future, the read loop's is
    // sized for its steady state, and the handshake's are freed once done
    // (docs/BENCHMARKS.md §2).
    let Some(h) = Box::pin(hello(&mut ws, &app, header_token)).await else {
        return;
    };
    let session = app.next_session.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("conn", session, user = %h.user, device = %h.device);
    let started = Box::pin(start(ws, &app, &h, session).instrument(span.clone())).await;
    if let Some(conn) = started {
        Box::pin(run(app, h, conn).instrument(span)).await;
    }
}

/// A connection after its handshake: what the read loop needs.
struct Started {
    out: Outbound,
    stream: SplitStream<WebSocket>,
    /// Fires when the writer has ended (after sending a close frame).
    done_rx: oneshot::Receiver<()>,
    writer: tokio::task::JoinHandle<()>,
    limits: Limits,
}

/// Registers the connection with the inbox, sends `welcome` and starts the
/// writer; `None` (and the socket closed) if any of it fails.
async fn start(mut ws: Box<WebSocket>, app: &App, h: &Hello, session: u64) -> Option<Started> {
    let limits = app.directory.deps.config.limits.clone();
    let (out, rx) = Outbound::new(
        session,
        h.user.clone(),
        h.device.clone(),
        app.directory.deps.stats.clone(),
    );
    // Registered with the inbox before the welcome: no notice falls between.
    let registered = app
        .directory
        .inbox()
        .call(
            |done| InboxMsg::Register {
                out: out.clone(),
                since: h.inbox_since,
                done,
            },
            Some(Duration::from_secs(10)),
        )
        .await;
    if !matches!(registered, Ok(ractor::rpc::CallResult::Success(()))) {
        tracing::error!("inbox registration failed");
        close(&mut ws, CloseCode::INTERNAL, "inbox unavailable").await;
        return None;
    }
    // The writer starts after the welcome, so it is always the first frame.
    let welcome = ServerFrame::Welcome(Welcome {
        v: h.version,
        session: format!("s-{session:x}"),
        user: h.user.clone(),
        role: h.role,
        heartbeat_ms: app.heartbeat.as_millis() as u32,
        server_ms: chalktalk_actors::now_ms(),
        limits: limits.clone(),
    });
    if Box::pin(ws.send(WsMessage::Binary(Bytes::from(encode(&welcome)))))
        .await
        .is_err()
    {
        unregister(app, &out);
        return None;
    }
    app.connections
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(session, out.clone());
    chalktalk_actors::metrics::metrics().sessions_opened.inc();
    if let Some(sid) = &h.sid {
        app.sids.insert(sid, session);
        // Revoked between the hello check and the index insert.
        if app
            .auth
            .revocations()
            .is_some_and(|r| r.is_revoked_locally(sid))
        {
            out.kill(
                CloseCode::UNAUTHORIZED,
                chalktalk_services::accounts::revocations::REVOKED_REASON,
            );
        }
    }
    tracing::debug!("session started");

    let (sink, stream) = (*ws).split();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    // A peer that stops reading (a phone that pauses the app, a stalled
    // link) is given as long as one that stops sending: three heartbeats.
    // Meanwhile its queue fills, rooms tell it to resync, and it finds
    // that when it reads again (docs/PROTOCOL.md §13).
    let stall = app.heartbeat * 3;
    let writer =
        tokio::spawn(write_loop(sink, rx, app.heartbeat, stall, done_tx).in_current_span());
    Some(Started {
        out,
        stream,
        done_rx,
        writer,
        limits,
    })
}

/// The read loop of a started connection, then its clean-up.
async fn run(app: App, h: Hello, c: Started) {
    let Started {
        out,
        mut stream,
        mut done_rx,
        writer,
        limits,
    } = c;
    let mut dispatcher = Dispatcher::new(&app, &out, &h, &limits);
    let idle = app.heartbeat * 3;
    let mut last_seen = Instant::now();
    // The node's frame limits (announced in welcome) through the one rate
    // limit module; a session lives on this node, so in process.
    let mut bucket = chalktalk_adapters::ratelimit::SessionLimiter::new(
        chalktalk_adapters::ratelimit::Quota::ws_frames(&limits),
    );
    let mut strikes = 0u32;
    // Set once this reader decided to close the connection: later frames
    // are read (so the close handshake completes) but never answered, so
    // the answers already queued reach the client before the close frame.
    let mut closing = false;
    loop {
        let deadline = tokio::time::Instant::from_std(last_seen + idle);
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = &mut done_rx => {
                // The writer sent a close frame. Keep reading (and dropping)
                // until the peer answers it, so closing the socket with
                // unread data does not reset the connection and destroy
                // the close frame before the client reads it.
                let drain = async { while let Some(Ok(m)) = stream.next().await {
                    if matches!(m, WsMessage::Close(_)) { break; }
                } };
                let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
                break;
            }
            _ = tokio::time::sleep_until(deadline) => {
                out.kill(CloseCode::IDLE, "no frame within three heartbeats");
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut done_rx).await;
                break;
            }
        };
        let Some(msg) = msg else { break };
        last_seen = Instant::now();
        if closing {
            match msg {
                Ok(WsMessage::Close(_)) | Err(_) => break,
                _ => continue,
            }
        }
        if matches!(msg, Ok(WsMessage::Binary(_) | WsMessage::Text(_))) {
            chalktalk_actors::metrics::metrics().frames_in.inc();
        }
        let bytes = match msg {
            Ok(WsMessage::Binary(b)) => Some(b),
            Ok(WsMessage::Text(_)) => None,
            Ok(WsMessage::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(%e, "socket read error");
                if is_too_big(&e) {
                    out.kill(CloseCode::TOO_BIG, "frame larger than max_frame_bytes");
                    let _ = tokio::time::timeout(Duration::from_secs(1), &mut done_rx).await;
                }
                break;
            }
        };
        if !bucket.take() {
            strikes += 1;
            if strikes >= FLOOD_STRIKES {
                out.kill(
                    CloseCode::FLOOD,
                    "sustained flood above the frame rate limit",
                );
                closing = true;
                continue;
            }
            let id = bytes
                .as_ref()
                .map(|b| decode_client(b).map(|f| f.id).unwrap_or_else(|e| e.id))
                .unwrap_or(0);
            out.control(err_frame(
                id,
                ErrorCode::RateLimited,
                format!("more than {} frames/s; slow down", limits.frames_per_sec),
            ));
            continue;
        }
        let Some(bytes) = bytes else {
            out.control(err_frame(
                0,
                ErrorCode::BadFrame,
                "text frames are not accepted; send MessagePack in binary frames",
            ));
            continue;
        };
        let frame = match decode_client(&bytes) {
            Ok(f) => f,
            Err(e) => {
                out.control(err_frame(e.id, e.code, e.message));
                continue;
            }
        };
        strikes = 0;
        // Boxed: the largest future of the loop (~750 bytes) is held only
        // while a frame is handled, not by every idle connection.
        if let Flow::Stop = Box::pin(dispatcher.dispatch(frame)).await {
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut done_rx).await;
            break;
        }
    }
    dispatcher.stop();
    unregister(&app, &out);
    app.connections
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&out.session);
    if let Some(sid) = &h.sid {
        app.sids.remove(sid, out.session);
    }
    writer.abort();
    tracing::debug!("session ended");
}

/// Writes `first` and whatever else is already queued (up to 64 frames or
/// [`BURST_BYTES`]) with one flush, so a burst costs one syscall. Returns a
/// close found in the queue, to be sent after the burst.
async fn write_burst(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    first: Bytes,
    rx: &mut OutboundRx,
) -> Result<Option<Out>, axum::Error> {
    let mut bytes = first.len();
    sink.feed(WsMessage::Binary(first)).await?;
    let mut close = None;
    let mut frames = 1;
    for _ in 0..63 {
        if bytes >= BURST_BYTES {
            break;
        }
        match rx.try_recv() {
            Some(Out::Frame(b)) => {
                bytes += b.len();
                frames += 1;
                sink.feed(WsMessage::Binary(b)).await?
            }
            Some(c) => {
                close = Some(c);
                break;
            }
            None => break,
        }
    }
    sink.flush().await?;
    chalktalk_actors::metrics::metrics()
        .frames_out
        .inc_by(frames);
    Ok(close)
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, WsMessage>,
    mut rx: OutboundRx,
    heartbeat: Duration,
    stall: Duration,
    done: oneshot::Sender<()>,
) {
    let mut ping = tokio::time::interval(heartbeat);
    ping.tick().await;
    loop {
        // A kill past a full queue comes out of `recv` first.
        let item = tokio::select! {
            biased;
            item = rx.recv() => match item {
                Some(i) => i,
                None => break,
            },
            _ = ping.tick() => {
                if tokio::time::timeout(stall, sink.send(WsMessage::Ping(Bytes::new()))).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let close = match item {
            Out::Frame(b) => {
                match tokio::time::timeout(stall, write_burst(&mut sink, b, &mut rx)).await {
                    Ok(Ok(None)) => continue,
                    Ok(Ok(Some(close))) => close,
                    Ok(Err(_)) => break,
                    Err(_) => {
                        tracing::info!("socket write stalled; closing");
                        break;
                    }
                }
            }
            close => close,
        };
        if let Out::Close(code, reason) = close {
            tracing::info!(code, %reason, "closing connection");
            let frame = WsMessage::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(frame)).await;
        }
        break;
    }
    let _ = done.send(());
}
