//! The Inbox actor: the single writer of every user's inbox on this node.
//! It numbers each notice per user and group-commits the notices that
//! arrive while a commit runs (one store task in flight; different users'
//! notices share commits, one user's stay in order), then pushes each
//! stored notice to every connected device of its user. A device registers
//! with the last inbox seq it saw and receives what it missed first,
//! atomically with its registration (a registration waits while its user
//! has notices being stored), so nothing is missed or seen twice. A
//! backlog longer than one page ([`REPLAY_MAX`]) is replayed page by page:
//! the device is registered for live notices only after the last page, and
//! each next page is read once its connection has sent most of the last.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chalktalk_protocol::{CloseCode, InboxEvent, Notice, ServerFrame, UserId, encode};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster_derive::RactorMessage;

use crate::outbound::{Durable, Outbound, SessionId};
use crate::store::StoreError;
use crate::{now_ms, store::Store};

/// Missed inbox events replayed per page.
pub const REPLAY_MAX: usize = 500;
/// The next page of a replay is read once the connection's queue holds at
/// most this many frames.
const REPLAY_RESUME_BELOW: usize = crate::outbound::OUTBOUND_CAPACITY / 4;

#[derive(RactorMessage)]
pub enum InboxMsg {
    /// A device connected; replay what it missed after `since`. The reply
    /// says registration is done: notices after it are pushed live.
    Register {
        out: Outbound,
        since: Option<u64>,
        done: RpcReplyPort<()>,
    },
    Unregister {
        user: UserId,
        session: SessionId,
    },
    /// Store and push a notice to `user`.
    Deliver {
        user: UserId,
        notice: Notice,
    },
    /// Push an already encoded ephemeral frame (media progress) to every
    /// connected device of `user`; nothing is stored.
    Push {
        user: UserId,
        frame: Bytes,
    },
    /// Internal: the next page of a long replay for `out`, after `since`.
    Replay {
        out: Outbound,
        since: u64,
    },
    /// Internal: a group commit finished.
    Flushed(Vec<(UserId, InboxEvent, Result<(), StoreError>)>),
}

pub struct Inbox;

pub struct InboxState {
    store: Arc<dyn Store>,
    sessions: HashMap<UserId, Vec<Outbound>>,
    /// Highest seq handed out per user (stored or being stored).
    heads: HashMap<UserId, u64>,
    /// Notices per user not yet stored (pending or in flight).
    busy: HashMap<UserId, usize>,
    pending: Vec<(UserId, InboxEvent)>,
    in_flight: bool,
    /// Registrations waiting for their user's notices to be stored.
    deferred: Vec<(Outbound, Option<u64>, Option<RpcReplyPort<()>>)>,
}

impl InboxState {
    /// Replays one page after `since` and registers `out` for live notices,
    /// unless the page was full: then the next page follows (a `Replay`)
    /// once the connection has sent most of this one. `done` (the first
    /// page's) is answered either way.
    async fn register(
        &mut self,
        myself: &ActorRef<InboxMsg>,
        out: Outbound,
        since: Option<u64>,
        done: Option<RpcReplyPort<()>>,
    ) {
        let mut live = !out.is_closed();
        if let Some(since) = since.filter(|_| live) {
            match self.store.inbox_after(&out.user, since, REPLAY_MAX).await {
                Ok(events) => {
                    let last = events.last().map_or(since, |e| e.seq);
                    let full = events.len() == REPLAY_MAX;
                    for ev in events {
                        push(&out, &Bytes::from(encode(&ServerFrame::Inbox(ev))));
                    }
                    if full {
                        live = false;
                        tokio::spawn(next_page(myself.clone(), out.clone(), last));
                    }
                }
                Err(e) => tracing::warn!(user = %out.user, %e, "inbox replay failed"),
            }
        }
        if live {
            self.sessions.entry(out.user.clone()).or_default().push(out);
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// `register` now, or once the user's notices being stored are stored.
    async fn register_or_defer(
        &mut self,
        myself: &ActorRef<InboxMsg>,
        out: Outbound,
        since: Option<u64>,
        done: Option<RpcReplyPort<()>>,
    ) {
        if self.busy.get(&out.user).is_some_and(|n| *n > 0) {
            self.deferred.push((out, since, done));
        } else {
            self.register(myself, out, since, done).await;
        }
    }

    fn start_flush(&mut self, myself: &ActorRef<InboxMsg>) {
        if self.in_flight || self.pending.is_empty() {
            return;
        }
        self.in_flight = true;
        let mut by_user: HashMap<UserId, Vec<InboxEvent>> = HashMap::new();
        for (user, ev) in self.pending.drain(..) {
            by_user.entry(user).or_default().push(ev);
        }
        let (store, me) = (self.store.clone(), myself.clone());
        tokio::spawn(async move {
            // Users in parallel (their writes share commits), each user's
            // notices in order (each must follow the stored head).
            let per_user = by_user.into_iter().map(|(user, evs)| {
                let store = store.clone();
                async move {
                    let mut out = Vec::with_capacity(evs.len());
                    for ev in evs {
                        let res = store.append_inbox(&user, &ev).await;
                        out.push((user.clone(), ev, res));
                    }
                    out
                }
            });
            let results = futures_util::future::join_all(per_user).await;
            let _ = me.cast(InboxMsg::Flushed(results.into_iter().flatten().collect()));
        });
    }

    fn forget_idle(&mut self, user: &str) {
        if self.busy.get(user).is_none_or(|n| *n == 0) {
            self.busy.remove(user);
            if !self.sessions.contains_key(user) {
                self.heads.remove(user);
            }
        }
    }
}

/// Waits until `out` has sent most of its queue, then asks for the page
/// after `since` (nothing if the connection closed meanwhile).
async fn next_page(me: ActorRef<InboxMsg>, out: Outbound, since: u64) {
    while out.queued() > REPLAY_RESUME_BELOW {
        if out.is_closed() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let _ = me.cast(InboxMsg::Replay { out, since });
}

fn push(out: &Outbound, frame: &Bytes) {
    if out.durable(frame) == Durable::Lagging {
        out.kill(
            CloseCode::SLOW_CONSUMER,
            "too slow to receive; reconnect and resume",
        );
    }
}

impl Actor for Inbox {
    type Msg = InboxMsg;
    type State = InboxState;
    type Arguments = Arc<dyn Store>;

    async fn pre_start(
        &self,
        _myself: ActorRef<InboxMsg>,
        store: Arc<dyn Store>,
    ) -> Result<InboxState, ActorProcessingErr> {
        Ok(InboxState {
            store,
            sessions: HashMap::new(),
            heads: HashMap::new(),
            busy: HashMap::new(),
            pending: Vec::new(),
            in_flight: false,
            deferred: Vec::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<InboxMsg>,
        msg: InboxMsg,
        state: &mut InboxState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            InboxMsg::Register { out, since, done } => {
                state
                    .register_or_defer(&myself, out, since, Some(done))
                    .await;
            }
            InboxMsg::Replay { out, since } => {
                state
                    .register_or_defer(&myself, out, Some(since), None)
                    .await;
            }
            InboxMsg::Unregister { user, session } => {
                if let Some(list) = state.sessions.get_mut(&user) {
                    list.retain(|o| o.session != session);
                    if list.is_empty() {
                        state.sessions.remove(&user);
                        state.forget_idle(&user);
                    }
                }
            }
            InboxMsg::Push { user, frame } => {
                for out in state.sessions.get(&user).into_iter().flatten() {
                    out.ephemeral(&frame);
                }
            }
            InboxMsg::Deliver { user, notice } => {
                let head = match state.heads.get(&user) {
                    Some(h) => *h,
                    None => match state.store.inbox_head(&user).await {
                        Ok(h) => h,
                        Err(e) => {
                            tracing::warn!(%user, %e, "inbox head unavailable; notice dropped");
                            return Ok(());
                        }
                    },
                };
                let ev = InboxEvent {
                    seq: head + 1,
                    at_ms: now_ms(),
                    notice,
                };
                state.heads.insert(user.clone(), ev.seq);
                *state.busy.entry(user.clone()).or_default() += 1;
                state.pending.push((user, ev));
                state.start_flush(&myself);
            }
            InboxMsg::Flushed(results) => {
                state.in_flight = false;
                for (user, ev, res) in results {
                    if let Some(n) = state.busy.get_mut(&user) {
                        *n = n.saturating_sub(1);
                    }
                    match res {
                        Ok(()) => {
                            if let Some(outs) = state.sessions.get(&user) {
                                let frame = Bytes::from(encode(&ServerFrame::Inbox(ev)));
                                for out in outs {
                                    push(out, &frame);
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%user, seq = ev.seq, %e, "inbox append failed; notice dropped");
                            // Later seqs of this user were numbered after the
                            // lost one: read the head again from the store.
                            state.heads.remove(&user);
                        }
                    }
                    state.forget_idle(&user);
                }
                let waiting = std::mem::take(&mut state.deferred);
                for (out, since, done) in waiting {
                    state.register_or_defer(&myself, out, since, done).await;
                }
                state.start_flush(&myself);
            }
        }
        Ok(())
    }
}
