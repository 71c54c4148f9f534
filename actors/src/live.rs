//! Live input of a joined member (stroke previews, the laser pointer,
//! activity): checked here and cast straight to the room by the
//! connection's session (`crate::session::Session::live`), in the order it
//! was read, with no actor hop of its own.

use chalktalk_protocol::annotation::validate_points;
use chalktalk_protocol::{ClientMsg, ErrorCode, Limits, RoomId, StrokeIn, valid_id};

use crate::outbound::Outbound;
use crate::room::LiveInput;
use crate::session::Fail;

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
