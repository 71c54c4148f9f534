//! A lean receiving client for load generators: one task per connection
//! on a bare WebSocket stream, frames decoded only as far as the bench
//! needs (borrowed `t`, `room` and `ev.batch`; the points are skipped, not
//! built). The full `Client` (a reader and a writer task, every frame
//! decoded into owned values and passed through a channel) cost the bench
//! more CPU than the server it measures (docs/BENCHMARKS.md §1).

use std::time::Duration;

use bytes::Bytes;
use chalktalk_protocol::{ClientFrame, ClientMsg, Role, ServerFrame, decode_server, encode};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{BenchError, Target};

/// A welcomed connection.
pub type Raw = WebSocketStream<TcpStream>;

/// What a receiver reads of a server frame.
#[derive(Deserialize)]
pub struct Head<'a> {
    #[serde(borrow)]
    pub t: &'a str,
    #[serde(borrow, default)]
    pub room: Option<&'a str>,
    #[serde(borrow, default)]
    pub ev: Option<EvHead<'a>>,
}

#[derive(Deserialize)]
pub struct EvHead<'a> {
    #[serde(borrow, default)]
    pub k: Option<&'a str>,
    #[serde(default)]
    pub batch: Option<u32>,
}

/// Bytes read from the socket at a time (see [`connect`]).
const READ_BUFFER: usize = 8 * 1024;

/// Connects and says hello as `user`.
pub async fn connect(
    target: &Target,
    user: &str,
    role: Role,
    device: &str,
) -> Result<Raw, BenchError> {
    let request = target.url.as_str().into_client_request()?;
    let host = request.uri().host().unwrap_or("127.0.0.1").to_string();
    let port = request.uri().port_u16().unwrap_or(80);
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    // tungstenite zero-fills `read_buffer_size` bytes (128 KiB by default)
    // before every read: at 18,000 frames a second that memset was the
    // load generator's largest cost. Server frames here are small; a
    // larger one grows the buffer.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await?;
    let hello = ClientFrame {
        id: 1,
        m: ClientMsg::Hello {
            v: vec![chalktalk_protocol::PROTOCOL_VERSION],
            token: Some(target.token(user, role)?),
            device: device.into(),
            inbox_since: None,
        },
    };
    ws.send(Message::Binary(Bytes::from(encode(&hello))))
        .await?;
    match next_frame(&mut ws).await? {
        ServerFrame::Welcome(_) => Ok(ws),
        other => Err(format!("expected welcome, got {other:?}").into()),
    }
}

async fn next_frame(ws: &mut Raw) -> Result<ServerFrame, BenchError> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| "no frame within 30 s")?
            .ok_or("connection closed")??;
        if let Message::Binary(b) = msg {
            return Ok(decode_server(&b)?);
        }
    }
}

/// Sends request `id` and waits for its reply, dropping other frames.
pub async fn request(ws: &mut Raw, id: u32, m: ClientMsg) -> Result<(), BenchError> {
    ws.send(Message::Binary(Bytes::from(encode(&ClientFrame { id, m }))))
        .await?;
    loop {
        match next_frame(ws).await? {
            ServerFrame::Ok { id: got, .. } if got == id => return Ok(()),
            ServerFrame::Err { id: got, code, msg } if got == id => {
                return Err(format!("{code}: {msg}").into());
            }
            _ => {}
        }
    }
}
