//! A TCP proxy on 127.0.0.1 in front of a node, for tests of bad networks
//! (the hotel Wi-Fi): clients connect to [`Proxy::url`] and every byte is
//! forwarded to the node and back. [`Proxy::cut`] drops every connection
//! through it at once (both ends see the socket close, with no WebSocket
//! close frame); [`Proxy::freeze`] stops forwarding in both directions
//! while keeping the sockets open (a stalled link: nothing arrives, nothing
//! fails), [`Proxy::thaw`] lets the held bytes through again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    cut: watch::Sender<u64>,
    frozen: watch::Sender<bool>,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy to the node listening on `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, _) = watch::channel(0u64);
        let (frozen, _) = watch::channel(false);
        let open = Arc::new(AtomicUsize::new(0));
        let (cut_tx, frozen_tx, count) = (cut.clone(), frozen.clone(), open.clone());
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = (down.set_nodelay(true), up.set_nodelay(true));
                let mut cut = cut_tx.subscribe();
                cut.mark_unchanged();
                let (f1, f2) = (frozen_tx.subscribe(), frozen_tx.subscribe());
                let count = count.clone();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    tokio::select! {
                        _ = cut.changed() => {}
                        _ = async { tokio::join!(pump(dr, uw, f1), pump(ur, dw, f2)) } => {}
                    }
                    // Dropping both halves of both sockets closes them.
                    count.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Proxy {
            addr,
            cut,
            frozen,
            open,
            task,
        }
    }

    /// The WebSocket URL through the proxy.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Drops every connection through the proxy now.
    pub fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    /// Stops forwarding (both directions) until [`Proxy::thaw`].
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// Connections currently open through the proxy.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

/// Copies `from` to `to` until either ends, holding bytes while frozen.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Read while thawed, held here if a freeze came meanwhile.
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
