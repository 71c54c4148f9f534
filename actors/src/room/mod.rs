//! The ReviewRoom actor: single writer of one review room. It checks and
//! sequences ops, group-commits them through the store, then encodes each
//! event once and fans the same bytes out to every member; it relays
//! ephemeral live events, keeps presence (with a grace period for dropped
//! connections), catches joiners up and stops itself when empty.

pub mod chat;
mod evict;
mod fan;
mod index;
pub mod pages;
pub mod state;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use chalktalk_protocol::{
    Activity, ErrorCode, JoinMode, LiveEvent, LiveStroke, Notice, Point, PresenceEntry, Reply,
    Role, RoomEvent, RoomOp, ServerFrame, StrokeBy, UserId, encode, encode_room_frame,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;
use tracing::Instrument;

use crate::handle::handled;
use crate::inbox::InboxMsg;
use crate::lease::{Lease, LeaseKind};
use crate::outbound::{Durable, Outbound, SessionId};
use crate::relay::Class;
use crate::store::{EncodedEvent, Snapshot, StoreError};
use crate::supervisor::{ChildArgs, NotFound, Registry, Supervised, drain};
use crate::{Deps, lock, now_ms};
use state::RoomState;

/// Ephemeral input from a member.
#[derive(Debug, Clone)]
pub enum LiveInput {
    Activity(Activity),
    /// Checked by the session; relayed as is in a [`LiveEvent::Points`].
    Points(LiveStroke),
    Pointer(Option<Point>),
}

#[derive(RactorMessage)]
pub enum RoomMsg {
    Join {
        out: Outbound,
        req: u32,
        since: Option<u64>,
    },
    Leave {
        out: Outbound,
        req: u32,
    },
    /// `snapshot_page`: one page of a paged join.
    Page {
        out: Outbound,
        req: u32,
        seq: u64,
        page: u32,
    },
    /// The session's connection ended (presence grace starts).
    Disconnected {
        session: SessionId,
    },
    Live {
        session: SessionId,
        input: LiveInput,
    },
    Op {
        out: Outbound,
        role: Role,
        req: u32,
        op_id: String,
        op: RoomOp,
    },
    /// Debug hook: panic inside the handler.
    Panic,
    /// An encoded `media` frame (progress of the video this room shows):
    /// pushed to every joined member, ephemeral.
    Media(Bytes),
    // Internal messages (not counted by handles):
    /// A commit finished; the events travel back to be fanned out.
    Flushed(Result<(), StoreError>, Vec<EncodedEvent>),
    GraceOver {
        user: UserId,
        device: String,
        epoch: u64,
    },
    IdleCheck,
    /// A stand-in's periodic check of its owner (`relay::proxy`); a room
    /// ignores it.
    Renew,
    /// The room's lease was lost (why): it retires.
    LeaseLost(String),
    /// Queued behind everything sent before a commit failed or the lease
    /// was lost: the actor fails when it gets here (its supervisor restarts
    /// it from the store, or tells its members where the room went).
    Retire(String),
}

impl RoomMsg {
    fn counted(&self) -> bool {
        !matches!(
            self,
            RoomMsg::Flushed(..)
                | RoomMsg::GraceOver { .. }
                | RoomMsg::IdleCheck
                | RoomMsg::Media(_)
                | RoomMsg::Renew
                | RoomMsg::LeaseLost(_)
                | RoomMsg::Retire(_)
        )
    }
}

struct Member {
    out: Outbound,
    activity: Activity,
    /// Durable events up to this seq are already in the joiner's snapshot.
    skip_until: u64,
    /// The pages this member is fetching (paged join), until the last one.
    pages: Option<Arc<pages::Pages>>,
}

/// Who waits for an op to become durable.
struct Waiter {
    out: Outbound,
    req: u32,
    dup: bool,
}

struct Pending {
    ev: EncodedEvent,
    waiters: Vec<Waiter>,
}

pub struct RoomActorState {
    id: String,
    deps: Arc<Deps>,
    registry: Registry,
    depth: Arc<AtomicUsize>,
    core: RoomState,
    durable_seq: u64,
    snapshot_seq: u64,
    /// Recently committed events, already encoded, for catch-up.
    ring: VecDeque<(u64, Bytes)>,
    members: HashMap<SessionId, Member>,
    /// Dropped connections still shown as present: (user, device) -> (activity, epoch).
    grace: HashMap<(UserId, String), (Activity, u64)>,
    epoch: u64,
    pending: Vec<Pending>,
    /// Waiters of the events being committed, by seq.
    in_flight: Option<Vec<(u64, Vec<Waiter>)>>,
    last_presence: Vec<PresenceEntry>,
    /// The latest paged snapshot, while some member still fetches it.
    pages_cache: Weak<pages::Pages>,
    /// The room's lease when a cluster placed it here; its epoch fences
    /// every append (0 without one).
    lease: Option<Lease>,
    /// The task renewing `lease` (`lease::keep`).
    keeper: Option<tokio::task::JoinHandle<()>>,
    /// Set when the room must stop (why): requests still queued are
    /// answered `unavailable` until [`RoomMsg::Retire`] comes up.
    retiring: Option<String>,
    span: tracing::Span,
}

/// The room stopped serving (its lease was lost, or a commit failed): a
/// failure, so that its supervisor restarts it from the store or tells its
/// members to rejoin.
#[derive(Debug, thiserror::Error)]
#[error("room {0} retired: {1}")]
pub struct Retired(pub String, pub String);

/// The review room actor (state lives in [`RoomActorState`]).
#[derive(Default)]
pub struct ReviewRoom;

impl Supervised for ReviewRoom {
    const KIND: &'static str = "room";

    fn orphan(id: &str, sessions: Vec<Outbound>) {
        let frame = Bytes::from(encode(&ServerFrame::Resync {
            room: id.to_string(),
            reason: "room restarted".into(),
        }));
        for o in &sessions {
            o.set_in_room(id, false);
            o.control(frame.clone());
        }
        crate::metrics::metrics()
            .resyncs
            .inc_by(sessions.len() as u64);
    }
}

use crate::outbound::{err_frame as error, ok_frame as ok};

impl RoomActorState {
    fn ring_cap(&self) -> usize {
        self.deps.config.catchup_max as usize
    }

    fn frame(&self, ev: &EncodedEvent) -> Bytes {
        Bytes::from(encode_room_frame(&self.id, &ev.bytes))
    }

    /// The frame of an event read back from the store.
    fn frame_of(&self, ev: &RoomEvent) -> Bytes {
        Bytes::from(encode_room_frame(&self.id, &encode(ev)))
    }

    fn presence(&self) -> Vec<PresenceEntry> {
        let mut v: Vec<PresenceEntry> = self
            .members
            .values()
            .map(|m| PresenceEntry {
                user: m.out.user.clone(),
                device: m.out.device.clone(),
                activity: m.activity,
                connected: true,
            })
            .chain(
                self.grace
                    .iter()
                    .map(|((user, device), (activity, _))| PresenceEntry {
                        user: user.clone(),
                        device: device.clone(),
                        activity: *activity,
                        connected: false,
                    }),
            )
            .collect();
        v.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device)));
        v.dedup_by(|a, b| a.user == b.user && a.device == b.device);
        v
    }

    fn broadcast_presence(&mut self) {
        let now = self.presence();
        if now == self.last_presence {
            return;
        }
        let frame = Bytes::from(encode(&ServerFrame::Live {
            room: self.id.clone(),
            ev: LiveEvent::Presence {
                members: now.clone(),
            },
        }));
        fan::fan_out(
            &self.members,
            &frame,
            Class::Ephemeral,
            |_, _| true,
            &mut Vec::new(),
        );
        self.last_presence = now;
    }

    fn remove_member(&mut self, session: SessionId) -> Option<Member> {
        lock(&self.registry).remove(&session);
        let m = self.members.remove(&session)?;
        m.out.set_in_room(&self.id, false);
        Some(m)
    }

    /// Drops a member that cannot keep up and tells it to rejoin.
    fn resync(&mut self, session: SessionId, reason: &str) {
        if let Some(m) = self.remove_member(session) {
            let frame = Bytes::from(encode(&ServerFrame::Resync {
                room: self.id.clone(),
                reason: reason.into(),
            }));
            m.out.control(frame);
            crate::metrics::metrics().resyncs.inc();
        }
    }

    /// Stops serving: every request queued before the `Retire` message is
    /// answered `unavailable`, then the actor fails.
    fn retire(&mut self, myself: &ActorRef<RoomMsg>, why: String) {
        if self.retiring.is_none() {
            self.retiring = Some(why.clone());
            let _ = myself.cast(RoomMsg::Retire(why));
        }
    }

    /// A request that reached a retiring room.
    fn refuse_retiring(
        &self,
        myself: &ActorRef<RoomMsg>,
        msg: RoomMsg,
    ) -> Result<(), ActorProcessingErr> {
        let why = self.retiring.as_deref().unwrap_or("it is stopping");
        let refuse = |out: &Outbound, req: u32| {
            out.control(error(
                req,
                ErrorCode::Unavailable,
                format!("room {} is restarting ({why}); join it again", self.id),
            ));
        };
        match msg {
            RoomMsg::Join { out, req, .. }
            | RoomMsg::Leave { out, req }
            | RoomMsg::Page { out, req, .. }
            | RoomMsg::Op { out, req, .. } => refuse(&out, req),
            RoomMsg::Retire(why) => {
                // Requests queued meanwhile go first: each gets its answer.
                if self.depth.load(Ordering::Relaxed) > 0 {
                    let _ = myself.cast(RoomMsg::Retire(why));
                } else {
                    return Err(Box::new(Retired(self.id.clone(), why)));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn schedule_idle(&self, myself: &ActorRef<RoomMsg>) {
        if self.members.is_empty() && self.grace.is_empty() {
            myself.send_after(self.deps.config.idle_stop, || RoomMsg::IdleCheck);
        }
    }

    fn start_flush(&mut self, myself: &ActorRef<RoomMsg>) {
        if self.in_flight.is_some() || self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let mut events = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for p in batch {
            waiters.push((p.ev.seq(), p.waiters));
            events.push(p.ev);
        }
        self.in_flight = Some(waiters);
        let store = self.deps.store.clone();
        let room = self.id.clone();
        let me = myself.clone();
        let epoch = self.lease.as_ref().map_or(0, |l| l.epoch);
        tokio::spawn(
            async move {
                let res = store.append_room_events(&room, epoch, &events).await;
                let _ = me.cast(RoomMsg::Flushed(res, events));
            }
            .instrument(self.span.clone()),
        );
    }

    fn flushed(&mut self, myself: &ActorRef<RoomMsg>, events: Vec<EncodedEvent>) {
        let waiters = self.in_flight.take().unwrap_or_default();
        let fanout = std::time::Instant::now();
        let mut lagging = Vec::new();
        for (enc, (_, waiters)) in events.iter().zip(waiters) {
            let frame = self.frame(enc);
            let ev = &enc.ev;
            let seq = ev.seq;
            fan::fan_out(
                &self.members,
                &frame,
                Class::Durable,
                |_, m| seq > m.skip_until,
                &mut lagging,
            );
            for w in waiters {
                w.out.control(ok(
                    w.req,
                    Reply::Ack {
                        seq: ev.seq,
                        dup: w.dup,
                    },
                ));
            }
            self.after_commit(ev);
            self.durable_seq = ev.seq;
            self.ring.push_back((ev.seq, frame));
            while self.ring.len() > self.ring_cap() {
                self.ring.pop_front();
            }
        }
        crate::metrics::metrics()
            .fanout_seconds
            .observe(fanout.elapsed().as_secs_f64());
        lagging.sort_unstable();
        lagging.dedup();
        for sid in lagging {
            self.resync(sid, "too slow to receive room events");
        }
        self.evict(&events);
        if self.pending.is_empty()
            && self.durable_seq >= self.snapshot_seq + self.deps.config.snapshot_every
        {
            self.write_snapshot();
        }
        self.start_flush(myself);
    }

    /// Side effects of committed events outside the room.
    fn after_commit(&self, ev: &RoomEvent) {
        self.after_unmember(ev);
        if let RoomOp::Invite { user } = &ev.op {
            index::write(self.deps.store.clone(), &self.id, user, true);
            let _ = self.deps.inbox.cast(InboxMsg::Deliver {
                user: user.clone(),
                notice: Notice::Invited {
                    room: self.id.clone(),
                    video_id: self.core.meta.video_id.clone(),
                    by: ev.by.clone(),
                },
            });
        }
    }

    /// Snapshots the state (valid only when nothing is pending).
    fn write_snapshot(&mut self) {
        let bytes = match rmp_serde::to_vec_named(&self.core) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(%e, "room snapshot encode failed");
                return;
            }
        };
        self.snapshot_seq = self.core.seq;
        let snap = Snapshot {
            seq: self.core.seq,
            bytes,
        };
        let (store, room) = (self.deps.store.clone(), self.id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.put_room_snapshot(&room, &snap).await {
                tracing::warn!(%room, %e, "room snapshot write failed");
            }
        });
    }

    /// True if `out`'s user is a member; otherwise answers `not_member`.
    fn member(&self, out: &Outbound, req: u32) -> bool {
        if self.core.is_member(&out.user) {
            return true;
        }
        out.control(error(
            req,
            ErrorCode::NotMember,
            format!("you are not a member of room {}", self.id),
        ));
        false
    }

    async fn join(&mut self, out: Outbound, req: u32, since: Option<u64>) {
        if !self.member(&out, req) {
            return;
        }
        let head = self.durable_seq;
        let mut skip_until = 0;
        let mut replay: Vec<Bytes> = Vec::new();
        let mut paging = None;
        let mode = match since {
            Some(s) if s <= head && head - s <= self.deps.config.catchup_max => {
                let from_ring = self.ring.front().is_some_and(|(first, _)| *first <= s + 1);
                if from_ring || s == head {
                    replay.extend(
                        self.ring
                            .iter()
                            .filter(|(seq, _)| *seq > s)
                            .map(|(_, f)| f.clone()),
                    );
                } else {
                    match self
                        .deps
                        .store
                        .room_events(&self.id, s, (head - s) as usize)
                        .await
                    {
                        Ok(evs) if evs.len() as u64 == head - s => {
                            replay.extend(evs.iter().map(|e| self.frame_of(e)));
                        }
                        Ok(evs) => {
                            tracing::error!(
                                got = evs.len(),
                                want = head - s,
                                "store is missing room events"
                            );
                            out.control(error(
                                req,
                                ErrorCode::Internal,
                                "room log incomplete; try again",
                            ));
                            return;
                        }
                        Err(e) => {
                            out.control(error(req, e.code(), format!("storage: {e}")));
                            return;
                        }
                    }
                }
                JoinMode::Replay { since: s, head }
            }
            _ => {
                // Includes ops still being committed; their events are not
                // sent to this member again.
                let catchup = match self.paged() {
                    Some((p, ring)) => {
                        replay = ring;
                        pages::Catchup::Paged(p)
                    }
                    None => {
                        let c = pages::build(&self.core);
                        if let pages::Catchup::Paged(p) = &c {
                            self.pages_cache = Arc::downgrade(p);
                        }
                        c
                    }
                };
                match catchup {
                    pages::Catchup::Inline(snapshot) => {
                        skip_until = self.core.seq;
                        JoinMode::Snapshot { snapshot }
                    }
                    pages::Catchup::Paged(p) => {
                        skip_until = p.seq();
                        let mode = p.mode();
                        paging = Some(p);
                        mode
                    }
                }
            }
        };
        let session = out.session;
        if self
            .grace
            .remove(&(out.user.clone(), out.device.clone()))
            .is_some()
        {
            tracing::debug!(user = %out.user, device = %out.device, "reconnected within grace");
        }
        self.members.insert(
            session,
            Member {
                out: out.clone(),
                activity: Activity::Watching,
                skip_until,
                pages: paging,
            },
        );
        lock(&self.registry).insert(session, out.clone());
        out.set_in_room(&self.id, true);
        let presence = self.presence();
        out.control(ok(
            req,
            Reply::Joined {
                room: self.id.clone(),
                mode,
                presence,
            },
        ));
        let mut lagging = false;
        for f in &replay {
            if out.durable(f) != Durable::Sent {
                lagging = true;
                break;
            }
        }
        if lagging {
            self.resync(session, "too slow to receive the catch-up");
        }
        self.broadcast_presence();
    }

    /// The cached paged snapshot, if a joiner can still use it: the events
    /// since it are all in the replay ring (returned, to follow `joined`)
    /// or not durable yet (they reach the joiner when committed).
    fn paged(&self) -> Option<(Arc<pages::Pages>, Vec<Bytes>)> {
        let p = self.pages_cache.upgrade()?;
        let s = p.seq();
        if s >= self.durable_seq {
            return Some((p, Vec::new()));
        }
        if self.ring.front().is_none_or(|(first, _)| *first > s + 1) {
            return None;
        }
        let ring = self
            .ring
            .iter()
            .filter(|(seq, _)| *seq > s)
            .map(|(_, f)| f.clone())
            .collect();
        Some((p, ring))
    }

    /// Answers `snapshot_page`: page `page` of the snapshot at `seq` this
    /// member is fetching; after the last page the member lets go of it.
    fn page(&mut self, out: &Outbound, req: u32, seq: u64, page: u32) {
        let Some(m) = self.members.get_mut(&out.session) else {
            out.control(error(
                req,
                ErrorCode::NotMember,
                format!("join room {} first", self.id),
            ));
            return;
        };
        let Some(p) = m.pages.as_ref().filter(|p| p.seq() == seq) else {
            out.control(error(
                req,
                ErrorCode::NotFound,
                format!(
                    "no snapshot at seq {seq} is being paged for you in room {}; join again",
                    self.id
                ),
            ));
            return;
        };
        let Some(body) = p.pages.get(page as usize) else {
            out.control(error(
                req,
                ErrorCode::Invalid,
                format!(
                    "page {page} is out of range: the snapshot has {} pages",
                    p.count()
                ),
            ));
            return;
        };
        let count = p.count();
        out.control(Bytes::from(chalktalk_protocol::encode_page_reply(
            req, &self.id, seq, page, count, body,
        )));
        if page + 1 == count {
            m.pages = None;
        }
    }

    async fn op(
        &mut self,
        myself: &ActorRef<RoomMsg>,
        out: Outbound,
        role: Role,
        req: u32,
        op_id: String,
        op: RoomOp,
    ) {
        // A resend is answered even if its op made the sender a non-member
        // (leave, or removed since): op ids are keyed by user.
        if let Some(seq) = self.core.seen(&out.user, &op_id) {
            // A resend: answer with the original seq once it is durable.
            let waiter = Waiter {
                out,
                req,
                dup: true,
            };
            if seq <= self.durable_seq {
                waiter.out.control(ok(req, Reply::Ack { seq, dup: true }));
            } else if let Some(p) = self.pending.iter_mut().find(|p| p.ev.seq() == seq) {
                p.waiters.push(waiter);
            } else if let Some((_, w)) =
                self.in_flight.iter_mut().flatten().find(|(s, _)| *s == seq)
            {
                w.push(waiter);
            }
            return;
        }
        if !self.member(&out, req) {
            return;
        }
        let now = now_ms();
        let planned = match self
            .core
            .plan(&out.user, role, &op, now, &self.deps.config.limits)
        {
            Ok(p) => p,
            Err(inv) => {
                out.control(error(req, inv.code, inv.message));
                return;
            }
        };
        let ev = RoomEvent {
            seq: self.core.seq + 1,
            by: out.user.clone(),
            op_id,
            at_ms: now,
            op,
            target: planned.target,
            effects: planned.effects,
        };
        self.core.absorb(&ev);
        self.pending.push(Pending {
            ev: EncodedEvent::new(ev),
            waiters: vec![Waiter {
                out,
                req,
                dup: false,
            }],
        });
        self.start_flush(myself);
    }

    fn live(&mut self, session: SessionId, input: LiveInput) {
        let Some(m) = self.members.get_mut(&session) else {
            return;
        };
        let user = m.out.user.clone();
        let ev = match input {
            LiveInput::Activity(a) => {
                m.activity = a;
                self.broadcast_presence();
                return;
            }
            LiveInput::Points(live) => LiveEvent::Points(StrokeBy { user, live }),
            LiveInput::Pointer(at) => LiveEvent::Pointer { user, at },
        };
        let frame = Bytes::from(encode(&ServerFrame::Live {
            room: self.id.clone(),
            ev,
        }));
        fan::fan_out(
            &self.members,
            &frame,
            Class::Ephemeral,
            |sid, _| sid != session,
            &mut Vec::new(),
        );
    }
}

impl Actor for ReviewRoom {
    type Msg = RoomMsg;
    type State = RoomActorState;
    type Arguments = ChildArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RoomMsg>,
        args: ChildArgs,
    ) -> Result<RoomActorState, ActorProcessingErr> {
        let ChildArgs {
            id,
            deps,
            registry,
            depth,
        } = args;
        let span = tracing::info_span!("room", room = %id);
        let store = deps.store.clone();
        let Some(meta) = store.room(&id).await? else {
            return Err(Box::new(NotFound(format!("room {id}"))));
        };
        // In a cluster: take the lease, then raise the fence to its epoch
        // before reading, so that whatever an older owner still gets in is
        // read below and anything later from it is refused.
        let lease = match &deps.placement {
            Some(p) => {
                let lease = p.take(LeaseKind::Room, &id).await?;
                store.fence_room(&id, lease.epoch).await?;
                Some(lease)
            }
            None => None,
        };
        let (mut core, snapshot_seq) = match store.room_snapshot(&id).await? {
            Some(s) => (
                rmp_serde::from_slice::<RoomState>(&s.bytes)?.recounted(),
                s.seq,
            ),
            None => (RoomState::new(meta), 0),
        };
        catch_up(&*store, &id, &mut core).await?;
        crate::lock(&deps.media_watch)
            .entry(core.meta.video_id.clone())
            .or_default()
            .insert(id.clone(), myself.clone());
        // Sessions attached to a previous incarnation must rejoin.
        let orphans = drain(&registry);
        let resynced = orphans.len();
        Self::orphan(&id, orphans);
        let epoch = lease.as_ref().map(|l| l.epoch);
        span.in_scope(|| tracing::info!(seq = core.seq, resynced, ?epoch, "room loaded"));
        // Renewed from here on (not before: a start that fails above must
        // not keep a lease nobody serves).
        let keeper = match (&lease, &deps.placement) {
            (Some(l), Some(p)) => Some(crate::lease::keep(
                p.clone(),
                l.clone(),
                myself.clone(),
                RoomMsg::LeaseLost,
            )),
            _ => None,
        };
        Ok(RoomActorState {
            durable_seq: core.seq,
            snapshot_seq,
            core,
            id,
            deps,
            registry,
            depth,
            ring: VecDeque::new(),
            members: HashMap::new(),
            grace: HashMap::new(),
            epoch: 0,
            pending: Vec::new(),
            in_flight: None,
            last_presence: Vec::new(),
            pages_cache: Weak::new(),
            lease,
            keeper,
            retiring: None,
            span,
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<RoomMsg>,
        st: &mut RoomActorState,
    ) -> Result<(), ActorProcessingErr> {
        // Let the next owner in without waiting for the expiry (a no-op if
        // the lease moved already).
        if let Some(keeper) = st.keeper.take() {
            keeper.abort();
        }
        if let (Some(lease), Some(p)) = (st.lease.take(), st.deps.placement.clone()) {
            crate::lease::let_go(p, lease);
        }
        let mut watch = crate::lock(&st.deps.media_watch);
        if let Some(rooms) = watch.get_mut(&st.core.meta.video_id) {
            if rooms
                .get(&st.id)
                .is_some_and(|r| r.get_id() == myself.get_id())
            {
                rooms.remove(&st.id);
            }
            if rooms.is_empty() {
                watch.remove(&st.core.meta.video_id);
            }
        }
        Ok(())
    }

    async fn post_start(
        &self,
        myself: ActorRef<RoomMsg>,
        st: &mut RoomActorState,
    ) -> Result<(), ActorProcessingErr> {
        // A room started by a refused join or a lone op must stop too.
        st.schedule_idle(&myself);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RoomMsg>,
        msg: RoomMsg,
        st: &mut RoomActorState,
    ) -> Result<(), ActorProcessingErr> {
        if msg.counted() {
            handled(&st.depth);
        }
        let span = st.span.clone();
        Box::pin(dispatch(myself, msg, st)).instrument(span).await
    }
}

/// The body of `handle`, run inside the actor's span.
/// Room `meta`'s committed state as the store holds it (its snapshot and
/// the events after it), read without its actor: what a room starting
/// would serve. Acked ops are in it; ops in flight on the owner are not.
pub async fn committed(
    store: &dyn crate::store::Store,
    meta: crate::store::RoomMeta,
) -> Result<RoomState, StoreError> {
    let id = meta.id.clone();
    let mut core = match store.room_snapshot(&id).await? {
        Some(s) => rmp_serde::from_slice::<RoomState>(&s.bytes)
            .map_err(|e| StoreError::Corrupt(format!("room snapshot {id}: {e}")))?,
        None => RoomState::new(meta),
    };
    catch_up(store, &id, &mut core).await?;
    Ok(core)
}

/// Applies every stored event of room `id` after `core.seq` (a room
/// starting, or a read of its committed state).
pub(crate) async fn catch_up(
    store: &dyn crate::store::Store,
    id: &str,
    core: &mut RoomState,
) -> Result<(), StoreError> {
    loop {
        let evs = store.room_events(id, core.seq, 1000).await?;
        if evs.is_empty() {
            return Ok(());
        }
        for ev in &evs {
            core.absorb(ev);
        }
    }
}

async fn dispatch(
    myself: ActorRef<RoomMsg>,
    msg: RoomMsg,
    st: &mut RoomActorState,
) -> Result<(), ActorProcessingErr> {
    if st.retiring.is_some() {
        return st.refuse_retiring(&myself, msg);
    }
    match msg {
        RoomMsg::Join { out, req, since } => st.join(out, req, since).await,
        RoomMsg::Page {
            out,
            req,
            seq,
            page,
        } => st.page(&out, req, seq, page),
        RoomMsg::Leave { out, req } => {
            st.remove_member(out.session);
            out.control(ok(req, Reply::Done));
            st.broadcast_presence();
            st.schedule_idle(&myself);
        }
        RoomMsg::Disconnected { session } => {
            if let Some(m) = st.remove_member(session) {
                let key = (m.out.user.clone(), m.out.device.clone());
                let other_device_session = st
                    .members
                    .values()
                    .any(|o| o.out.user == key.0 && o.out.device == key.1);
                if !other_device_session {
                    st.epoch += 1;
                    let epoch = st.epoch;
                    st.grace.insert(key.clone(), (m.activity, epoch));
                    let (user, device) = key;
                    myself.send_after(st.deps.config.presence_grace, move || RoomMsg::GraceOver {
                        user,
                        device,
                        epoch,
                    });
                }
                // The others see `connected: false` now, and the entry go
                // after the grace period (or `connected: true` again).
                st.broadcast_presence();
            }
        }
        RoomMsg::GraceOver {
            user,
            device,
            epoch,
        } => {
            let key = (user, device);
            if st.grace.get(&key).is_some_and(|(_, g)| *g == epoch) {
                st.grace.remove(&key);
                st.broadcast_presence();
                st.schedule_idle(&myself);
            }
        }
        RoomMsg::Live { session, input } => st.live(session, input),
        RoomMsg::Op {
            out,
            role,
            req,
            op_id,
            op,
        } => st.op(&myself, out, role, req, op_id, op).await,
        RoomMsg::Flushed(Ok(()), events) => st.flushed(&myself, events),
        // Only for stand-ins.
        RoomMsg::Renew => {}
        RoomMsg::LeaseLost(why) => {
            tracing::warn!(%why, "room lease lost; stopping");
            st.retire(&myself, why);
        }
        RoomMsg::Flushed(Err(e), _) => {
            if matches!(e, StoreError::Fenced { .. }) {
                crate::metrics::metrics().lease_losses.inc();
                tracing::warn!(%e, "room writes fenced: another node owns it now");
            } else {
                tracing::error!(%e, "room commit failed; restarting from the store");
            }
            let failed = st
                .in_flight
                .take()
                .into_iter()
                .flatten()
                .map(|(_, w)| w)
                .chain(st.pending.drain(..).map(|p| p.waiters));
            for waiters in failed {
                for w in waiters {
                    w.out
                        .control(error(w.req, e.code(), format!("not stored: {e}")));
                }
            }
            st.retire(&myself, e.to_string());
        }
        // Only sent while retiring (handled above).
        RoomMsg::Retire(_) => {}
        RoomMsg::IdleCheck => {
            let idle = st.members.is_empty()
                && st.grace.is_empty()
                && st.pending.is_empty()
                && st.in_flight.is_none()
                && st.depth.load(Ordering::Relaxed) == 0;
            if idle {
                if st.core.seq > st.snapshot_seq
                    && let Ok(bytes) = rmp_serde::to_vec_named(&st.core)
                {
                    let snap = Snapshot {
                        seq: st.core.seq,
                        bytes,
                    };
                    if let Err(e) = st.deps.store.put_room_snapshot(&st.id, &snap).await {
                        tracing::warn!(%e, "final snapshot failed");
                    }
                }
                tracing::debug!("room idle; stopping");
                myself.stop(Some("idle".into()));
            }
        }
        RoomMsg::Panic => panic!("debug_panic requested for room {}", st.id),
        RoomMsg::Media(frame) => {
            for m in st.members.values() {
                m.out.ephemeral(&frame);
            }
        }
    }
    Ok(())
}
