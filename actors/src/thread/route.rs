//! The one table between the client's thread requests (`ClientMsg`) and
//! the thread actor's messages (`ThreadMsg`): the session routes with
//! [`from_client`], and a thread's stand-in on another node turns its
//! messages back into the client's request with [`to_client`] to send them
//! up to the thread's owner, whose relay routes them with [`from_client`]
//! again.

use chalktalk_protocol::{ClientMsg, MsgEdit};

use super::{Draft, EditReq, ThreadMsg};
use crate::outbound::Outbound;

/// A client request for a thread, as the thread actor takes it.
pub struct Routed {
    pub thread: String,
    pub msg: ThreadMsg,
    /// Dropped rather than queued when the thread is busy (typing).
    pub ephemeral: bool,
}

/// The thread request `msg` is (`Err(msg)`: not a thread request).
// Every frame passes through here: handing a non-thread message back by
// value costs a move, boxing it would cost an allocation per frame.
#[allow(clippy::result_large_err)]
pub fn from_client(out: &Outbound, req: u32, msg: ClientMsg) -> Result<Routed, ClientMsg> {
    let (thread, msg, ephemeral) = match msg {
        ClientMsg::OpenThread { thread, since } => (
            thread,
            ThreadMsg::Open {
                out: out.clone(),
                req,
                since,
            },
            false,
        ),
        ClientMsg::CloseThread { thread } => (
            thread,
            ThreadMsg::Close {
                out: out.clone(),
                req,
            },
            false,
        ),
        ClientMsg::Send {
            thread,
            msg_id,
            text,
            attachments,
            reply_to,
        } => {
            let draft = Draft {
                msg_id,
                text,
                attachments,
                reply_to,
            };
            (
                thread,
                ThreadMsg::Send {
                    out: out.clone(),
                    req,
                    draft,
                },
                false,
            )
        }
        ClientMsg::EditMessage {
            thread,
            msg_id,
            of,
            text,
        } => {
            let edit = EditReq {
                msg_id,
                edit: MsgEdit::Edit { of },
                text,
            };
            (
                thread,
                ThreadMsg::Edit {
                    out: out.clone(),
                    req,
                    edit,
                },
                false,
            )
        }
        ClientMsg::DeleteMessage { thread, msg_id, of } => {
            let edit = EditReq {
                msg_id,
                edit: MsgEdit::Delete { of },
                text: String::new(),
            };
            (
                thread,
                ThreadMsg::Edit {
                    out: out.clone(),
                    req,
                    edit,
                },
                false,
            )
        }
        ClientMsg::Typing { thread, on } => (
            thread,
            ThreadMsg::Typing {
                out: out.clone(),
                on,
            },
            true,
        ),
        ClientMsg::Mark {
            thread,
            delivered,
            read,
        } => (
            thread,
            ThreadMsg::Mark {
                out: out.clone(),
                req,
                delivered,
                read,
            },
            false,
        ),
        ClientMsg::History {
            thread,
            before,
            limit,
        } => (
            thread,
            ThreadMsg::History {
                out: out.clone(),
                req,
                before,
                limit,
            },
            false,
        ),
        other => return Err(other),
    };
    Ok(Routed {
        thread,
        msg,
        ephemeral,
    })
}

/// The client request a thread message came from, with its connection and
/// request id (0 for typing); `None` for the actor's own messages.
pub fn to_client(thread: &str, msg: ThreadMsg) -> Option<(Outbound, u32, ClientMsg)> {
    let thread = thread.to_string();
    Some(match msg {
        ThreadMsg::Open { out, req, since } => (out, req, ClientMsg::OpenThread { thread, since }),
        ThreadMsg::Close { out, req } => (out, req, ClientMsg::CloseThread { thread }),
        ThreadMsg::Send { out, req, draft } => (
            out,
            req,
            ClientMsg::Send {
                thread,
                msg_id: draft.msg_id,
                text: draft.text,
                attachments: draft.attachments,
                reply_to: draft.reply_to,
            },
        ),
        ThreadMsg::Edit { out, req, edit } => {
            let m = match edit.edit {
                MsgEdit::Edit { of } => ClientMsg::EditMessage {
                    thread,
                    msg_id: edit.msg_id,
                    of,
                    text: edit.text,
                },
                MsgEdit::Delete { of } => ClientMsg::DeleteMessage {
                    thread,
                    msg_id: edit.msg_id,
                    of,
                },
            };
            (out, req, m)
        }
        ThreadMsg::Typing { out, on } => (out, 0, ClientMsg::Typing { thread, on }),
        ThreadMsg::Mark {
            out,
            req,
            delivered,
            read,
        } => (
            out,
            req,
            ClientMsg::Mark {
                thread,
                delivered,
                read,
            },
        ),
        ThreadMsg::History {
            out,
            req,
            before,
            limit,
        } => (
            out,
            req,
            ClientMsg::History {
                thread,
                before,
                limit,
            },
        ),
        _ => return None,
    })
}
