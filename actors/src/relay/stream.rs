//! The relay link: the byte stream on which an owner node ships the frames
//! of its rooms and threads down to one edge node, beside ractor_cluster's
//! link (which still carries requests up, inbox notices and heartbeats).
//!
//! A message across ractor_cluster costs an actor hop and a protobuf
//! envelope on each side; here a batch is one `write` on the owner and is
//! delivered by the edge's reader task straight into its sessions' queues.
//! The stream itself (TCP or TLS, the cookie handshake, which address)
//! comes from an [`Opener`] the cluster crate provides; this module only
//! frames batches and numbers them.
//!
//! Framing: each batch is `[u32 length][u64 seq][Down]` (big-endian; the
//! `Down` bytes are [`super::wire`]'s). The seq counts the batches of one
//! downlink (a random link id, given in the handshake) across
//! reconnections. Nothing is lost silently:
//! - a batch the owner could not write (no link, or the write failed) is
//!   remembered by the sessions it was for; the next batch that goes out
//!   closes each of them (4008, "reconnect and resume": the client resumes
//!   by seq). Session ids are unique across a node's restarts, so a close
//!   meant for a session of an earlier process touches nobody;
//! - a batch written that never arrived (the connection died with it in
//!   flight) shows as a gap in the seqs of one link on the edge, which then
//!   closes every session of its own that sent anything up to that owner.
//!   A failed write also takes a seq, so the edge sees that gap whenever
//!   the batch did not get through whole.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::Relay;
use super::wire::{Down, decode_down_bytes, encode_down_into};
use crate::outbound::SessionId;

/// A batch past this size is refused by the reader (a corrupt length).
pub const MAX_BATCH_BYTES: usize = 64 << 20;
/// How long one batch may take to write before the link is dropped (the
/// edge stopped reading: frozen, or the network is cut).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Dialing and handshake of a link, at most.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// The writing half of an open relay link.
pub type LinkWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// Opens relay links to other nodes (the cluster crate: address from the
/// node's heartbeats, TCP or TLS, the cookie handshake carrying `link`).
pub trait Opener: Send + Sync {
    fn open(&self, node: &str, link: u64) -> BoxFuture<'static, io::Result<LinkWriter>>;
}

/// The owner's end of one edge node's relay link: (re)opens it, writes
/// numbered batches, and tells the edge which sessions lost frames.
pub(crate) struct Writer {
    node: String,
    link: u64,
    /// The seq of the next batch.
    seq: u64,
    conn: Option<LinkWriter>,
    /// No dial before this (backoff after a failure).
    retry_at: Option<tokio::time::Instant>,
    backoff: Duration,
    buf: Vec<u8>,
    /// Sessions of the edge that frames were lost for, to close with the
    /// next batch that goes out.
    lost: HashSet<SessionId>,
    /// Too many to list: skip a seq, so the edge closes every session
    /// that used this node.
    lost_all: bool,
}

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Sessions listed as having lost frames, at most (past it: `lost_all`).
const LOST_MAX: usize = 65_536;

impl Writer {
    pub(crate) fn new(node: String) -> Writer {
        let mut id = [0u8; 8];
        // A clock-derived id if the OS has no randomness to give.
        let link = match getrandom::fill(&mut id) {
            Ok(()) => u64::from_be_bytes(id),
            Err(_) => crate::now_ms().wrapping_mul(0x9e37_79b9_7f4a_7c15),
        };
        Writer {
            node,
            link,
            seq: 0,
            conn: None,
            retry_at: None,
            backoff: BACKOFF_MIN,
            buf: Vec::new(),
            lost: HashSet::new(),
            lost_all: false,
        }
    }

    /// True while sessions that lost frames have not been told.
    pub(crate) fn owes(&self) -> bool {
        self.lost_all || !self.lost.is_empty()
    }

    /// Forgets what was lost (the edge node is gone, and its sessions with
    /// it).
    pub(crate) fn forget_losses(&mut self) {
        self.lost.clear();
        self.lost_all = false;
    }

    /// Remembers the sessions `down` was for: it did not get through.
    fn note_lost(&mut self, down: &Down) {
        crate::metrics::metrics().relay_batches_lost.inc();
        let sessions = down
            .groups
            .iter()
            .flat_map(|(_, _, ss)| ss.iter().copied())
            .chain(down.closes.iter().map(|(s, _, _)| *s));
        for s in sessions {
            if self.lost.len() >= LOST_MAX {
                self.lost_all = true;
                self.lost.clear();
                return;
            }
            if !self.lost_all {
                self.lost.insert(s);
            }
        }
    }

    /// Opens the link if it is closed and the backoff allows; false if
    /// there is none (or nothing to open one with: no cluster).
    async fn connect(&mut self, opener: Option<&dyn Opener>) -> bool {
        if self.conn.is_some() {
            return true;
        }
        let Some(opener) = opener else {
            tracing::error!(node = %self.node, "relay: no relay link opener (the cluster did not start); frames for that node dropped");
            return false;
        };
        let now = tokio::time::Instant::now();
        if self.retry_at.is_some_and(|t| now < t) {
            return false;
        }
        match tokio::time::timeout(OPEN_TIMEOUT, opener.open(&self.node, self.link)).await {
            Ok(Ok(w)) => {
                tracing::debug!(node = %self.node, link = self.link, seq = self.seq, "relay link open");
                self.conn = Some(w);
                self.retry_at = None;
                self.backoff = BACKOFF_MIN;
                true
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                tracing::warn!(node = %self.node, error = %why, "relay: cannot open the link; frames for that node dropped until it opens");
                self.retry_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                false
            }
        }
    }

    /// Ships one batch, or remembers who it was for.
    pub(crate) async fn ship(&mut self, opener: Option<&dyn Opener>, down: &Down) {
        if !self.connect(opener).await {
            self.note_lost(down);
            return;
        }
        let owed = !self.lost.is_empty();
        let with_closes;
        let batch = if owed {
            let mut d = down.clone();
            let why = "frames for this connection were lost between nodes; reconnect and resume";
            d.closes
                .extend(self.lost.iter().map(|s| (*s, 4008, why.to_string())));
            with_closes = d;
            &with_closes
        } else {
            down
        };
        if self.lost_all {
            // The edge sees a gap: it closes every session that used us.
            self.seq += 1;
        }
        let seq = self.seq;
        self.seq += 1;
        self.buf.clear();
        self.buf.extend_from_slice(&[0; 12]);
        if encode_down_into(batch, &mut self.buf).is_err() || self.buf.len() - 12 > MAX_BATCH_BYTES
        {
            tracing::error!(node = %self.node, "relay: a batch too large to frame; dropped");
            self.note_lost(down);
            return;
        }
        let len = (self.buf.len() - 12) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf[4..12].copy_from_slice(&seq.to_be_bytes());
        let Some(w) = self.conn.as_mut() else {
            return;
        };
        let wrote = tokio::time::timeout(WRITE_TIMEOUT, async {
            w.write_all(&self.buf).await?;
            w.flush().await
        })
        .await;
        match wrote {
            Ok(Ok(())) => {
                if owed {
                    self.lost.clear();
                }
                self.lost_all = false;
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "write timed out".into(),
                };
                tracing::warn!(node = %self.node, error = %why, "relay link lost; the sessions it was for resume once it reopens");
                self.conn = None;
                self.note_lost(down);
            }
        }
    }
}

/// The edge's end of one relay link: reads batches until the stream ends
/// and hands each to [`Relay::arrive`]. Returns why it ended (`Ok` at a
/// clean end of stream).
pub async fn receive<R>(relay: Arc<Relay>, from: String, link: u64, r: R) -> io::Result<()>
where
    R: AsyncRead + Unpin,
{
    let mut r = BufReader::with_capacity(64 << 10, r);
    loop {
        let mut head = [0u8; 12];
        match r.read_exact(&mut head[..1]).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        r.read_exact(&mut head[1..]).await?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let seq = u64::from_be_bytes(head[4..12].try_into().map_err(io::Error::other)?);
        if len > MAX_BATCH_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a batch of {len} bytes (at most {MAX_BATCH_BYTES})"),
            ));
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        let down = decode_down_bytes(body).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("batch {seq} is not a valid Down"),
            )
        })?;
        relay.arrive(&from, link, seq, down);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use tokio::io::DuplexStream;
    use tokio::sync::mpsc;

    use super::*;
    use crate::outbound::{Out, Outbound, OutboundRx, OutboundStats};
    use crate::relay::Class;

    /// Opens in-memory links; the test gets the far ends.
    struct Pipes(Mutex<mpsc::UnboundedSender<(u64, DuplexStream)>>);

    impl Opener for Pipes {
        fn open(&self, _node: &str, link: u64) -> BoxFuture<'static, io::Result<LinkWriter>> {
            let (near, far) = tokio::io::duplex(1 << 16);
            let sent = self
                .0
                .lock()
                .map(|tx| tx.send((link, far)).is_ok())
                .unwrap_or(false);
            Box::pin(async move {
                if sent {
                    Ok(Box::new(near) as LinkWriter)
                } else {
                    Err(io::Error::other("test gone"))
                }
            })
        }
    }

    fn batch(frame: &'static [u8], session: u64) -> Down {
        Down {
            groups: vec![(Bytes::from_static(frame), Class::Durable, vec![session])],
            closes: vec![],
        }
    }

    async fn next(rx: &mut OutboundRx) -> Out {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(out)) => out,
            other => panic!("nothing for the session: {other:?}"),
        }
    }

    #[tokio::test]
    async fn batches_arrive_in_order_and_a_lost_one_closes_the_sessions_of_its_owner() {
        let edge = Relay::new("edge".into());
        let stats = Arc::new(OutboundStats::default());
        // Session 1 sent requests to "owner"; session 2 only to "other".
        let (s1, mut rx1) = Outbound::new(1, "u1".into(), "d".into(), stats.clone());
        let (s2, mut rx2) = Outbound::new(2, "u2".into(), "d".into(), stats);
        edge.register("owner", &s1);
        edge.register("other", &s2);

        let (tx, mut links) = mpsc::unbounded_channel();
        let pipes = Pipes(Mutex::new(tx));
        let mut w = Writer::new("edge".into());
        w.ship(Some(&pipes), &batch(b"first", 1)).await;
        let (link, far) = links.recv().await.expect("a link opened");
        let reader = tokio::spawn(receive(edge.clone(), "owner".into(), link, far));
        w.ship(Some(&pipes), &batch(b"second", 1)).await;
        assert!(matches!(next(&mut rx1).await, Out::Frame(f) if &f[..] == b"first"));
        assert!(matches!(next(&mut rx1).await, Out::Frame(f) if &f[..] == b"second"));

        // The link breaks: the next batch cannot be written, and is lost.
        reader.abort();
        let _ = reader.await;
        w.ship(Some(&pipes), &batch(b"lost", 1)).await;
        assert!(w.conn.is_none(), "a failed write drops the link");
        // The one after opens a new link; the edge sees seq 3 where 2 was
        // due and closes session 1, which would have missed "lost".
        w.ship(Some(&pipes), &batch(b"after", 1)).await;
        let (link2, far2) = links.recv().await.expect("a link reopened");
        assert_eq!(link2, link, "the same downlink keeps its id");
        tokio::spawn(receive(edge.clone(), "owner".into(), link2, far2));
        match next(&mut rx1).await {
            Out::Close(code, why) => {
                assert_eq!(code, 4008);
                assert!(why.contains("owner"), "{why}");
            }
            Out::Frame(f) => panic!("a frame after a gap: {f:?}"),
        }
        // Session 2 never used that owner: untouched.
        assert!(rx2.try_recv().is_none());
        drop(s2);
    }

    #[tokio::test]
    async fn a_gap_in_one_link_closes_and_a_stale_batch_is_dropped() {
        let edge = Relay::new("edge".into());
        let stats = Arc::new(OutboundStats::default());
        let (s1, mut rx1) = Outbound::new(1, "u1".into(), "d".into(), stats);
        edge.register("owner", &s1);
        edge.arrive("owner", 9, 0, batch(b"a", 1));
        edge.arrive("owner", 9, 1, batch(b"b", 1));
        // A late copy of batch 0 (an older connection of the same link).
        edge.arrive("owner", 9, 0, batch(b"a again", 1));
        assert!(matches!(next(&mut rx1).await, Out::Frame(f) if &f[..] == b"a"));
        assert!(matches!(next(&mut rx1).await, Out::Frame(f) if &f[..] == b"b"));
        assert!(rx1.try_recv().is_none(), "the stale batch was dropped");
        // A new link (the owner's downlink started again, or this node is a
        // new process to it) starts where it says, closing nobody.
        edge.arrive("owner", 10, 5, batch(b"c", 1));
        assert!(matches!(next(&mut rx1).await, Out::Frame(f) if &f[..] == b"c"));
        // Batch 6 of that link never came.
        edge.arrive("owner", 10, 7, batch(b"d", 1));
        assert!(matches!(next(&mut rx1).await, Out::Close(4008, _)));
    }

    /// Opens nothing the first time.
    struct FailsFirst(Pipes, std::sync::atomic::AtomicBool);

    impl Opener for FailsFirst {
        fn open(&self, node: &str, link: u64) -> BoxFuture<'static, io::Result<LinkWriter>> {
            if !self.1.swap(true, std::sync::atomic::Ordering::Relaxed) {
                return Box::pin(async { Err(io::Error::other("not up yet")) });
            }
            self.0.open(node, link)
        }
    }

    #[tokio::test]
    async fn what_could_not_be_shipped_closes_exactly_its_sessions() {
        let edge = Relay::new("edge".into());
        let stats = Arc::new(OutboundStats::default());
        let (s1, mut rx1) = Outbound::new(1, "u1".into(), "d".into(), stats.clone());
        let (s2, mut rx2) = Outbound::new(2, "u2".into(), "d".into(), stats);
        edge.register("owner", &s1);
        edge.register("owner", &s2);
        let (tx, mut links) = mpsc::unbounded_channel();
        let opener = FailsFirst(Pipes(Mutex::new(tx)), Default::default());
        let mut w = Writer::new("edge".into());
        // No link yet: the reply for session 1 is lost.
        w.ship(Some(&opener), &batch(b"reply", 1)).await;
        tokio::time::sleep(BACKOFF_MIN * 2).await;
        w.ship(Some(&opener), &batch(b"event", 2)).await;
        let (link, far) = links.recv().await.expect("a link opened");
        tokio::spawn(receive(edge.clone(), "owner".into(), link, far));
        // Session 2 gets its frame; session 1 is closed, not left waiting.
        assert!(matches!(next(&mut rx2).await, Out::Frame(f) if &f[..] == b"event"));
        assert!(matches!(next(&mut rx1).await, Out::Close(4008, _)));
        assert!(rx2.try_recv().is_none());
        drop((s1, s2));
    }

    #[tokio::test]
    async fn a_room_that_falls_quiet_still_closes_who_missed_its_last_frame() {
        let edge = Relay::new("edge".into());
        let stats = Arc::new(OutboundStats::default());
        let (s1, mut rx1) = Outbound::new(1, "u1".into(), "d".into(), stats);
        edge.register("owner", &s1);
        let owner = Relay::new("owner".into());
        let (tx, mut links) = mpsc::unbounded_channel();
        owner.set_opener(Arc::new(FailsFirst(
            Pipes(Mutex::new(tx)),
            Default::default(),
        )));
        let (link, rx) = crate::relay::link::Link::new("edge".into());
        tokio::spawn(crate::relay::endpoint::downlink(owner, "edge".into(), rx));
        // The last frame of the room cannot go (the first dial fails), and
        // nothing follows it.
        link.group(&Bytes::from_static(b"last"), Class::Durable, vec![1]);
        let (id, far) = tokio::time::timeout(Duration::from_secs(5), links.recv())
            .await
            .expect("the downlink dials again by itself")
            .expect("a link");
        tokio::spawn(receive(edge.clone(), "owner".into(), id, far));
        assert!(matches!(next(&mut rx1).await, Out::Close(4008, _)));
    }

    #[tokio::test]
    async fn a_corrupt_batch_ends_the_link() {
        let edge = Relay::new("edge".into());
        let (mut near, far) = tokio::io::duplex(1 << 10);
        let reader = tokio::spawn(receive(edge, "owner".into(), 1, far));
        // A length past the bound.
        near.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        near.write_all(&0u64.to_be_bytes()).await.unwrap();
        let e = reader.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A body that is not a Down.
        let edge = Relay::new("edge".into());
        let (mut near, far) = tokio::io::duplex(1 << 10);
        let reader = tokio::spawn(receive(edge, "owner".into(), 1, far));
        near.write_all(&3u32.to_be_bytes()).await.unwrap();
        near.write_all(&0u64.to_be_bytes()).await.unwrap();
        near.write_all(b"bad").await.unwrap();
        let e = reader.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
