//! The stand-in of a chat thread owned by another node: the edge node's
//! sessions talk to it as to the thread (`ThreadMsg`), and it sends each
//! request up to the owner's relay as the client's own message (the
//! replies and messages come down to the sessions' own queues). When the
//! owner goes down or the thread's lease moves it stops and closes its
//! viewers' connections, as a restarted thread does (`thread restarted;
//! reconnect and resume`): they reopen with `since` on the new owner.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use chalktalk_protocol::{CloseCode, ErrorCode};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{Relay, Target};
use crate::handle::handled;
use crate::lease::{LeaseKind, Placement};
use crate::outbound::{Outbound, SessionId, err_frame};
use crate::thread::ThreadMsg;
use crate::thread::route::to_client;

pub struct ThreadProxy;

pub struct ThreadProxyArgs {
    pub thread: String,
    pub owner: String,
    pub relay: Arc<Relay>,
    pub placement: Arc<Placement>,
    pub depth: Arc<AtomicUsize>,
}

pub struct ThreadProxyState {
    thread: String,
    target: Target,
    owner: String,
    relay: Arc<Relay>,
    placement: Arc<Placement>,
    depth: Arc<AtomicUsize>,
    /// Sessions that opened the thread through here (their connections
    /// are closed when the owner goes away).
    viewers: HashMap<SessionId, Outbound>,
    /// Every session that sent a request through here (posting needs no
    /// `open`): the owner is told when each one's connection ends, so it
    /// drops their shadow connections.
    senders: std::collections::HashSet<SessionId>,
}

impl ThreadProxyState {
    /// Still the owner's, and the owner still up?
    async fn owner_holds(&self) -> bool {
        if !self.relay.is_live(&self.owner) {
            return false;
        }
        match self
            .placement
            .leases
            .holder(LeaseKind::Thread, &self.thread)
            .await
        {
            Ok(Some(l)) => l.owner == self.owner && l.expires_ms > crate::now_ms(),
            Ok(None) => false,
            // The store cannot say: keep going while the owner is up.
            Err(_) => true,
        }
    }
}

impl Actor for ThreadProxy {
    type Msg = ThreadMsg;
    type State = ThreadProxyState;
    type Arguments = ThreadProxyArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ThreadMsg>,
        a: ThreadProxyArgs,
    ) -> Result<ThreadProxyState, ActorProcessingErr> {
        tracing::debug!(thread = %a.thread, owner = %a.owner, "thread proxy started");
        // The check of the owner rides on the thread's idle tick.
        myself.send_interval(a.placement.ttl / 2, || ThreadMsg::IdleCheck);
        Ok(ThreadProxyState {
            target: Target::Thread(a.thread.clone()),
            thread: a.thread,
            owner: a.owner,
            relay: a.relay,
            placement: a.placement,
            depth: a.depth,
            viewers: HashMap::new(),
            senders: Default::default(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ThreadMsg>,
        st: &mut ThreadProxyState,
    ) -> Result<(), ActorProcessingErr> {
        st.relay.fail_pending(&st.target, &st.owner);
        for (_, out) in st.viewers.drain() {
            out.kill(
                CloseCode::SLOW_CONSUMER,
                "thread restarted; reconnect and resume",
            );
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ThreadMsg>,
        msg: ThreadMsg,
        st: &mut ThreadProxyState,
    ) -> Result<(), ActorProcessingErr> {
        let ok = match msg {
            ThreadMsg::IdleCheck => st.owner_holds().await,
            ThreadMsg::Disconnected { session } => {
                handled(&st.depth);
                st.viewers.remove(&session);
                if st.senders.remove(&session) {
                    st.relay.gone(&st.owner, session, &st.target);
                }
                true
            }
            msg => {
                handled(&st.depth);
                match to_client(&st.thread, msg) {
                    Some((out, req, m)) => {
                        st.senders.insert(out.session);
                        match &m {
                            chalktalk_protocol::ClientMsg::OpenThread { .. } => {
                                st.viewers.insert(out.session, out.clone());
                            }
                            chalktalk_protocol::ClientMsg::CloseThread { .. } => {
                                st.viewers.remove(&out.session);
                            }
                            _ => {}
                        }
                        let sent = st.relay.up(&st.owner, &st.target, &out, None, req, m);
                        if !sent && req != 0 {
                            out.control(err_frame(
                                req,
                                ErrorCode::Unavailable,
                                format!(
                                    "thread {} is served by node {}, which cannot be reached; retry later",
                                    st.thread, st.owner
                                ),
                            ));
                        }
                        sent
                    }
                    // The thread's own messages are not for a stand-in.
                    None => true,
                }
            }
        };
        if !ok {
            tracing::info!(thread = %st.thread, owner = %st.owner, "thread proxy stopping: the owner is gone or the thread moved");
            myself.stop(Some("owner gone".into()));
        }
        Ok(())
    }
}
