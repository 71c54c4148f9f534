//! The Inbox actor: the single writer of every user's inbox on this node.
//! It numbers each notice per user, stores it, then pushes it to every
//! connected device of that user. A device registers with the last inbox
//! seq it saw and receives what it missed first, atomically with its
//! registration, so nothing is missed or seen twice.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chalktalk_protocol::{CloseCode, InboxEvent, Notice, ServerFrame, UserId, encode};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;

use crate::outbound::{Durable, Outbound, SessionId};
use crate::{now_ms, store::Store};

/// Most missed inbox events replayed on registration.
const REPLAY_MAX: usize = 500;

#[derive(RactorMessage)]
pub enum InboxMsg {
    /// A device connected; replay what it missed after `since`. The reply
    /// says registration is done: notices after it are pushed live.
    Register {
        out: Outbound,
        since: Option<u64>,
        done: ractor::RpcReplyPort<()>,
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
}

pub struct Inbox;

pub struct InboxState {
    store: Arc<dyn Store>,
    sessions: HashMap<UserId, Vec<Outbound>>,
    heads: HashMap<UserId, u64>,
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
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<InboxMsg>,
        msg: InboxMsg,
        state: &mut InboxState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            InboxMsg::Register { out, since, done } => {
                if let Some(since) = since {
                    match state.store.inbox_after(&out.user, since, REPLAY_MAX).await {
                        Ok(events) => {
                            for ev in events {
                                push(&out, &Bytes::from(encode(&ServerFrame::Inbox(ev))));
                            }
                        }
                        Err(e) => tracing::warn!(user = %out.user, %e, "inbox replay failed"),
                    }
                }
                state
                    .sessions
                    .entry(out.user.clone())
                    .or_default()
                    .push(out);
                let _ = done.send(());
            }
            InboxMsg::Unregister { user, session } => {
                if let Some(list) = state.sessions.get_mut(&user) {
                    list.retain(|o| o.session != session);
                    if list.is_empty() {
                        state.sessions.remove(&user);
                        state.heads.remove(&user);
                    }
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
                if let Err(e) = state.store.append_inbox(&user, &ev).await {
                    tracing::warn!(%user, %e, "inbox append failed; notice dropped");
                    state.heads.remove(&user);
                    return Ok(());
                }
                if let Some(outs) = state.sessions.get(&user) {
                    state.heads.insert(user.clone(), ev.seq);
                    let frame = Bytes::from(encode(&ServerFrame::Inbox(ev)));
                    for out in outs {
                        push(out, &frame);
                    }
                }
            }
        }
        Ok(())
    }
}
