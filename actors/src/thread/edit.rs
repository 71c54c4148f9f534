//! Editing and deleting one's own chat message (`edit_message`,
//! `delete_message`). Both are messages of the thread's stream with
//! `edit` set (`MsgEdit`): sequenced, group-committed, pushed to viewers
//! and replayed like any message, idempotent by `msg_id` (the namespace of
//! `send`). The checks: member (`not_member`), `msg_id` (`invalid`), the
//! target exists and is a plain message (`not_found`), it is yours
//! (`forbidden`), it is not deleted (`conflict`), the new text (as `send`).

use chalktalk_protocol::{ErrorCode, Message, MsgEdit, valid_id};
use ractor::ActorRef;

use super::{ThreadMsg, ThreadState, error};
use crate::now_ms;
use crate::outbound::Outbound;

/// An edit or a deletion as the client sent it.
#[derive(Debug, Clone)]
pub struct EditReq {
    pub msg_id: String,
    /// What to do, with the seq of the target.
    pub edit: MsgEdit,
    /// The new text (edit); ignored for a deletion.
    pub text: String,
}

type Refusal = (ErrorCode, String);

impl ThreadState {
    pub(super) async fn edit(
        &mut self,
        myself: &ActorRef<ThreadMsg>,
        out: Outbound,
        req: u32,
        e: EditReq,
    ) {
        if !self.member(&out, req) {
            return;
        }
        if !valid_id(&e.msg_id) {
            out.control(error(
                req,
                ErrorCode::Invalid,
                "msg_id must be 1-64 characters of [A-Za-z0-9_.:@-]",
            ));
            return;
        }
        if self.dup(&out, req, &e.msg_id) {
            return;
        }
        if let Err((code, msg)) = self.check_edit(&out.user, &e).await {
            out.control(error(req, code, msg));
            return;
        }
        let text = match e.edit {
            MsgEdit::Edit { .. } => e.text,
            MsgEdit::Delete { of } => {
                self.deleted.insert(of);
                String::new()
            }
        };
        self.head += 1;
        let msg = Message {
            seq: self.head,
            id: e.msg_id,
            from: out.user.clone(),
            at_ms: now_ms(),
            text,
            attachments: Vec::new(),
            reply_to: None,
            edit: Some(e.edit),
        };
        self.sequence(myself, msg, out, req);
    }

    /// The target of `e`, if `user` may edit or delete it.
    async fn check_edit(&self, user: &str, e: &EditReq) -> Result<(), Refusal> {
        let of = e.edit.of();
        let unknown = || {
            (
                ErrorCode::NotFound,
                format!("no message {of} in thread {}", self.id),
            )
        };
        if of == 0 || of > self.head {
            return Err(unknown());
        }
        let queued = self
            .pending
            .iter()
            .chain(self.in_flight.iter().flatten())
            .find(|p| p.msg.seq == of)
            .map(|p| p.msg.clone());
        let target = match queued {
            Some(m) => m,
            None => self
                .deps
                .store
                .messages_after(&self.id, of - 1, 1)
                .await
                .map_err(|err| (err.code(), format!("storage: {err}")))?
                .into_iter()
                .find(|m| m.seq == of)
                .ok_or_else(unknown)?,
        };
        if target.edit.is_some() {
            return Err((
                ErrorCode::NotFound,
                format!("{of} is an edit or a deletion, not a message"),
            ));
        }
        if target.from != user {
            return Err((
                ErrorCode::Forbidden,
                format!("message {of} is not yours: only its author edits or deletes it"),
            ));
        }
        if self.deleted.contains(&of) {
            return Err((ErrorCode::Conflict, format!("message {of} is deleted")));
        }
        if let MsgEdit::Edit { .. } = e.edit {
            let max = self.deps.config.limits.max_text_bytes as usize;
            if e.text.len() > max {
                return Err((
                    ErrorCode::TextTooLong,
                    format!("text is {} bytes; at most {max}", e.text.len()),
                ));
            }
            if e.text.trim().is_empty() && target.attachments.is_empty() {
                return Err((
                    ErrorCode::Invalid,
                    "an edit needs text (delete the message instead)".into(),
                ));
            }
        }
        Ok(())
    }
}
