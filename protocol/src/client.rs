//! A Rust client for the chalktalk WebSocket (feature `client`): connects,
//! says hello, pairs requests with replies by id and hands every push to the
//! caller. Tests, the bench and tools share it. It can also misbehave on
//! purpose (raw bytes, stop reading, drop the connection) for tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{ClientFrame, ClientMsg, ErrorCode, Reply, ServerFrame, Welcome, codec};

/// What went wrong talking to the server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Ws(String),
    #[error("connection closed (code {code:?}): {reason}")]
    Closed { code: Option<u16>, reason: String },
    #[error("server error {code}: {msg}")]
    Server { code: ErrorCode, msg: String },
    #[error("no reply within the timeout")]
    Timeout,
    #[error("undecodable server frame: {0}")]
    Decode(String),
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub token: String,
    pub device: String,
    pub inbox_since: Option<u64>,
    /// Shrink the socket's receive buffer (for slow-consumer tests).
    pub recv_buffer: Option<u32>,
    /// How long `request` waits for its reply.
    pub timeout: Duration,
    /// Read at most this many bytes per second on average (a slow link):
    /// after each message the reader sleeps for its share.
    pub read_bytes_per_sec: Option<u64>,
}

impl ClientOptions {
    pub fn new(token: impl Into<String>, device: impl Into<String>) -> Self {
        ClientOptions {
            token: token.into(),
            device: device.into(),
            inbox_since: None,
            recv_buffer: None,
            timeout: Duration::from_secs(10),
            read_bytes_per_sec: None,
        }
    }
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<ServerFrame>>>>;
type CloseInfo = Arc<Mutex<Option<(Option<u16>, String)>>>;

/// A connected, welcomed client.
pub struct Client {
    out: mpsc::UnboundedSender<WsMessage>,
    pending: Pending,
    pushes: mpsc::UnboundedReceiver<ServerFrame>,
    next_id: AtomicU32,
    paused: Arc<AtomicBool>,
    resume: Arc<Notify>,
    closed: CloseInfo,
    timeout: Duration,
    tasks: Vec<JoinHandle<()>>,
    /// The server's `welcome`.
    pub welcome: Welcome,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// Connects to `url` (`ws://host:port/ws`) and completes the hello.
    pub async fn connect(url: &str, opts: ClientOptions) -> Result<Client, ClientError> {
        let ws_err = |e: &dyn std::fmt::Display| ClientError::Ws(e.to_string());
        let request = url.into_client_request().map_err(|e| ws_err(&e))?;
        let host = request.uri().host().unwrap_or("127.0.0.1").to_string();
        let port = request.uri().port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| ws_err(&e))?
            .next()
            .ok_or_else(|| ClientError::Ws(format!("cannot resolve {host}")))?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| ws_err(&e))?;
        if let Some(size) = opts.recv_buffer {
            socket.set_recv_buffer_size(size).map_err(|e| ws_err(&e))?;
        }
        let stream = socket.connect(addr).await.map_err(|e| ws_err(&e))?;
        stream.set_nodelay(true).map_err(|e| ws_err(&e))?;
        // tungstenite zero-fills `read_buffer_size` bytes (128 KiB by
        // default) before every read; most server frames are far smaller
        // and a larger one grows the buffer.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(8 * 1024);
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(|e| ws_err(&e))?;

        let hello = ClientFrame {
            id: 1,
            m: ClientMsg::Hello {
                v: vec![crate::PROTOCOL_VERSION],
                token: Some(opts.token.clone()),
                device: opts.device.clone(),
                inbox_since: opts.inbox_since,
            },
        };
        ws.send(WsMessage::Binary(Bytes::from(codec::encode(&hello))))
            .await
            .map_err(|e| ws_err(&e))?;
        let welcome = loop {
            let msg = tokio::time::timeout(opts.timeout, ws.next())
                .await
                .map_err(|_| ClientError::Timeout)?;
            match msg {
                Some(Ok(WsMessage::Binary(b))) => {
                    match codec::decode_server(&b)
                        .map_err(|e| ClientError::Decode(e.to_string()))?
                    {
                        ServerFrame::Welcome(w) => break w,
                        ServerFrame::Err { code, msg, .. } => {
                            return Err(ClientError::Server { code, msg });
                        }
                        other => {
                            return Err(ClientError::Decode(format!(
                                "expected welcome, got {other:?}"
                            )));
                        }
                    }
                }
                Some(Ok(WsMessage::Close(c))) => {
                    return Err(ClientError::Closed {
                        code: c.as_ref().map(|c| u16::from(c.code)),
                        reason: c.map(|c| c.reason.to_string()).unwrap_or_default(),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ws_err(&e)),
                None => {
                    return Err(ClientError::Closed {
                        code: None,
                        reason: "eof before welcome".into(),
                    });
                }
            }
        };

        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let (push_tx, pushes) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let closed: CloseInfo = Arc::default();
        let paused = Arc::new(AtomicBool::new(false));
        let resume = Arc::new(Notify::new());
        let read_rate = opts.read_bytes_per_sec.filter(|r| *r > 0);

        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader = {
            let (pending, closed, paused, resume) = (
                pending.clone(),
                closed.clone(),
                paused.clone(),
                resume.clone(),
            );
            tokio::spawn(async move {
                loop {
                    while paused.load(Ordering::Acquire) {
                        resume.notified().await;
                    }
                    let Some(msg) = stream.next().await else {
                        break;
                    };
                    match msg {
                        Ok(WsMessage::Binary(b)) => {
                            if let Some(rate) = read_rate {
                                let secs = b.len() as f64 / rate as f64;
                                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                            }
                            let Ok(frame) = codec::decode_server(&b) else {
                                continue;
                            };
                            let id = match &frame {
                                ServerFrame::Ok { id, .. } | ServerFrame::Err { id, .. } => *id,
                                _ => 0,
                            };
                            let waiter = if id != 0 {
                                lock(&pending).remove(&id)
                            } else {
                                None
                            };
                            match waiter {
                                Some(w) => {
                                    let _ = w.send(frame);
                                }
                                None => {
                                    let _ = push_tx.send(frame);
                                }
                            }
                        }
                        Ok(WsMessage::Close(c)) => {
                            *lock(&closed) = Some((
                                c.as_ref().map(|c| u16::from(c.code)),
                                c.map(|c| c.reason.to_string()).unwrap_or_default(),
                            ));
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            lock(&closed).get_or_insert((None, e.to_string()));
                            break;
                        }
                    }
                }
                lock(&closed).get_or_insert((None, "eof".into()));
                lock(&pending).clear();
            })
        };
        Ok(Client {
            out,
            pending,
            pushes,
            next_id: AtomicU32::new(2),
            paused,
            resume,
            closed,
            timeout: opts.timeout,
            tasks: vec![writer, reader],
            welcome,
        })
    }

    fn closed_error(&self) -> ClientError {
        let info = lock(&self.closed).clone();
        let (code, reason) = info.unwrap_or((None, "connection gone".into()));
        ClientError::Closed { code, reason }
    }

    /// Sends a request and waits for its paired reply.
    pub async fn request(&self, m: ClientMsg) -> Result<Reply, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).max(1);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        self.send_frame(&ClientFrame { id, m })?;
        match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(ClientError::Timeout)
            }
            Ok(Err(_)) => Err(self.closed_error()),
            Ok(Ok(ServerFrame::Ok { r, .. })) => Ok(r),
            Ok(Ok(ServerFrame::Err { code, msg, .. })) => Err(ClientError::Server { code, msg }),
            Ok(Ok(other)) => Err(ClientError::Decode(format!("unpaired frame {other:?}"))),
        }
    }

    /// Joins `room` and returns its `joined` reply with the whole state: a
    /// paged join (`JoinMode::Paged`) is completed here, one page request
    /// at a time, and returned as `JoinMode::Snapshot`. Room events after
    /// the snapshot arrive as pushes meanwhile, in order, as usual.
    /// `progress` is told (pages received, pages) after each page.
    pub async fn join_room(
        &self,
        room: &str,
        since: Option<u64>,
        mut progress: impl FnMut(u32, u32),
    ) -> Result<Reply, ClientError> {
        let reply = self
            .request(ClientMsg::JoinRoom {
                room: room.to_string(),
                since,
            })
            .await?;
        let Reply::Joined {
            room,
            mode:
                crate::JoinMode::Paged {
                    mut snapshot,
                    annotations,
                    pages,
                },
            presence,
        } = reply
        else {
            return Ok(reply);
        };
        snapshot.annotations.reserve(annotations as usize);
        for page in 0..pages {
            let r = self
                .request(ClientMsg::SnapshotPage {
                    room: room.clone(),
                    seq: snapshot.seq,
                    page,
                })
                .await?;
            let Reply::SnapshotPage {
                annotations: mut got,
                ..
            } = r
            else {
                return Err(ClientError::Decode(format!(
                    "expected snapshot_page, got {r:?}"
                )));
            };
            snapshot.annotations.append(&mut got);
            progress(page + 1, pages);
        }
        Ok(Reply::Joined {
            room,
            mode: crate::JoinMode::Snapshot { snapshot },
            presence,
        })
    }

    /// Sends a frame with id 0 (no reply on success).
    pub fn send(&self, m: ClientMsg) -> Result<(), ClientError> {
        self.send_frame(&ClientFrame { id: 0, m })
    }

    /// Sends an already built frame.
    pub fn send_frame(&self, f: &ClientFrame) -> Result<(), ClientError> {
        self.send_raw(codec::encode(f))
    }

    /// Sends arbitrary bytes as one binary message.
    pub fn send_raw(&self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.out
            .send(WsMessage::Binary(Bytes::from(bytes)))
            .map_err(|_| self.closed_error())
    }

    /// Sends a text message (the protocol is binary: the server refuses it).
    pub fn send_text(&self, text: &str) -> Result<(), ClientError> {
        self.out
            .send(WsMessage::Text(text.into()))
            .map_err(|_| self.closed_error())
    }

    /// The next push (or unpaired error), waiting at most `wait`.
    pub async fn next_push(&mut self, wait: Duration) -> Option<ServerFrame> {
        tokio::time::timeout(wait, self.pushes.recv())
            .await
            .ok()
            .flatten()
    }

    /// A push already received, if any, without waiting.
    pub fn try_push(&mut self) -> Option<ServerFrame> {
        self.pushes.try_recv().ok()
    }

    /// Waits for the first push that `pick` accepts, skipping others.
    pub async fn wait_for<T>(
        &mut self,
        wait: Duration,
        mut pick: impl FnMut(&ServerFrame) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.next_push(left).await?;
            if let Some(t) = pick(&f) {
                return Some(t);
            }
        }
    }

    /// Stops reading from the socket (the server sees a slow consumer).
    pub fn pause_reading(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Reads again after [`Client::pause_reading`].
    pub fn resume_reading(&self) {
        self.paused.store(false, Ordering::Release);
        self.resume.notify_waiters();
    }

    /// The close code and reason once the connection has ended.
    pub fn close_info(&self) -> Option<(Option<u16>, String)> {
        lock(&self.closed).clone()
    }

    /// Waits until the server closes the connection; returns its close code.
    pub async fn closed(&mut self, wait: Duration) -> Option<(Option<u16>, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if let Some(c) = self.close_info() {
                return Some(c);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Drops the TCP connection without a close handshake (a lost network).
    pub fn kill(self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Says goodbye with a normal close frame.
    pub async fn close(self) {
        let _ = self.out.send(WsMessage::Close(None));
        tokio::time::sleep(Duration::from_millis(20)).await;
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
