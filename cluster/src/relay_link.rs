//! The transport of relay links (`chalktalk_actors::relay::stream`): each
//! node listens on its own port (`cluster_relay_port`, on the cluster
//! listen ip; its `host:port` goes out in every heartbeat), and an owner
//! dials the edge node it has frames for.
//!
//! Handshake (TLS first when the cluster has it, with the same
//! certificates as the cluster link):
//! 1. the listener sends `CTRL` and a random 32-byte nonce;
//! 2. the dialer answers `CTRL`, its cluster protocol version (u32), its
//!    node name (u16 length, then the bytes), its link id (u64) and
//!    HMAC-SHA256 under the cluster cookie of
//!    `chalktalk-relay` ‖ nonce ‖ name ‖ link id;
//! 3. the listener answers one byte, `K` (accepted), or `N` then a line
//!    saying why (a wrong cookie, another protocol version), and closes.
//!
//! After `K` only the dialer writes: numbered batches, read by
//! `chalktalk_actors::relay::stream::receive`.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chalktalk_actors::relay::Relay;
use chalktalk_actors::relay::stream::{LinkWriter, OPEN_TIMEOUT, Opener};
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::members::Members;
use crate::tls::Tls;
use crate::wire::PROTOCOL_VERSION;

const MAGIC: &[u8; 4] = b"CTRL";
const CONTEXT: &[u8] = b"chalktalk-relay";
const NAME_MAX: usize = 1024;

fn mac(cookie: &str, nonce: &[u8; 32], name: &str, link: u64) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(cookie.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(CONTEXT);
    m.update(nonce);
    m.update(name.as_bytes());
    m.update(&link.to_be_bytes());
    m
}

/// Listens for relay links on `bind` and hands each accepted one's
/// batches to `relay`. Returns the bound address.
pub(crate) async fn listen(
    bind: SocketAddr,
    cookie: String,
    tls: Option<Tls>,
    relay: Arc<Relay>,
) -> io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "relay link: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let cookie = cookie.clone();
            let tls = tls.clone();
            let relay = relay.clone();
            tokio::spawn(async move {
                let ended = match tls {
                    // A peer that never finishes its TLS handshake does not
                    // hold the task longer than a hello may take.
                    Some(tls) => {
                        match tokio::time::timeout(OPEN_TIMEOUT, tls.acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => serve(s, &cookie, relay).await,
                            Ok(Err(e)) => Err(io::Error::other(format!("TLS: {e}"))),
                            Err(_) => Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "no TLS handshake in time",
                            )),
                        }
                    }
                    None => serve(tcp, &cookie, relay).await,
                };
                match ended {
                    Ok(from) => tracing::debug!(%peer, %from, "relay link closed"),
                    Err(e) => tracing::warn!(%peer, error = %e, "relay link refused or broken"),
                }
            });
        }
    });
    Ok((addr, task))
}

/// One accepted link: the handshake, then its batches until it ends.
/// The dialer's node name on a clean end.
async fn serve<S>(mut s: S, cookie: &str, relay: Arc<Relay>) -> io::Result<String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
    let mut hello = Vec::with_capacity(36);
    hello.extend_from_slice(MAGIC);
    hello.extend_from_slice(&nonce);
    s.write_all(&hello).await?;
    s.flush().await?;
    let hello = tokio::time::timeout(OPEN_TIMEOUT, read_hello(&mut s, cookie, &nonce)).await;
    let (name, link) = match hello {
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no hello in time")),
        Ok(Ok(v)) => v,
        Ok(Err(Refusal::Io(e))) => return Err(e),
        Ok(Err(Refusal::Said(why))) => {
            let mut no = b"N".to_vec();
            no.extend_from_slice(why.as_bytes());
            no.push(b'\n');
            let _ = s.write_all(&no).await;
            let _ = s.shutdown().await;
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
    };
    s.write_all(b"K").await?;
    s.flush().await?;
    tracing::debug!(from = %name, link, "relay link accepted");
    chalktalk_actors::relay::stream::receive(relay, name.clone(), link, s).await?;
    Ok(name)
}

enum Refusal {
    Io(io::Error),
    /// A refusal to tell the dialer.
    Said(String),
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        Refusal::Io(e)
    }
}

/// Reads and checks the dialer's hello: its node name and link id.
async fn read_hello<S>(s: &mut S, cookie: &str, nonce: &[u8; 32]) -> Result<(String, u64), Refusal>
where
    S: AsyncRead + Unpin,
{
    let mut head = [0u8; 10];
    s.read_exact(&mut head).await?;
    if &head[..4] != MAGIC {
        return Err(Refusal::Said("not a chalktalk relay link".into()));
    }
    let version = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let n = u16::from_be_bytes([head[8], head[9]]) as usize;
    if n == 0 || n > NAME_MAX {
        return Err(Refusal::Said(format!("a node name of {n} bytes")));
    }
    let mut raw = vec![0u8; n + 8 + 32];
    s.read_exact(&mut raw).await?;
    let name = String::from_utf8(raw[..n].to_vec())
        .map_err(|_| Refusal::Said("a node name that is not UTF-8".into()))?;
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[n..n + 8]);
    let link = u64::from_be_bytes(id);
    if mac(cookie, nonce, &name, link)
        .verify_slice(&raw[n + 8..])
        .is_err()
    {
        return Err(Refusal::Said(
            "wrong cluster cookie (the relay link's proof did not match)".into(),
        ));
    }
    if version != PROTOCOL_VERSION {
        return Err(Refusal::Said(format!(
            "cluster protocol version {version}, this node speaks {PROTOCOL_VERSION}"
        )));
    }
    Ok((name, link))
}

/// Dials other nodes' relay listeners (their addresses from their beats).
pub(crate) struct Dialer {
    pub(crate) me: String,
    pub(crate) cookie: String,
    pub(crate) tls: Option<Tls>,
    pub(crate) members: Arc<Mutex<Members>>,
}

impl Opener for Dialer {
    fn open(&self, node: &str, link: u64) -> BoxFuture<'static, io::Result<LinkWriter>> {
        let addr = self
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .relay_addr(node);
        let node = node.to_string();
        let me = self.me.clone();
        let cookie = self.cookie.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let addr = addr.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("node {node} is not up or has no relay address"),
                )
            })?;
            let tcp = TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            match tls {
                Some(tls) => {
                    let s = tls.connector.connect(tls.name.clone(), tcp).await?;
                    dial(s, &me, &cookie, link).await
                }
                None => dial(tcp, &me, &cookie, link).await,
            }
        })
    }
}

/// The dialer's side of the handshake; the stream to write batches to.
async fn dial<S>(s: S, me: &str, cookie: &str, link: u64) -> io::Result<LinkWriter>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    dial_as(s, me, cookie, link, PROTOCOL_VERSION).await
}

async fn dial_as<S>(
    mut s: S,
    me: &str,
    cookie: &str,
    link: u64,
    version: u32,
) -> io::Result<LinkWriter>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut head = [0u8; 36];
    s.read_exact(&mut head).await?;
    if &head[..4] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a chalktalk relay listener",
        ));
    }
    let nonce: [u8; 32] = head[4..].try_into().map_err(io::Error::other)?;
    let name_len = u16::try_from(me.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "node name too long"))?;
    let mut hello = Vec::with_capacity(10 + me.len() + 40);
    hello.extend_from_slice(MAGIC);
    hello.extend_from_slice(&version.to_be_bytes());
    hello.extend_from_slice(&name_len.to_be_bytes());
    hello.extend_from_slice(me.as_bytes());
    hello.extend_from_slice(&link.to_be_bytes());
    hello.extend_from_slice(&mac(cookie, &nonce, me, link).finalize().into_bytes());
    s.write_all(&hello).await?;
    s.flush().await?;
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await?;
    if answer[0] != b'K' {
        let mut why = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(200), s.read_to_end(&mut why)).await;
        let why = String::from_utf8_lossy(&why).trim().to_string();
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refused: {why}"),
        ));
    }
    Ok(Box::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake over an in-memory stream: what the dialer got, and how
    /// the listener's side ended once the dialer hung up.
    async fn handshake(
        cookie: &str,
        listener_cookie: &str,
        version: u32,
    ) -> (Result<(), String>, String) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let relay = Relay::new("edge".into());
        let listener_cookie = listener_cookie.to_string();
        let server = tokio::spawn(async move { serve(b, &listener_cookie, relay).await });
        let dialed = dial_as(a, "owner", cookie, 7, version)
            .await
            .map(drop)
            .map_err(|e| e.to_string());
        let ended = match server.await {
            Ok(Ok(name)) => format!("closed by {name}"),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        (dialed, ended)
    }

    #[tokio::test]
    async fn the_cookie_is_proved_and_a_wrong_one_or_another_version_is_refused() {
        let (dialed, ended) =
            handshake("the same cookie!", "the same cookie!", PROTOCOL_VERSION).await;
        assert_eq!(dialed, Ok(()));
        assert_eq!(ended, "closed by owner");

        let (dialed, ended) =
            handshake("the wrong cookie", "the same cookie!", PROTOCOL_VERSION).await;
        let e = dialed.expect_err("a wrong cookie is refused");
        assert!(e.contains("wrong cluster cookie"), "dialer saw: {e}");
        assert!(
            ended.contains("wrong cluster cookie"),
            "listener saw: {ended}"
        );

        let (dialed, _) =
            handshake("the same cookie!", "the same cookie!", PROTOCOL_VERSION + 1).await;
        let e = dialed.expect_err("another version is refused");
        assert!(
            e.contains(&format!("version {}", PROTOCOL_VERSION + 1)),
            "dialer saw: {e}"
        );
    }
}
