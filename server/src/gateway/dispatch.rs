//! One table for client frames. [`route`] says, for every `ClientMsg`
//! variant, which permission check the frame passes ([`Check`], done by
//! `super::guard`) and who answers it ([`By`]); [`Dispatcher`] carries a
//! decoded frame there. The transport (socket, rate limit, heartbeats,
//! decoding, the write loop) is `super::ws`; what each answerer does with
//! a frame is `chalktalk_actors::session` (room, thread and inbox frames),
//! `chalktalk_actors::live` (live input) and `chalktalk_services::media` (media
//! requests).
//!
//! [`route`] names every variant (no wildcard), so a new client message
//! does not compile until it has a row here.

use std::sync::Arc;
use std::time::Duration;

use chalktalk_actors::live::{self, Live, LiveRoutes};
use chalktalk_actors::outbound::{err_frame, ok_frame};
use chalktalk_actors::session::{Session, SessionArgs, SessionMsg};
use chalktalk_actors::{Outbound, now_ms};
use chalktalk_protocol::{ClientFrame, ClientMsg, CloseCode, ErrorCode, Limits, Reply, RoomOp};
use ractor::{Actor, ActorRef, ActorStatus};
use tokio::sync::Semaphore;

use super::App;
use super::guard::{Guard, live_plan, video_allowed};
use super::hello::Hello;

/// Frames read from the socket but not yet handled by the session.
pub const READ_PERMITS: usize = 32;

/// The permission check a frame passes before it is answered
/// (`super::guard`, through the permission matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// None here: membership and ownership are checked by the room or
    /// thread that answers.
    None,
    /// `create_room` on a video asset: the caller must see the video.
    CreateRoom,
    /// `join_room` of a room showing a video asset: the joiner must see it.
    JoinRoom,
    /// An `invite` op: the invitee must see the room's video.
    Invite,
    /// `create_thread`: the caller may message these members.
    CreateThread,
    /// `send`: the caller may message this thread's members.
    Send,
    /// `media_link` / `cancel_media`: the matrix's answer for the asset's
    /// video goes with the request; the media service refuses on it.
    MediaVideo,
}

/// Who answers a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The reader itself, with no actor and no I/O (heartbeats, a second
    /// hello): idle connections never start a session actor.
    Reader,
    /// A task off the session actor, with the media service.
    Media,
    /// The room, straight from the reader when nothing waits at the
    /// session actor (else through it, so order is kept).
    Live,
    /// The connection's Session actor (started on the first such frame),
    /// which forwards to the room, thread or inbox.
    Session,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub check: Check,
    pub by: By,
}

/// The table: every client message, its check and its answerer.
pub fn route(m: &ClientMsg) -> Route {
    use ClientMsg as M;
    let (check, by) = match m {
        M::Hello { .. } => (Check::None, By::Reader),
        M::Ping => (Check::None, By::Reader),
        M::MediaLink { .. } => (Check::MediaVideo, By::Media),
        M::CancelMedia { .. } => (Check::MediaVideo, By::Media),
        M::CreateRoom { .. } => (Check::CreateRoom, By::Session),
        M::JoinRoom { .. } => (Check::JoinRoom, By::Session),
        M::LeaveRoom { .. } => (Check::None, By::Session),
        M::SnapshotPage { .. } => (Check::None, By::Session),
        M::Activity { .. } => (Check::None, By::Live),
        M::Points { .. } => (Check::None, By::Live),
        M::Pointer { .. } => (Check::None, By::Live),
        M::Op {
            op: RoomOp::Invite { .. },
            ..
        } => (Check::Invite, By::Session),
        M::Op { .. } => (Check::None, By::Session),
        M::CreateThread { .. } => (Check::CreateThread, By::Session),
        M::OpenThread { .. } => (Check::None, By::Session),
        M::CloseThread { .. } => (Check::None, By::Session),
        M::Send { .. } => (Check::Send, By::Session),
        M::Typing { .. } => (Check::None, By::Session),
        M::Mark { .. } => (Check::None, By::Session),
        M::History { .. } => (Check::None, By::Session),
        M::DebugPanic { .. } => (Check::None, By::Session),
    };
    Route { check, by }
}

/// What the reader does after a frame.
#[must_use]
pub enum Flow {
    /// Read the next frame.
    Next,
    /// The session ended (the connection is being closed with 1011).
    Stop,
}

/// One connection's dispatch state: its permission checks, its live
/// routes to rooms and its session actor (none until a frame needs one).
/// It borrows what the connection already holds (the app state is ~1 KiB:
/// a copy would be carried by every connection, idle or not).
pub struct Dispatcher<'a> {
    app: &'a App,
    out: &'a Outbound,
    user: &'a str,
    plan: chalktalk_services::accounts::Plan,
    role: chalktalk_protocol::Role,
    limits: &'a Limits,
    guard: Guard,
    routes: LiveRoutes,
    actor: Option<ActorRef<SessionMsg>>,
    permits: Arc<Semaphore>,
}

impl<'a> Dispatcher<'a> {
    pub fn new(
        app: &'a App,
        out: &'a Outbound,
        h: &'a Hello,
        limits: &'a Limits,
    ) -> Dispatcher<'a> {
        let guard = Guard::new(app.perms.clone(), h.user.clone(), h.plan);
        Dispatcher {
            app,
            out,
            user: &h.user,
            plan: h.plan,
            role: h.role,
            limits,
            guard,
            routes: LiveRoutes::default(),
            actor: None,
            permits: Arc::new(Semaphore::new(READ_PERMITS)),
        }
    }

    /// Checks `frame` as its row says and hands it to its answerer.
    pub async fn dispatch(&mut self, frame: ClientFrame) -> Flow {
        let r = route(&frame.m);
        // Only frames with a check build the guard's future, boxed: it is
        // large (every check's lookups), and unboxed it would size every
        // connection's reader for it (docs/BENCHMARKS.md §2).
        if Guard::needed(r.check)
            && let Err((code, msg)) = Box::pin(self.guard.check(r.check, &frame.m)).await
        {
            self.out.control(err_frame(frame.id, code, msg));
            return Flow::Next;
        }
        match r.by {
            By::Reader => {
                self.answer_here(frame);
                Flow::Next
            }
            By::Media => {
                self.media(frame);
                Flow::Next
            }
            // Live input goes straight to its room, unless earlier frames
            // still wait at the session actor (they go first: order is kept).
            By::Live if self.permits.available_permits() == READ_PERMITS => {
                match live::check(self.out, frame.m, self.limits) {
                    Ok(Live::Input(room, input)) => {
                        self.routes
                            .send(&self.app.directory, self.out, &room, input)
                            .await;
                        Flow::Next
                    }
                    Ok(Live::Other(m)) => {
                        self.send_to_session(ClientFrame { id: frame.id, m }).await
                    }
                    Err((code, msg)) => {
                        self.out.control(err_frame(frame.id, code, msg));
                        Flow::Next
                    }
                }
            }
            By::Live | By::Session => self.send_to_session(frame).await,
        }
    }

    /// Stops the session actor (the connection closed).
    pub fn stop(self) {
        if let Some(a) = self.actor {
            a.stop(Some("connection closed".into()));
        }
    }

    /// [`By::Reader`] frames.
    fn answer_here(&self, frame: ClientFrame) {
        match frame.m {
            // Heartbeats need no actor (and keep idle connections cheap).
            ClientMsg::Ping => self.out.control(ok_frame(
                frame.id,
                Reply::Pong {
                    server_ms: now_ms(),
                },
            )),
            ClientMsg::Hello { .. } => self.out.control(err_frame(
                frame.id,
                ErrorCode::HelloRequired,
                "hello was already accepted",
            )),
            _ => self.out.control(err_frame(
                frame.id,
                ErrorCode::Internal,
                "this message is not answered by the reader",
            )),
        }
    }

    /// [`By::Media`] frames: answered off the session actor (they touch the
    /// media store and the encoder pool, not rooms).
    fn media(&self, frame: ClientFrame) {
        let (media, out, user, id, m) = (
            self.app.media.clone(),
            self.out.clone(),
            self.user.to_string(),
            frame.id,
            frame.m,
        );
        let (perms, plan) = (self.app.perms.clone(), self.plan);
        tokio::spawn(async move {
            let reply = match media {
                Some(svc) => {
                    // The account's current plan and role, not the hello
                    // token's (a demoted admin is no admin here).
                    let plan = live_plan(&perms, &user, plan).await;
                    let video = video_allowed(&perms, &user, plan, &m).await;
                    svc.request(&user, plan.role(), &m, video).await
                }
                None => Err((
                    ErrorCode::Internal,
                    "media is not enabled on this node".into(),
                )),
            };
            match reply {
                Ok(r) => out.control(ok_frame(id, r)),
                Err((code, msg)) => out.control(err_frame(id, code, msg)),
            }
        });
    }

    /// [`By::Session`] frames (and live input queued behind them): waits
    /// for a read permit (TCP pushes back meanwhile), starts the session
    /// actor on first use and casts the frame to it.
    async fn send_to_session(&mut self, frame: ClientFrame) -> Flow {
        // Not forever: a session actor that died holds its permits.
        let permit = loop {
            match tokio::time::timeout(Duration::from_secs(1), self.permits.acquire()).await {
                Ok(p) => break p.ok(),
                Err(_)
                    if self
                        .actor
                        .as_ref()
                        .is_some_and(|a| a.get_status() == ActorStatus::Stopped) =>
                {
                    break None;
                }
                Err(_) => {}
            }
        };
        let Some(permit) = permit else {
            self.out.kill(CloseCode::INTERNAL, "session ended");
            return Flow::Stop;
        };
        permit.forget();
        if self.actor.is_none() {
            let args = SessionArgs {
                directory: self.app.directory.clone(),
                out: self.out.clone(),
                role: self.role,
                permits: self.permits.clone(),
            };
            match Box::pin(Actor::spawn(None, Session, args)).await {
                Ok((a, _)) => self.actor = Some(a),
                Err(e) => {
                    tracing::error!(%e, "session actor failed to start");
                    self.out
                        .kill(CloseCode::INTERNAL, "session failed to start");
                    return Flow::Stop;
                }
            }
        }
        let sent = self
            .actor
            .as_ref()
            .is_some_and(|a| a.cast(SessionMsg::Frame(Box::new(frame))).is_ok());
        if sent {
            Flow::Next
        } else {
            self.out.kill(CloseCode::INTERNAL, "session ended");
            Flow::Stop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chalktalk_protocol::Point;

    #[test]
    fn every_wire_type_has_a_row_and_live_input_skips_the_session() {
        // One sample of each wire type (ClientMsg::TYPES order).
        let room = || "r1".to_string();
        let samples = vec![
            ClientMsg::Hello {
                v: vec![1],
                token: None,
                device: "d".into(),
                inbox_since: None,
            },
            ClientMsg::Ping,
            ClientMsg::MediaLink { asset: "a".into() },
            ClientMsg::CancelMedia { asset: "a".into() },
            ClientMsg::CreateRoom {
                video_id: "v".into(),
                aspect: None,
                fps: None,
            },
            ClientMsg::JoinRoom {
                room: room(),
                since: None,
            },
            ClientMsg::LeaveRoom { room: room() },
            ClientMsg::SnapshotPage {
                room: room(),
                seq: 1,
                page: 0,
            },
            ClientMsg::Pointer {
                room: room(),
                at: Some(Point(0.5, 0.5)),
            },
        ];
        let by: Vec<By> = samples.iter().map(|m| route(m).by).collect();
        assert_eq!(
            by,
            [
                By::Reader,
                By::Reader,
                By::Media,
                By::Media,
                By::Session,
                By::Session,
                By::Session,
                By::Session,
                By::Live
            ]
        );
        let checks: Vec<Check> = samples.iter().map(|m| route(m).check).collect();
        assert_eq!(checks[4], Check::CreateRoom);
        assert_eq!(checks[5], Check::JoinRoom);
        assert_eq!(checks[2], Check::MediaVideo);
        assert!(checks[6..].iter().all(|c| *c == Check::None));
        // Every live message is answered by its room, every other message
        // that is not the reader's or the media service's by the session.
        for m in &samples {
            assert_eq!(route(m).by == By::Live, m.is_live(), "{m:?}");
        }
    }

    #[test]
    fn only_invites_among_ops_are_checked() {
        let invite = ClientMsg::Op {
            room: "r".into(),
            op_id: "o".into(),
            op: RoomOp::Invite { user: "u".into() },
        };
        assert_eq!(route(&invite).check, Check::Invite);
        let undo = ClientMsg::Op {
            room: "r".into(),
            op_id: "o".into(),
            op: RoomOp::Undo,
        };
        assert_eq!(route(&undo).check, Check::None);
        assert_eq!(route(&undo).by, By::Session);
    }
}
