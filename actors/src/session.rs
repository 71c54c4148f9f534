//! The session of one WebSocket connection: what it has joined and opened,
//! the stateless rules of its requests (ids, limits, roles), and routing
//! each request to the room or thread actor found through the directory;
//! when the connection ends it tells them it is gone. It is plain state
//! driven by the connection's reader (the server's dispatch table), not an
//! actor of its own: an actor costs every connection ~8 KiB of mailboxes
//! and a task, and the reader already handles one frame at a time
//! (docs/BENCHMARKS.md §2). Replies to room and thread requests are sent by
//! those actors on the session's outbound queue, so they stay in order with
//! the events they relate to.

use std::collections::HashMap;
use std::sync::Arc;

use chalktalk_protocol::{
    ClientFrame, ClientMsg, ErrorCode, Notice, Reply, Role, RoomOp, Shape, ThreadKind, valid_id,
};
use ractor::Message;

use crate::directory::Directory;
use crate::handle::{Handle, SendFail};
use crate::inbox::InboxMsg;
use crate::live::Live;
use crate::outbound::{Outbound, err_frame, ok_frame};
use crate::room::{LiveInput, RoomMsg};
use crate::store::{MembershipKind, RoomMeta, ThreadMeta};
use crate::supervisor::Lookup;
use crate::thread::ThreadMsg;
use crate::{new_id, now_ms};

/// Longest room or thread id a client may name.
const MAX_REF_LEN: usize = 128;

/// One connection's session (see the module doc).
pub struct Session {
    dir: Arc<Directory>,
    out: Outbound,
    role: Role,
    /// Handles of rooms and threads this session talked to (live input
    /// included), looked up once.
    rooms: HashMap<String, Handle<RoomMsg>>,
    threads: HashMap<String, Handle<ThreadMsg>>,
}

/// A refusal: the error code and message sent back for the request.
pub type Fail = (ErrorCode, String);

fn lookup_fail(kind: &str, id: &str, e: Lookup) -> Fail {
    match e {
        Lookup::NotFound => (ErrorCode::NotFound, format!("no {kind} {id}")),
        // The room or thread could not be loaded (its store is down, or it
        // keeps failing): retry later, as for a failed write.
        Lookup::Unavailable(why) => (
            ErrorCode::Unavailable,
            format!("{kind} {id} unavailable: {why}"),
        ),
        // Another node holds the lease and is not up (down, or its link to
        // this node is cut): the client retries (here, or on another
        // node) and gets it once that node is back or its lease expires.
        Lookup::Elsewhere(owner) => (
            ErrorCode::Unavailable,
            format!("{kind} {id} is served by node {owner} right now; retry later"),
        ),
    }
}

fn send_fail(kind: &str, e: SendFail) -> Fail {
    match e {
        SendFail::Overloaded => (
            ErrorCode::Overloaded,
            format!("the {kind} is busy; retry with the same id"),
        ),
        SendFail::Stopped => (ErrorCode::Internal, format!("the {kind} restarted; retry")),
    }
}

/// Stable id of the direct thread between two users (FNV-1a, 2 x 64 bit).
fn direct_thread_id(a: &str, b: &str) -> String {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    let mut out = String::from("d");
    for seed in [0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142] {
        let mut h = seed;
        for byte in a.bytes().chain([0]).chain(b.bytes()) {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("-{h:016x}"));
    }
    out
}

/// Message types of actors found through the directory by id.
pub(crate) trait Routed: Message + Sized {
    const KIND: &'static str;
    fn lookup(
        dir: &Directory,
        id: &str,
    ) -> impl Future<Output = Result<Handle<Self>, Lookup>> + Send;
}

impl Routed for RoomMsg {
    const KIND: &'static str = "room";
    fn lookup(
        dir: &Directory,
        id: &str,
    ) -> impl Future<Output = Result<Handle<Self>, Lookup>> + Send {
        dir.room(id)
    }
}

impl Routed for ThreadMsg {
    const KIND: &'static str = "thread";
    fn lookup(
        dir: &Directory,
        id: &str,
    ) -> impl Future<Output = Result<Handle<Self>, Lookup>> + Send {
        dir.thread(id)
    }
}

/// Sends to a keyed actor, looking it up again once if it had stopped.
pub(crate) async fn route<M: Routed>(
    cache: &mut HashMap<String, Handle<M>>,
    dir: &Directory,
    id: &str,
    ephemeral: bool,
    msg: M,
) -> Result<(), Fail> {
    let kind = M::KIND;
    if id.is_empty() || id.len() > MAX_REF_LEN {
        return Err((
            ErrorCode::Invalid,
            format!("{kind} id must be 1..={MAX_REF_LEN} bytes"),
        ));
    }
    let mut msg = Some(msg);
    for attempt in 0..2 {
        let handle = match cache.get(id) {
            Some(h) if h.alive() && attempt == 0 => h.clone(),
            _ => {
                let h = M::lookup(dir, id)
                    .await
                    .map_err(|e| lookup_fail(kind, id, e))?;
                cache.insert(id.to_string(), h.clone());
                h
            }
        };
        let Some(m) = msg.take() else { break };
        match handle.send(m, ephemeral) {
            Ok(()) => return Ok(()),
            Err((SendFail::Stopped, back)) if attempt == 0 && back.is_some() => msg = back,
            Err((e, _)) => return Err(send_fail(kind, e)),
        }
    }
    Err(send_fail(kind, SendFail::Stopped))
}

impl Session {
    /// A session with nothing joined or opened; allocates nothing until
    /// its first request.
    pub fn new(dir: Arc<Directory>, out: Outbound, role: Role) -> Session {
        Session {
            dir,
            out,
            role,
            rooms: HashMap::new(),
            threads: HashMap::new(),
        }
    }

    /// Handles one request or live message: answered on the outbound
    /// queue, here (refusals, created rooms and threads) or by the room or
    /// thread it is routed to.
    pub async fn handle(&mut self, frame: ClientFrame) {
        let ClientFrame { id: req, m } = frame;
        if let Err(fail) = self.handle_frame(req, m).await {
            tracing::debug!(req, code = %fail.0, msg = %fail.1, "request refused");
            self.fail(req, fail);
        }
    }

    /// Casts checked live input to its room: the cached handle first,
    /// without an await; a lookup only when the room is new or restarted.
    /// Live input is dropped, never queued, when the room is gone or full:
    /// the next batch supersedes it.
    pub async fn live(&mut self, room: &str, input: LiveInput) {
        let msg = RoomMsg::Live {
            session: self.out.session,
            input,
        };
        let msg = match self.rooms.get(room) {
            Some(h) if h.alive() => match h.send(msg, true) {
                Ok(()) => return,
                Err((_, Some(back))) => back,
                Err((_, None)) => return,
            },
            _ => msg,
        };
        let _ = Box::pin(route(&mut self.rooms, &self.dir, room, true, msg)).await;
    }

    /// The connection ended: the rooms it is in and the threads it opened
    /// drop it (presence, typing, subscribers).
    pub fn close(&self) {
        let session = self.out.session;
        for (id, h) in &self.rooms {
            if self.out.in_room(id) {
                let _ = h.actor.cast(RoomMsg::Disconnected { session });
            }
        }
        for h in self.threads.values() {
            let _ = h.actor.cast(ThreadMsg::Disconnected { session });
        }
    }

    fn reply(&self, req: u32, r: Reply) {
        self.out.control(ok_frame(req, r));
    }

    fn fail(&self, req: u32, (code, msg): Fail) {
        self.out.control(err_frame(req, code, msg));
    }

    async fn route_room(&mut self, room: &str, ephemeral: bool, msg: RoomMsg) -> Result<(), Fail> {
        route(&mut self.rooms, &self.dir, room, ephemeral, msg).await
    }

    async fn route_thread(
        &mut self,
        thread: &str,
        ephemeral: bool,
        msg: ThreadMsg,
    ) -> Result<(), Fail> {
        route(&mut self.threads, &self.dir, thread, ephemeral, msg).await
    }

    fn joined(&self, room: &str) -> Result<(), Fail> {
        crate::live::joined(&self.out, room)
    }

    async fn create_room(
        &self,
        video_id: String,
        aspect: Option<f32>,
        fps: Option<f32>,
    ) -> Result<Reply, Fail> {
        if self.role == Role::Athlete {
            return Err((
                ErrorCode::Forbidden,
                "only coaches and admins create review rooms".into(),
            ));
        }
        if !valid_id(&video_id) {
            return Err((
                ErrorCode::Invalid,
                "video_id must be 1-64 characters of [A-Za-z0-9_.:@-]".into(),
            ));
        }
        let aspect = aspect.unwrap_or(16.0 / 9.0);
        let fps = fps.unwrap_or(30.0);
        if !(aspect.is_finite() && (0.1..=10.0).contains(&aspect)) {
            return Err((ErrorCode::Invalid, "aspect must be within 0.1..=10".into()));
        }
        if !(fps.is_finite() && (1.0..=480.0).contains(&fps)) {
            return Err((ErrorCode::Invalid, "fps must be within 1..=480".into()));
        }
        let meta = RoomMeta {
            id: new_id("r"),
            video_id,
            owner: self.out.user.clone(),
            aspect,
            fps,
            created_ms: now_ms(),
        };
        let store = &self.dir.deps.store;
        let internal = |e: crate::store::StoreError| (e.code(), format!("storage: {e}"));
        store.create_room(&meta).await.map_err(internal)?;
        store
            .add_membership(&meta.owner, MembershipKind::Room, &meta.id)
            .await
            .map_err(internal)?;
        crate::room::chat::create(&**store, &meta)
            .await
            .map_err(internal)?;
        Ok(Reply::RoomCreated { room: meta.id })
    }

    async fn create_thread(
        &self,
        kind: ThreadKind,
        members: Vec<String>,
        title: Option<String>,
    ) -> Result<Reply, Fail> {
        let me = self.out.user.clone();
        let max = self.dir.deps.config.limits.max_members as usize;
        let mut all: Vec<String> = members;
        if let Some(bad) = all.iter().find(|m| !valid_id(m)) {
            return Err((
                ErrorCode::Invalid,
                format!("`{bad}` is not a valid user id"),
            ));
        }
        all.push(me.clone());
        all.sort();
        all.dedup();
        if title.as_ref().is_some_and(|t| t.len() > 200) {
            return Err((ErrorCode::TextTooLong, "title is at most 200 bytes".into()));
        }
        let id = match kind {
            ThreadKind::Direct if all.len() == 2 => direct_thread_id(&all[0], &all[1]),
            ThreadKind::Direct => {
                return Err((
                    ErrorCode::Invalid,
                    "a direct thread has exactly one other member".into(),
                ));
            }
            ThreadKind::Group if all.len() >= 2 && all.len() <= max => new_id("t"),
            ThreadKind::Group => {
                return Err((
                    ErrorCode::Invalid,
                    format!("a group thread has 2..={max} members"),
                ));
            }
            ThreadKind::Room => {
                return Err((
                    ErrorCode::Invalid,
                    "a room's thread is made by the server: ask for it with `room_thread`".into(),
                ));
            }
        };
        let meta = ThreadMeta {
            id: id.clone(),
            kind,
            title,
            created_by: me.clone(),
            members: all,
            created_ms: now_ms(),
        };
        let store = &self.dir.deps.store;
        let internal = |e: crate::store::StoreError| (e.code(), format!("storage: {e}"));
        let created = store.create_thread(&meta).await.map_err(internal)?;
        let meta = if created {
            for m in &meta.members {
                store
                    .add_membership(m, MembershipKind::Thread, &id)
                    .await
                    .map_err(internal)?;
                if *m != me {
                    let _ = self.dir.inbox().cast(InboxMsg::Deliver {
                        user: m.clone(),
                        notice: Notice::AddedToThread {
                            thread: id.clone(),
                            by: me.clone(),
                        },
                    });
                }
            }
            meta
        } else {
            store
                .thread(&id)
                .await
                .map_err(internal)?
                .ok_or((ErrorCode::Internal, "thread vanished".to_string()))?
        };
        let head = store.thread_head(&id).await.map_err(internal)?;
        Ok(Reply::ThreadCreated {
            thread: crate::room::chat::info(meta, head),
        })
    }

    async fn handle_frame(&mut self, req: u32, m: ClientMsg) -> Result<(), Fail> {
        let out = self.out.clone();
        let m = match crate::live::check(&out, m, &self.dir.deps.config.limits)? {
            Live::Input(room, input) => {
                self.live(&room, input).await;
                return Ok(());
            }
            Live::Other(m) => m,
        };
        let m = match crate::thread::route::from_client(&out, req, m) {
            Ok(r) => {
                let sent = self.route_thread(&r.thread, r.ephemeral, r.msg).await;
                // A typing indicator that cannot be routed is dropped.
                return if r.ephemeral { Ok(()) } else { sent };
            }
            Err(m) => m,
        };
        match m {
            ClientMsg::CreateRoom {
                video_id,
                aspect,
                fps,
            } => {
                let r = self.create_room(video_id, aspect, fps).await?;
                self.reply(req, r);
            }
            ClientMsg::JoinRoom { room, since } => {
                self.route_room(
                    &room,
                    false,
                    RoomMsg::Join {
                        out: out.clone(),
                        req,
                        since,
                    },
                )
                .await?;
            }
            ClientMsg::SnapshotPage { room, seq, page } => {
                self.joined(&room)?;
                self.route_room(
                    &room,
                    false,
                    RoomMsg::Page {
                        out: out.clone(),
                        req,
                        seq,
                        page,
                    },
                )
                .await?;
            }
            ClientMsg::LeaveRoom { room } => {
                self.joined(&room)?;
                self.route_room(
                    &room,
                    false,
                    RoomMsg::Leave {
                        out: out.clone(),
                        req,
                    },
                )
                .await?;
            }
            // Live input was turned into room input by `live::check` above;
            // the rest is answered before the session (the server's
            // dispatch table, gateway/dispatch.rs).
            ClientMsg::Activity { .. }
            | ClientMsg::Points { .. }
            | ClientMsg::Pointer { .. }
            | ClientMsg::Hello { .. }
            | ClientMsg::Ping
            | ClientMsg::MediaLink { .. }
            | ClientMsg::CancelMedia { .. } => {
                return Err((
                    ErrorCode::Internal,
                    "this message is not answered by the session".into(),
                ));
            }
            ClientMsg::Op { room, op_id, op } => {
                if let RoomOp::Add { ann } | RoomOp::Update { ann } = &op
                    && matches!(ann.shape, Shape::VoiceOver { .. })
                {
                    return Err((
                        ErrorCode::Forbidden,
                        "voice-overs are attached by uploading them with a room and at_ms".into(),
                    ));
                }
                if !valid_id(&op_id) {
                    return Err((
                        ErrorCode::Invalid,
                        "op_id must be 1-64 characters of [A-Za-z0-9_.:@-]".into(),
                    ));
                }
                let role = self.role;
                self.route_room(
                    &room,
                    false,
                    RoomMsg::Op {
                        out: out.clone(),
                        role,
                        req,
                        op_id,
                        op,
                    },
                )
                .await?;
            }
            ClientMsg::CreateThread {
                kind,
                members,
                title,
            } => {
                let r = self.create_thread(kind, members, title).await?;
                self.reply(req, r);
            }
            ClientMsg::RoomThread { room } => {
                if room.is_empty() || room.len() > MAX_REF_LEN {
                    return Err((
                        ErrorCode::Invalid,
                        format!("room id must be 1..={MAX_REF_LEN} bytes"),
                    ));
                }
                let store = self.dir.deps.store.clone();
                let thread = crate::room::chat::find(store, &self.out.user, &room).await?;
                self.reply(req, Reply::ThreadCreated { thread });
            }
            ClientMsg::DebugPanic { room } => {
                if self.role != Role::Admin || !self.dir.deps.config.debug_hooks {
                    return Err((
                        ErrorCode::Forbidden,
                        "debug hooks are off or you are not an admin".into(),
                    ));
                }
                self.route_room(&room, false, RoomMsg::Panic).await?;
                self.reply(req, Reply::Done);
            }
            // Routed above by the thread table (`thread::route`).
            ClientMsg::OpenThread { .. }
            | ClientMsg::CloseThread { .. }
            | ClientMsg::Send { .. }
            | ClientMsg::EditMessage { .. }
            | ClientMsg::DeleteMessage { .. }
            | ClientMsg::Typing { .. }
            | ClientMsg::Mark { .. }
            | ClientMsg::History { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::direct_thread_id;

    #[test]
    fn direct_thread_ids_ignore_order_and_do_not_collide_on_joins() {
        assert_eq!(direct_thread_id("a", "b"), direct_thread_id("b", "a"));
        assert_ne!(direct_thread_id("ab", "c"), direct_thread_id("a", "bc"));
    }
}
