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
//!
//! In a cluster a user's notices are written by one node, the user's
//! inbox owner (rendezvous hashing over the nodes up,
//! [`Relay::inbox_owner`]); other nodes forward their notices there. While
//! nodes disagree on who is up, two may write one inbox: the store takes
//! an append only as the next seq (`Conflict` otherwise), and a notice that
//! lost that race is numbered again from the stored head and retried. After storing, a node sends its notices to
//! every other node's relay; each inbox pushes a notice to a device only
//! as the next seq that device saw, skips what it saw already, and replays
//! from the store on a gap, so each device sees every notice once and in
//! order whichever node wrote it. A forwarded notice is kept until the
//! owner's broadcast brings it back, and sent again to the inbox's owner
//! of the moment if its owner went down first (`inbox/forward.rs`).

mod forward;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chalktalk_protocol::{CloseCode, InboxEvent, Notice, ServerFrame, UserId, encode};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster_derive::RactorMessage;

use crate::outbound::{Durable, Outbound, SessionId};
use crate::relay::Relay;
use crate::store::StoreError;
use crate::{now_ms, store::Store};

/// Missed inbox events replayed per page.
pub const REPLAY_MAX: usize = 500;
/// Times a notice that lost the race for its seq to another node is
/// numbered again before it is given up (logged).
const MAX_RENUMBER: u8 = 32;
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
    /// Internal: a group commit finished (with each notice's renumber
    /// count).
    Flushed(Vec<(UserId, InboxEvent, u8, Result<(), StoreError>)>),
    /// A notice another node forwarded here (this node owns the user's
    /// inbox in its view): stored here, never forwarded again.
    DeliverHere {
        user: UserId,
        notice: Notice,
    },
    /// Notices another node stored, for this node's devices.
    Remote(Vec<(UserId, InboxEvent)>),
    /// An ephemeral frame from another node for `user`'s devices here.
    RemotePush {
        user: UserId,
        frame: Bytes,
    },
    /// Internal (in a cluster): send again the forwarded notices whose
    /// owner went down before storing them.
    Sweep,
    /// How many users' inboxes this node holds (a device connected here or
    /// notices numbered here) and writes (in a cluster, those it owns by
    /// rendezvous), for the metrics.
    Owned(RpcReplyPort<usize>),
}

/// What the inbox starts from.
pub struct InboxArgs {
    pub store: Arc<dyn Store>,
    /// In a cluster: where stored notices go to reach other nodes.
    pub relay: Option<Arc<Relay>>,
}

/// A registered device and the last inbox seq pushed to it (`None`: it
/// registered without `since` and nothing was pushed yet).
struct Device {
    out: Outbound,
    seen: Option<u64>,
}

pub struct Inbox;

pub struct InboxState {
    store: Arc<dyn Store>,
    relay: Option<Arc<Relay>>,
    sessions: HashMap<UserId, Vec<Device>>,
    /// Highest seq handed out per user (stored or being stored).
    heads: HashMap<UserId, u64>,
    /// Notices per user not yet stored (pending or in flight).
    busy: HashMap<UserId, usize>,
    pending: Vec<(UserId, InboxEvent, u8)>,
    in_flight: bool,
    /// Registrations waiting for their user's notices to be stored.
    deferred: Vec<(Outbound, Option<u64>, Option<RpcReplyPort<()>>)>,
    /// Notices forwarded to another node and not yet seen stored.
    forwarded: forward::Forwarded,
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
        let mut seen = since;
        if let Some(since) = since.filter(|_| live) {
            match self.store.inbox_after(&out.user, since, REPLAY_MAX).await {
                Ok(events) => {
                    let last = events.last().map_or(since, |e| e.seq);
                    seen = Some(last);
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
            self.sessions
                .entry(out.user.clone())
                .or_default()
                .push(Device { out, seen });
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
        let mut by_user: HashMap<UserId, Vec<(InboxEvent, u8)>> = HashMap::new();
        for (user, ev, tries) in self.pending.drain(..) {
            by_user.entry(user).or_default().push((ev, tries));
        }
        let (store, me) = (self.store.clone(), myself.clone());
        tokio::spawn(async move {
            // Users in parallel (their writes share commits), each user's
            // notices in order (each must follow the stored head).
            let per_user = by_user.into_iter().map(|(user, evs)| {
                let store = store.clone();
                async move {
                    let mut out = Vec::with_capacity(evs.len());
                    for (ev, tries) in evs {
                        let res = store.append_inbox(&user, &ev).await;
                        out.push((user.clone(), ev, tries, res));
                    }
                    out
                }
            });
            let results = futures_util::future::join_all(per_user).await;
            let _ = me.cast(InboxMsg::Flushed(results.into_iter().flatten().collect()));
        });
    }

    /// Pushes stored notices of `user` (in seq order) to its devices here:
    /// each only as the next seq it saw; one that missed some is
    /// unregistered and replayed from the store.
    fn push_stored(&mut self, myself: &ActorRef<InboxMsg>, user: &str, evs: &[InboxEvent]) {
        let Some(devices) = self.sessions.get_mut(user) else {
            return;
        };
        let frames: Vec<(u64, Bytes)> = evs
            .iter()
            .map(|ev| (ev.seq, Bytes::from(encode(&ServerFrame::Inbox(ev.clone())))))
            .collect();
        devices.retain_mut(|d| {
            for (seq, frame) in &frames {
                match d.seen {
                    Some(seen) if *seq <= seen => continue,
                    Some(seen) if *seq > seen + 1 => {
                        // A gap (a notice stored by another node is still
                        // on its way): read it from the store instead.
                        let _ = myself.cast(InboxMsg::Replay {
                            out: d.out.clone(),
                            since: seen,
                        });
                        return false;
                    }
                    _ => {
                        push(&d.out, frame);
                        d.seen = Some(*seq);
                    }
                }
            }
            true
        });
        if devices.is_empty() {
            self.sessions.remove(user);
        }
    }

    /// Stores a notice here, or in a cluster forwards it to the owner of
    /// `user`'s inbox and keeps it until that node says it stored it
    /// (`sends`: how many times it was forwarded before).
    async fn deliver(
        &mut self,
        myself: &ActorRef<InboxMsg>,
        user: UserId,
        notice: Notice,
        sends: u32,
    ) {
        if let Some(relay) = &self.relay {
            let owner = relay.inbox_owner(&user);
            if owner != relay.node()
                && let Some(peer) = relay.peer(&owner)
                && peer
                    .cast(crate::relay::RelayMsg::Deliver {
                        user: user.clone(),
                        notice: notice.clone(),
                    })
                    .is_ok()
            {
                self.forwarded.add(user, notice, owner, sends + 1);
                return;
            }
        }
        self.append(myself, user, notice).await;
    }

    /// Numbers a notice as the next of `user`'s inbox and queues it for
    /// the next group commit.
    async fn append(&mut self, myself: &ActorRef<InboxMsg>, user: UserId, notice: Notice) {
        let ev = InboxEvent {
            seq: 0,
            at_ms: now_ms(),
            notice,
        };
        self.number(user, ev, 0).await;
        self.start_flush(myself);
    }

    /// Numbers `ev` as the next of `user`'s inbox (the head read from the
    /// store when not known here) and queues it; dropped (logged) when the
    /// head cannot be read.
    async fn number(&mut self, user: UserId, mut ev: InboxEvent, tries: u8) {
        let head = match self.heads.get(&user) {
            Some(h) => *h,
            None => match self.store.inbox_head(&user).await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(%user, %e, "inbox head unavailable; notice dropped");
                    return;
                }
            },
        };
        ev.seq = head + 1;
        self.heads.insert(user.clone(), ev.seq);
        *self.busy.entry(user.clone()).or_default() += 1;
        self.pending.push((user, ev, tries));
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

/// Sends what this node stored to the inboxes of every other node.
fn broadcast(relay: &Relay, msg: impl Fn() -> crate::relay::RelayMsg) {
    for node in ractor::pg::which_scoped_groups(&crate::relay::SCOPE.to_string()) {
        if node != relay.node()
            && relay.is_live(&node)
            && let Some(peer) = relay.peer(&node)
        {
            let _ = peer.cast(msg());
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
    type Arguments = InboxArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<InboxMsg>,
        args: InboxArgs,
    ) -> Result<InboxState, ActorProcessingErr> {
        if args.relay.is_some() {
            myself.send_interval(forward::SWEEP_EVERY, || InboxMsg::Sweep);
        }
        Ok(InboxState {
            store: args.store,
            relay: args.relay,
            sessions: HashMap::new(),
            heads: HashMap::new(),
            busy: HashMap::new(),
            pending: Vec::new(),
            in_flight: false,
            deferred: Vec::new(),
            forwarded: Default::default(),
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
                    list.retain(|d| d.out.session != session);
                    if list.is_empty() {
                        state.sessions.remove(&user);
                        state.forget_idle(&user);
                    }
                }
            }
            InboxMsg::Push { user, frame } => {
                for d in state.sessions.get(&user).into_iter().flatten() {
                    d.out.ephemeral(&frame);
                }
                if let Some(relay) = &state.relay {
                    broadcast(relay, || crate::relay::RelayMsg::InboxPush {
                        user: user.clone(),
                        frame: frame.clone(),
                    });
                }
            }
            InboxMsg::RemotePush { user, frame } => {
                for d in state.sessions.get(&user).into_iter().flatten() {
                    d.out.ephemeral(&frame);
                }
            }
            InboxMsg::Remote(events) => {
                let mut by_user: HashMap<UserId, Vec<InboxEvent>> = HashMap::new();
                for (user, ev) in events {
                    state.forwarded.stored(&user, &ev.notice);
                    // Our next notice for this user follows it.
                    if let Some(h) = state.heads.get_mut(&user) {
                        *h = (*h).max(ev.seq);
                    }
                    by_user.entry(user).or_default().push(ev);
                }
                for (user, mut evs) in by_user {
                    evs.sort_by_key(|e| e.seq);
                    state.push_stored(&myself, &user, &evs);
                }
            }
            InboxMsg::Deliver { user, notice } => state.deliver(&myself, user, notice, 0).await,
            InboxMsg::Owned(reply) => {
                // Users known here: a device connected, or notices numbered.
                let users = state.sessions.keys().chain(
                    state
                        .heads
                        .keys()
                        .filter(|u| !state.sessions.contains_key(*u)),
                );
                let n = match &state.relay {
                    Some(r) => users.filter(|u| r.inbox_owner(u) == r.node()).count(),
                    None => users.count(),
                };
                let _ = reply.send(n);
            }
            InboxMsg::Sweep => {
                let live = |n: &str| state.relay.as_ref().is_some_and(|r| r.is_live(n));
                let due = state.forwarded.due(live, std::time::Instant::now());
                for (user, notice, sends) in due {
                    tracing::warn!(%user, sends, "inbox notice sent again: its owner did not store it");
                    state.deliver(&myself, user, notice, sends).await;
                }
            }
            InboxMsg::DeliverHere { user, notice } => state.append(&myself, user, notice).await,
            InboxMsg::Flushed(results) => {
                state.in_flight = false;
                let mut stored: Vec<(UserId, InboxEvent)> = Vec::new();
                let mut renumber: Vec<(UserId, InboxEvent, u8)> = Vec::new();
                for (user, ev, tries, res) in results {
                    if let Some(n) = state.busy.get_mut(&user) {
                        *n = n.saturating_sub(1);
                    }
                    match res {
                        Ok(()) => {
                            state.push_stored(&myself, &user, std::slice::from_ref(&ev));
                            stored.push((user.clone(), ev));
                        }
                        Err(StoreError::Conflict(_)) if tries < MAX_RENUMBER => {
                            // Another node took this seq: number it (and the
                            // user's later ones, which fail the same way)
                            // again from the stored head.
                            state.heads.remove(&user);
                            renumber.push((user.clone(), ev, tries + 1));
                        }
                        Err(e) => {
                            tracing::warn!(%user, seq = ev.seq, tries, %e, "inbox append failed; notice dropped");
                            // Later seqs of this user were numbered after the
                            // lost one: read the head again from the store.
                            state.heads.remove(&user);
                        }
                    }
                    state.forget_idle(&user);
                }
                if let (Some(relay), false) = (&state.relay, stored.is_empty()) {
                    broadcast(relay, || crate::relay::RelayMsg::Inbox(stored.clone()));
                }
                for (user, ev, tries) in renumber {
                    state.number(user, ev, tries).await;
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
