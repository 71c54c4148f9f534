//! One table for client frames. [`route`] says, for every `ClientMsg`
//! variant, which permission check the frame passes ([`Check`], done by
//! `super::guard`) and who answers it ([`By`]); [`Dispatcher`] carries a
//! decoded frame there. The transport (socket, rate limit, heartbeats,
//! decoding, the write loop) is `super::ws`; what each answerer does with
//! a frame is `chalktalk_actors::session` (room and thread requests, live
//! input after `chalktalk_actors::live`'s check) and `chalktalk_services::media`
//! (media requests). Frames are handled one at a time, in the order read; while
//! one is handled the reader reads nothing, so TCP pushes back.
//!
//! [`route`] names every variant (no wildcard), so a new client message
//! does not compile until it has a row here.

use std::panic::AssertUnwindSafe;

use chalktalk_actors::live::{self, Live};
use chalktalk_actors::outbound::{err_frame, ok_frame};
use chalktalk_actors::session::Session;
use chalktalk_actors::{Outbound, now_ms};
use chalktalk_protocol::{ClientFrame, ClientMsg, CloseCode, ErrorCode, Limits, Reply, RoomOp};
use futures_util::FutureExt;

use super::App;
use super::guard::{Guard, live_plan, media_grant};
use super::hello::Hello;

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
    /// hello): they touch no room, thread or store.
    Reader,
    /// A task off the reader, with the media service.
    Media,
    /// The room, cast to straight from the reader (no actor hop).
    Live,
    /// The connection's session, in the reader, which answers the frame
    /// or forwards it to the room or thread.
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
        M::RoomThread { .. } => (Check::None, By::Session),
        M::OpenThread { .. } => (Check::None, By::Session),
        M::CloseThread { .. } => (Check::None, By::Session),
        M::Send { .. } => (Check::Send, By::Session),
        M::EditMessage { .. } => (Check::None, By::Session),
        M::DeleteMessage { .. } => (Check::None, By::Session),
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

/// One connection's dispatch state: its permission checks and its session.
/// It borrows what the connection already holds (the app state is ~1 KiB:
/// a copy would be carried by every connection, idle or not).
pub struct Dispatcher<'a> {
    app: &'a App,
    out: &'a Outbound,
    user: &'a str,
    plan: chalktalk_services::accounts::Plan,
    limits: &'a Limits,
    guard: Guard,
    session: Session,
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
            limits,
            guard,
            session: Session::new(app.directory.clone(), out.clone(), h.role),
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
            // Live input goes straight to its room: the hot path, unboxed.
            By::Live => match live::check(self.out, frame.m, self.limits) {
                Ok(Live::Input(room, input)) => {
                    self.session.live(&room, input).await;
                    Flow::Next
                }
                Ok(Live::Other(m)) => self.session_frame(ClientFrame { id: frame.id, m }).await,
                Err((code, msg)) => {
                    self.out.control(err_frame(frame.id, code, msg));
                    Flow::Next
                }
            },
            By::Session => self.session_frame(frame).await,
        }
    }

    /// The connection closed: its rooms and threads drop it.
    pub fn stop(self) {
        self.session.close();
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

    /// [`By::Media`] frames: answered off the reader (they touch the
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
                    let grant = media_grant(&perms, &user, plan, &m).await;
                    svc.request(&user, plan.role(), &m, grant).await
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

    /// [`By::Session`] frames. Boxed, so the connection's long-lived
    /// reader future is not sized for the largest request. A panic while
    /// handling one ends this connection only (closed with 1011; its rooms
    /// and threads drop it), as an actor's would.
    async fn session_frame(&mut self, frame: ClientFrame) -> Flow {
        let handled = Box::pin(AssertUnwindSafe(self.session.handle(frame)).catch_unwind()).await;
        if handled.is_ok() {
            Flow::Next
        } else {
            tracing::error!("session panicked handling a frame; closing the connection");
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
