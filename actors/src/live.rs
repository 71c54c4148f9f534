//! Live input of a joined member (stroke previews, the laser pointer,
//! activity): checked and cast straight to the room. The connection's
//! reader sends it this way whenever nothing of the connection is queued at
//! its Session actor (so order is kept), which spares every stroke preview
//! an actor hop; the Session actor uses the same check for live frames that
//! queued behind a request.

use std::collections::HashMap;

use chalktalk_protocol::annotation::validate_points;
use chalktalk_protocol::{ClientMsg, ErrorCode, Limits, RoomId, StrokeIn, valid_id};

use crate::directory::Directory;
use crate::handle::Handle;
use crate::outbound::Outbound;
use crate::room::{LiveInput, RoomMsg};
use crate::session::{Fail, route};

/// What [`check`] made of a message.
pub enum Live {
    /// Valid live input for a room the connection has joined.
    Input(RoomId, LiveInput),
    /// Not a live message: the session handles it.
    Other(ClientMsg),
}

/// Fails unless the connection has joined `room`.
pub fn joined(out: &Outbound, room: &str) -> Result<(), Fail> {
    if out.in_room(room) {
        Ok(())
    } else {
        Err((ErrorCode::NotMember, format!("join room {room} first")))
    }
}

/// Checks a live message (room joined, points in range and within the
/// batch limit, a valid stroke id) and turns it into the room's input.
pub fn check(out: &Outbound, m: ClientMsg, limits: &Limits) -> Result<Live, Fail> {
    let input = match m {
        ClientMsg::Points(StrokeIn { room, live }) => {
            joined(out, &room)?;
            validate_points(&live.points, limits).map_err(|i| (i.code, i.message))?;
            if !valid_id(&live.stroke) {
                return Err((ErrorCode::Invalid, "stroke must be a valid id".into()));
            }
            (room, LiveInput::Points(live))
        }
        ClientMsg::Pointer { room, at } => {
            joined(out, &room)?;
            if let Some(p) = at {
                validate_points(&[p], limits).map_err(|i| (i.code, i.message))?;
            }
            (room, LiveInput::Pointer(at))
        }
        ClientMsg::Activity { room, activity } => {
            joined(out, &room)?;
            (room, LiveInput::Activity(activity))
        }
        other => return Ok(Live::Other(other)),
    };
    Ok(Live::Input(input.0, input.1))
}

/// Room handles of one connection's live input, looked up once.
#[derive(Default)]
pub struct LiveRoutes {
    rooms: HashMap<String, Handle<RoomMsg>>,
}

impl LiveRoutes {
    /// Casts checked input to its room. Live input is dropped, never
    /// queued, when the room is gone or full: the next batch supersedes it.
    pub async fn send(&mut self, dir: &Directory, out: &Outbound, room: &str, input: LiveInput) {
        let msg = RoomMsg::Live {
            session: out.session,
            input,
        };
        // The cached handle first, without an await; the lookup is boxed,
        // so the connection's long-lived reader future does not carry the
        // directory's lookup state (~850 bytes per connection otherwise).
        let msg = match self.rooms.get(room) {
            Some(h) if h.alive() => match h.send(msg, true) {
                Ok(()) => return,
                Err((_, Some(back))) => back,
                Err((_, None)) => return,
            },
            _ => msg,
        };
        let _ = Box::pin(route(&mut self.rooms, dir, room, true, msg)).await;
    }
}

/// [`LiveRoutes::send`] over any cache of room handles (the Session's own).
pub async fn send(
    cache: &mut HashMap<String, Handle<RoomMsg>>,
    dir: &Directory,
    out: &Outbound,
    room: &str,
    input: LiveInput,
) {
    let msg = RoomMsg::Live {
        session: out.session,
        input,
    };
    let _ = route(cache, dir, room, true, msg).await;
}
