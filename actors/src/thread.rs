//! The ChatThread actor: single writer of one chat thread. It sequences and
//! group-commits messages, fans each stored message out once-encoded to the
//! sessions viewing the thread, sends inbox notices to members who are not
//! viewing it, relays typing indicators and keeps read/delivered cursors.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use chalktalk_protocol::{
    Attachment, Cursor, ErrorCode, Message, Notice, Reply, ServerFrame, ThreadInfo, ThreadLive,
    UserId, encode, valid_id,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;
use tracing::Instrument;

use crate::handle::handled;
use crate::inbox::InboxMsg;
use crate::lease::{Lease, LeaseKind};
use crate::outbound::{Durable, Outbound, SessionId};
use crate::store::{StoreError, ThreadMeta};
use crate::supervisor::{ChildArgs, NotFound, Registry, Supervised, drain};
use crate::{Deps, lock, now_ms};

mod edit;
mod members;
pub mod route;
mod typing;
pub use edit::EditReq;

/// Message ids remembered for idempotent resends.
const MSG_ID_WINDOW: usize = 10_000;
/// Messages sent on `open` without `since`.
const OPEN_PAGE: u64 = 50;

/// A message as the client sent it, before it is sequenced.
#[derive(Debug, Clone)]
pub struct Draft {
    pub msg_id: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub reply_to: Option<u64>,
}

#[derive(RactorMessage)]
pub enum ThreadMsg {
    Open {
        out: Outbound,
        req: u32,
        since: Option<u64>,
    },
    Close {
        out: Outbound,
        req: u32,
    },
    Disconnected {
        session: SessionId,
    },
    Send {
        out: Outbound,
        req: u32,
        draft: Draft,
    },
    Typing {
        out: Outbound,
        on: bool,
    },
    Mark {
        out: Outbound,
        req: u32,
        delivered: Option<u64>,
        read: Option<u64>,
    },
    History {
        out: Outbound,
        req: u32,
        before: Option<u64>,
        limit: u32,
    },
    /// Edit or delete one's own message (`edit_message`, `delete_message`).
    Edit {
        out: Outbound,
        req: u32,
        edit: EditReq,
    },
    // Internal:
    Flushed(Result<(), StoreError>),
    /// The thread's lease was lost (why): it stops serving here.
    LeaseLost(String),
    IdleCheck,
    /// A typing indicator was not renewed in time.
    TypingExpired {
        session: SessionId,
        epoch: u64,
    },
}

impl ThreadMsg {
    fn counted(&self) -> bool {
        !matches!(
            self,
            ThreadMsg::Flushed(_)
                | ThreadMsg::IdleCheck
                | ThreadMsg::TypingExpired { .. }
                | ThreadMsg::LeaseLost(_)
        )
    }
}

struct Pending {
    msg: Message,
    waiters: Vec<(Outbound, u32, bool)>,
}

pub struct ThreadState {
    id: String,
    deps: Arc<Deps>,
    registry: Registry,
    depth: Arc<AtomicUsize>,
    meta: ThreadMeta,
    head: u64,
    durable: u64,
    ring: VecDeque<(u64, Bytes)>,
    viewers: HashMap<SessionId, Outbound>,
    msg_ids: HashMap<(UserId, String), u64>,
    msg_order: VecDeque<(UserId, String)>,
    cursors: HashMap<UserId, Cursor>,
    /// Seqs of deleted messages (those deleted while the thread runs and
    /// among the messages read at start).
    deleted: HashSet<u64>,
    /// Connections showing as typing: (user, epoch of their last `on`).
    typing: HashMap<SessionId, (UserId, u64)>,
    typing_epoch: u64,
    pending: Vec<Pending>,
    in_flight: Option<Vec<Pending>>,
    /// The thread's lease when a cluster placed it here, and the task
    /// renewing it.
    lease: Option<(Lease, tokio::task::JoinHandle<()>)>,
    span: tracing::Span,
}

/// The thread stopped serving here (its lease moved): a failure, so that
/// its supervisor finds the new owner and its viewers reconnect to it.
#[derive(Debug, thiserror::Error)]
#[error("thread {0} stopped serving here: {1}")]
pub struct Retired(pub String, pub String);

#[derive(Default)]
pub struct ChatThread;

impl Supervised for ChatThread {
    const KIND: &'static str = "thread";

    fn orphan(_id: &str, sessions: Vec<Outbound>) {
        // Viewers reconnect and reopen with `since`: no message is missed.
        for o in sessions {
            o.kill(
                chalktalk_protocol::CloseCode::SLOW_CONSUMER,
                "thread restarted; reconnect and resume",
            );
        }
    }
}

use crate::outbound::{err_frame as error, ok_frame as ok};

const ATTACHMENT_KINDS: &[&str] = &["video", "image", "audio", "file", "review"];

impl ThreadState {
    fn info(&self) -> ThreadInfo {
        ThreadInfo {
            id: self.id.clone(),
            kind: self.meta.kind,
            title: self.meta.title.clone(),
            created_by: self.meta.created_by.clone(),
            members: self.meta.members.clone(),
            head: self.durable,
            room: chalktalk_protocol::room_of_thread(self.meta.kind, &self.id).map(str::to_owned),
        }
    }

    fn member(&self, out: &Outbound, req: u32) -> bool {
        if self.meta.members.contains(&out.user) {
            return true;
        }
        out.control(error(
            req,
            ErrorCode::NotMember,
            format!("you are not a member of thread {}", self.id),
        ));
        false
    }

    fn remember(&mut self, user: &str, id: &str, seq: u64) {
        let key = (user.to_string(), id.to_string());
        if self.msg_ids.insert(key.clone(), seq).is_none() {
            self.msg_order.push_back(key);
            if self.msg_order.len() > MSG_ID_WINDOW
                && let Some(old) = self.msg_order.pop_front()
            {
                self.msg_ids.remove(&old);
            }
        }
    }

    fn frame(&self, m: &Message) -> Bytes {
        Bytes::from(encode(&ServerFrame::Msg {
            thread: self.id.clone(),
            msg: m.clone(),
        }))
    }

    fn live(&self, ev: ThreadLive, except: Option<SessionId>) {
        let frame = Bytes::from(encode(&ServerFrame::ThreadLive {
            thread: self.id.clone(),
            ev,
        }));
        for (sid, out) in &self.viewers {
            if Some(*sid) != except {
                out.ephemeral(&frame);
            }
        }
    }

    /// Answers every message waiting to be stored (the thread stops).
    fn fail_waiting(&mut self, code: ErrorCode, why: &str) {
        let failed = self
            .in_flight
            .take()
            .into_iter()
            .flatten()
            .chain(self.pending.drain(..));
        for p in failed {
            for (out, req, _) in p.waiters {
                out.control(error(req, code, why.to_string()));
            }
        }
    }

    fn start_flush(&mut self, myself: &ActorRef<ThreadMsg>) {
        if self.in_flight.is_some() || self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let msgs: Vec<Message> = batch.iter().map(|p| p.msg.clone()).collect();
        self.in_flight = Some(batch);
        let (store, thread, me) = (self.deps.store.clone(), self.id.clone(), myself.clone());
        let epoch = self.lease.as_ref().map_or(0, |(l, _)| l.epoch);
        tokio::spawn(
            async move {
                let res = store.append_messages_at(&thread, epoch, &msgs).await;
                let _ = me.cast(ThreadMsg::Flushed(res));
            }
            .instrument(self.span.clone()),
        );
    }

    fn flushed(&mut self, myself: &ActorRef<ThreadMsg>) {
        let batch = self.in_flight.take().unwrap_or_default();
        let mut lagging = Vec::new();
        let mut senders: Vec<UserId> = Vec::new();
        // Who views the thread does not change while the batch is fanned out.
        let viewing: HashSet<UserId> = self.viewers.values().map(|o| o.user.clone()).collect();
        for p in batch {
            if !senders.contains(&p.msg.from) {
                senders.push(p.msg.from.clone());
            }
            let frame = self.frame(&p.msg);
            for (sid, out) in &self.viewers {
                if out.durable(&frame) != Durable::Sent {
                    lagging.push(*sid);
                }
            }
            for m in &self.meta.members {
                // Edits and deletions are not news.
                if m != &p.msg.from && !viewing.contains(m) && p.msg.edit.is_none() {
                    let _ = self.deps.inbox.cast(InboxMsg::Deliver {
                        user: m.clone(),
                        notice: Notice::NewMessage {
                            thread: self.id.clone(),
                            seq: p.msg.seq,
                            from: p.msg.from.clone(),
                            preview: p.msg.text.chars().take(80).collect(),
                        },
                    });
                }
            }
            for (out, req, dup) in p.waiters {
                out.control(ok(
                    req,
                    Reply::Ack {
                        seq: p.msg.seq,
                        dup,
                    },
                ));
            }
            self.durable = p.msg.seq;
            self.ring.push_back((p.msg.seq, frame));
            while self.ring.len() > self.deps.config.catchup_max as usize {
                self.ring.pop_front();
            }
        }
        // Senders have read what they wrote: store and show their cursors.
        for user in senders {
            if let Some(cursor) = self.cursors.get(&user).cloned() {
                self.live(
                    ThreadLive::Cursor {
                        cursor: cursor.clone(),
                    },
                    None,
                );
                let (store, thread) = (self.deps.store.clone(), self.id.clone());
                tokio::spawn(async move {
                    if let Err(e) = store.put_cursor(&thread, &cursor).await {
                        tracing::warn!(%thread, %e, "sender cursor write failed");
                    }
                });
            }
        }
        for sid in lagging {
            if let Some(out) = self.viewers.remove(&sid) {
                lock(&self.registry).remove(&sid);
                out.kill(
                    chalktalk_protocol::CloseCode::SLOW_CONSUMER,
                    "too slow to receive thread messages",
                );
            }
        }
        self.start_flush(myself);
    }

    fn send(&mut self, myself: &ActorRef<ThreadMsg>, out: Outbound, req: u32, draft: Draft) {
        let Draft {
            msg_id,
            text,
            attachments,
            reply_to,
        } = draft;
        if !self.member(&out, req) {
            return;
        }
        let limits = &self.deps.config.limits;
        let invalid = if !valid_id(&msg_id) {
            Some((
                ErrorCode::Invalid,
                "msg_id must be 1-64 characters of [A-Za-z0-9_.:@-]".to_string(),
            ))
        } else if text.len() > limits.max_text_bytes as usize {
            Some((
                ErrorCode::TextTooLong,
                format!(
                    "text is {} bytes; at most {}",
                    text.len(),
                    limits.max_text_bytes
                ),
            ))
        } else if text.trim().is_empty() && attachments.is_empty() {
            Some((
                ErrorCode::Invalid,
                "a message needs text or an attachment".into(),
            ))
        } else if attachments.len() > limits.max_attachments as usize {
            Some((
                ErrorCode::Invalid,
                format!("at most {} attachments", limits.max_attachments),
            ))
        } else if attachments.iter().any(|a| {
            !ATTACHMENT_KINDS.contains(&a.kind.as_str())
                || !valid_id(&a.ref_id)
                || a.name.as_ref().is_some_and(|n| n.len() > 200)
        }) {
            Some((
                ErrorCode::Invalid,
                format!(
                    "attachment kind must be one of {ATTACHMENT_KINDS:?}, with a valid ref_id and a name of at most 200 bytes"
                ),
            ))
        } else if reply_to.is_some_and(|r| r == 0 || r > self.head) {
            Some((
                ErrorCode::NotFound,
                "reply_to names no message of this thread".into(),
            ))
        } else {
            None
        };
        if let Some((code, msg)) = invalid {
            out.control(error(req, code, msg));
            return;
        }
        if self.dup(&out, req, &msg_id) {
            return;
        }
        self.head += 1;
        let msg = Message {
            seq: self.head,
            id: msg_id,
            from: out.user.clone(),
            at_ms: now_ms(),
            text,
            attachments,
            reply_to,
            edit: None,
        };
        self.sequence(myself, msg, out, req);
    }

    /// A resend of `msg_id` by `out`'s user: answered (now, or when its
    /// message is stored) as a duplicate; `true` if it was one.
    fn dup(&mut self, out: &Outbound, req: u32, msg_id: &str) -> bool {
        let Some(seq) = self
            .msg_ids
            .get(&(out.user.clone(), msg_id.to_string()))
            .copied()
        else {
            return false;
        };
        if seq <= self.durable {
            out.control(ok(req, Reply::Ack { seq, dup: true }));
        } else if let Some(p) = self
            .pending
            .iter_mut()
            .chain(self.in_flight.iter_mut().flatten())
            .find(|p| p.msg.seq == seq)
        {
            p.waiters.push((out.clone(), req, true));
        }
        true
    }

    /// Queues `msg` (seq `self.head`, already counted) for the next commit.
    fn sequence(&mut self, myself: &ActorRef<ThreadMsg>, msg: Message, out: Outbound, req: u32) {
        self.remember(&msg.from, &msg.id, msg.seq);
        // The sender has read what they wrote.
        let c = self.cursors.entry(msg.from.clone()).or_insert(Cursor {
            user: msg.from.clone(),
            delivered: 0,
            read: 0,
        });
        c.delivered = c.delivered.max(msg.seq);
        c.read = c.read.max(msg.seq);
        self.pending.push(Pending {
            msg,
            waiters: vec![(out, req, false)],
        });
        self.start_flush(myself);
    }

    /// Registers a viewer, replies `thread_opened`, and sends the messages
    /// after the effective `since` (older ones from the store, recent ones
    /// from the ring of encoded frames).
    async fn open(&mut self, out: Outbound, req: u32, since: Option<u64>) {
        let head = self.durable;
        let max = self.deps.config.catchup_max;
        let since = match since {
            // A client ahead of the server (restored from elsewhere) gets nothing twice.
            Some(s) if s >= head => head,
            Some(s) if head - s <= max => s,
            Some(_) => head.saturating_sub(max),
            None => head.saturating_sub(OPEN_PAGE),
        };
        let first_in_ring = self.ring.front().map(|(s, _)| *s).unwrap_or(head + 1);
        let mut frames = Vec::new();
        if since + 1 < first_in_ring {
            let want = (first_in_ring - 1 - since) as usize;
            match self.deps.store.messages_after(&self.id, since, want).await {
                Ok(msgs) if msgs.len() == want => frames.extend(msgs.iter().map(|m| self.frame(m))),
                Ok(_) => {
                    out.control(error(
                        req,
                        ErrorCode::Internal,
                        "thread log incomplete; try again",
                    ));
                    return;
                }
                Err(e) => {
                    out.control(error(req, e.code(), format!("storage: {e}")));
                    return;
                }
            }
        }
        frames.extend(
            self.ring
                .iter()
                .filter(|(seq, _)| *seq > since)
                .map(|(_, f)| f.clone()),
        );
        let mut cursors: Vec<Cursor> = self.cursors.values().cloned().collect();
        cursors.sort_by(|a, b| a.user.cmp(&b.user));
        out.control(ok(
            req,
            Reply::ThreadOpened {
                thread: self.info(),
                since,
                cursors,
            },
        ));
        self.viewers.insert(out.session, out.clone());
        lock(&self.registry).insert(out.session, out.clone());
        for f in frames {
            if out.durable(&f) != Durable::Sent {
                out.kill(
                    chalktalk_protocol::CloseCode::SLOW_CONSUMER,
                    "too slow to receive the catch-up",
                );
                break;
            }
        }
    }
}

impl Actor for ChatThread {
    type Msg = ThreadMsg;
    type State = ThreadState;
    type Arguments = ChildArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ThreadMsg>,
        args: ChildArgs,
    ) -> Result<ThreadState, ActorProcessingErr> {
        let ChildArgs {
            id,
            deps,
            registry,
            depth,
        } = args;
        let store = deps.store.clone();
        let Some(meta) = store.thread(&id).await? else {
            return Err(Box::new(NotFound(format!("thread {id}"))));
        };
        // In a cluster: take the lease, then raise the fence to its epoch
        // before reading, so that whatever an older owner still gets in is
        // read below and anything later from it is refused.
        let lease = match &deps.placement {
            Some(p) => {
                let lease = p.take(LeaseKind::Thread, &id).await?;
                store.fence_thread(&id, lease.epoch).await?;
                Some(lease)
            }
            None => None,
        };
        let head = store.thread_head(&id).await?;
        let cap = deps.config.catchup_max;
        let recent = store
            .messages_after(
                &id,
                head.saturating_sub(cap.max(1000)),
                cap.max(1000) as usize,
            )
            .await?;
        let cursors = store.cursors(&id).await?;
        let deps_placement = deps.placement.clone();
        let mut st = ThreadState {
            span: tracing::info_span!("thread", thread = %id),
            id,
            deps,
            registry,
            depth,
            meta,
            head,
            durable: head,
            ring: VecDeque::new(),
            viewers: HashMap::new(),
            msg_ids: HashMap::new(),
            msg_order: VecDeque::new(),
            cursors: cursors.into_iter().map(|c| (c.user.clone(), c)).collect(),
            deleted: HashSet::new(),
            typing: HashMap::new(),
            typing_epoch: 0,
            pending: Vec::new(),
            in_flight: None,
            // Renewed from here on (not before: a start that fails above
            // must not keep a lease nobody serves).
            lease: match (lease, &deps_placement) {
                (Some(l), Some(p)) => {
                    let keeper = crate::lease::keep(
                        p.clone(),
                        l.clone(),
                        myself.clone(),
                        ThreadMsg::LeaseLost,
                    );
                    Some((l, keeper))
                }
                _ => None,
            },
        };
        for m in &recent {
            st.remember(&m.from, &m.id, m.seq);
            if let Some(chalktalk_protocol::MsgEdit::Delete { of }) = m.edit {
                st.deleted.insert(of);
            }
            if m.seq + cap > head {
                st.ring.push_back((m.seq, st.frame(m)));
            }
        }
        Self::orphan(&st.id, drain(&st.registry));
        Ok(st)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ThreadMsg>,
        st: &mut ThreadState,
    ) -> Result<(), ActorProcessingErr> {
        if let (Some((lease, keeper)), Some(p)) = (st.lease.take(), st.deps.placement.clone()) {
            keeper.abort();
            crate::lease::let_go(p, lease);
        }
        Ok(())
    }

    async fn post_start(
        &self,
        myself: ActorRef<ThreadMsg>,
        st: &mut ThreadState,
    ) -> Result<(), ActorProcessingErr> {
        // A thread started only to post or read history stops when idle.
        myself.send_after(st.deps.config.idle_stop, || ThreadMsg::IdleCheck);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ThreadMsg>,
        msg: ThreadMsg,
        st: &mut ThreadState,
    ) -> Result<(), ActorProcessingErr> {
        if msg.counted() {
            handled(&st.depth);
        }
        let span = st.span.clone();
        Box::pin(dispatch(myself, msg, st)).instrument(span).await
    }
}

/// The body of `handle`, run inside the actor's span.
async fn dispatch(
    myself: ActorRef<ThreadMsg>,
    msg: ThreadMsg,
    st: &mut ThreadState,
) -> Result<(), ActorProcessingErr> {
    match msg {
        ThreadMsg::Open { out, req, since } => {
            st.refresh_members().await;
            if st.member(&out, req) {
                st.open(out, req, since).await;
            }
        }
        ThreadMsg::Close { out, req } => {
            st.typing_stopped(out.session);
            st.viewers.remove(&out.session);
            lock(&st.registry).remove(&out.session);
            out.control(ok(req, Reply::Done));
            if st.viewers.is_empty() {
                myself.send_after(st.deps.config.idle_stop, || ThreadMsg::IdleCheck);
            }
        }
        ThreadMsg::Disconnected { session } => {
            st.typing_stopped(session);
            st.viewers.remove(&session);
            lock(&st.registry).remove(&session);
            if st.viewers.is_empty() {
                myself.send_after(st.deps.config.idle_stop, || ThreadMsg::IdleCheck);
            }
        }
        ThreadMsg::Send { out, req, draft } => {
            st.refresh_members().await;
            st.send(&myself, out, req, draft)
        }
        ThreadMsg::Edit { out, req, edit } => {
            st.refresh_members().await;
            st.edit(&myself, out, req, edit).await
        }
        ThreadMsg::Typing { out, on } => st.typing(&myself, &out, on),
        ThreadMsg::TypingExpired { session, epoch } => st.typing_expired(session, epoch),
        ThreadMsg::Mark {
            out,
            req,
            delivered,
            read,
        } => {
            st.refresh_members().await;
            if !st.member(&out, req) {
                return Ok(());
            }
            if delivered.into_iter().chain(read).any(|s| s > st.durable) {
                out.control(error(
                    req,
                    ErrorCode::Invalid,
                    "cursor beyond the newest message",
                ));
                return Ok(());
            }
            let c = st.cursors.entry(out.user.clone()).or_insert(Cursor {
                user: out.user.clone(),
                delivered: 0,
                read: 0,
            });
            c.read = c.read.max(read.unwrap_or(0));
            c.delivered = c.delivered.max(delivered.unwrap_or(0)).max(c.read);
            let cursor = c.clone();
            st.live(
                ThreadLive::Cursor {
                    cursor: cursor.clone(),
                },
                None,
            );
            let (store, thread) = (st.deps.store.clone(), st.id.clone());
            tokio::spawn(async move {
                match store.put_cursor(&thread, &cursor).await {
                    Ok(()) => out.control(ok(req, Reply::Done)),
                    Err(e) => out.control(error(req, e.code(), format!("not stored: {e}"))),
                }
            });
        }
        ThreadMsg::History {
            out,
            req,
            before,
            limit,
        } => {
            st.refresh_members().await;
            if !st.member(&out, req) {
                return Ok(());
            }
            let max = st.deps.config.limits.max_history_page;
            if limit == 0 || limit > max {
                out.control(error(
                    req,
                    ErrorCode::Invalid,
                    format!("limit must be 1..={max}"),
                ));
                return Ok(());
            }
            let before = before.unwrap_or(u64::MAX).min(st.durable + 1);
            let (store, thread) = (st.deps.store.clone(), st.id.clone());
            tokio::spawn(async move {
                match store.messages_before(&thread, before, limit as usize).await {
                    Ok(messages) => {
                        let more = messages.first().is_some_and(|m| m.seq > 1);
                        out.control(ok(req, Reply::History { messages, more }));
                    }
                    Err(e) => out.control(error(req, e.code(), format!("storage: {e}"))),
                }
            });
        }
        ThreadMsg::Flushed(Ok(())) => st.flushed(&myself),
        ThreadMsg::LeaseLost(why) => {
            tracing::warn!(%why, "thread lease lost; it stops serving here");
            st.fail_waiting(
                ErrorCode::Unavailable,
                &format!("thread moved ({why}); retry"),
            );
            return Err(Box::new(Retired(st.id.clone(), why)));
        }
        ThreadMsg::Flushed(Err(e)) => {
            if matches!(e, StoreError::Fenced { .. }) {
                crate::metrics::metrics().lease_losses.inc();
                tracing::warn!(%e, "thread writes fenced: another node owns it now");
            } else {
                tracing::error!(%e, "thread commit failed; restarting from the store");
            }
            st.fail_waiting(e.code(), &format!("not stored: {e}"));
            return Err(Box::new(e));
        }
        ThreadMsg::IdleCheck => {
            if st.viewers.is_empty()
                && st.pending.is_empty()
                && st.in_flight.is_none()
                && st.depth.load(Ordering::Relaxed) == 0
            {
                myself.stop(Some("idle".into()));
            }
        }
    }
    Ok(())
}
