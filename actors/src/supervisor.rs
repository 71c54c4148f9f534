//! A supervisor for keyed children (review rooms, chat threads). It spawns a
//! child on first use, and, unlike ractor's default (which stops the
//! supervisor when a child fails), restarts a child that panicked or failed,
//! rebuilding it from the store. A child that stops normally (idle) is
//! forgotten and spawned afresh on next use. Restarts are budgeted so a
//! child that crashes on load does not spin.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, Message, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use ractor_cluster_derive::RactorMessage;

use crate::Deps;
use crate::handle::Handle;
use crate::outbound::{Outbound, SessionId};

/// Sessions attached to a child, kept outside the child so that a restarted
/// child can tell them to resync.
pub type Registry = Arc<Mutex<HashMap<SessionId, Outbound>>>;

/// Restarts allowed per child within [`RESTART_WINDOW`].
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// What a supervised child starts from.
pub struct ChildArgs {
    pub id: String,
    pub deps: Arc<Deps>,
    pub registry: Registry,
    pub depth: Arc<AtomicUsize>,
}

/// Returned by a child's `pre_start` when its id is unknown to the store.
#[derive(Debug, thiserror::Error)]
#[error("{0} not found")]
pub struct NotFound(pub String);

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    NotFound,
    Unavailable(String),
    /// Another node holds the lease (`owner`).
    Elsewhere(String),
}

/// A kind of child the supervisor can run.
pub trait Supervised: Actor<Arguments = ChildArgs> + Default {
    /// For logs: "room", "thread".
    const KIND: &'static str;
    /// Tells sessions attached to an incarnation that is gone (crashed,
    /// restarted, given up on) to attach again.
    fn orphan(id: &str, sessions: Vec<Outbound>);
}

/// Empties a registry, returning the sessions it held.
pub fn drain(registry: &Registry) -> Vec<Outbound> {
    crate::lock(registry).drain().map(|(_, o)| o).collect()
}

#[derive(RactorMessage)]
pub enum SupMsg<M: Message> {
    /// The running child with this id, spawned if needed.
    Get {
        id: String,
        reply: RpcReplyPort<Result<Handle<M>, Lookup>>,
    },
    /// How many children run.
    Count(RpcReplyPort<usize>),
}

struct Child<M: Message> {
    handle: Handle<M>,
    registry: Registry,
    restarts: Vec<Instant>,
}

pub struct SupState<M: Message> {
    deps: Arc<Deps>,
    children: HashMap<String, Child<M>>,
    ids: HashMap<ActorId, String>,
}

/// Supervisor of children of type `A`.
pub struct Supervisor<A>(PhantomData<fn() -> A>);

impl<A> Default for Supervisor<A> {
    fn default() -> Self {
        Supervisor(PhantomData)
    }
}

async fn spawn_child<A: Supervised>(
    myself: &ActorRef<SupMsg<A::Msg>>,
    deps: &Arc<Deps>,
    id: &str,
    registry: Registry,
) -> Result<Handle<A::Msg>, Lookup> {
    let depth = Arc::new(AtomicUsize::new(0));
    let args = ChildArgs {
        id: id.to_string(),
        deps: deps.clone(),
        registry,
        depth: depth.clone(),
    };
    match Actor::spawn_linked(None, A::default(), args, myself.get_cell()).await {
        Ok((actor, _)) => Ok(Handle {
            actor,
            depth,
            limit: deps.config.queue_limit,
        }),
        Err(SpawnErr::StartupFailed(e)) if e.downcast_ref::<NotFound>().is_some() => {
            Err(Lookup::NotFound)
        }
        Err(SpawnErr::StartupFailed(e)) => match e.downcast_ref::<crate::lease::PlaceError>() {
            Some(crate::lease::PlaceError::Elsewhere { owner, .. }) => {
                Err(Lookup::Elsewhere(owner.clone()))
            }
            _ => Err(Lookup::Unavailable(e.to_string())),
        },
        Err(e) => Err(Lookup::Unavailable(e.to_string())),
    }
}

impl<A: Supervised> Actor for Supervisor<A> {
    type Msg = SupMsg<A::Msg>;
    type State = SupState<A::Msg>;
    type Arguments = Arc<Deps>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        deps: Arc<Deps>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupState {
            deps,
            children: HashMap::new(),
            ids: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupMsg::Get { id, reply } => {
                if let Some(c) = state.children.get(&id)
                    && c.handle.alive()
                {
                    let _ = reply.send(Ok(c.handle.clone()));
                    return Ok(());
                }
                let registry = state
                    .children
                    .remove(&id)
                    .map(|c| c.registry)
                    .unwrap_or_default();
                let result = spawn_child::<A>(&myself, &state.deps, &id, registry.clone()).await;
                if let Ok(h) = &result {
                    state.ids.insert(h.actor.get_id(), id.clone());
                    state.children.insert(
                        id,
                        Child {
                            handle: h.clone(),
                            registry,
                            restarts: Vec::new(),
                        },
                    );
                }
                let _ = reply.send(result);
            }
            SupMsg::Count(reply) => {
                let _ = reply.send(state.children.len());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(id) = state.ids.remove(&cell.get_id()) else {
                    return Ok(());
                };
                let Some(child) = state.children.get_mut(&id) else {
                    return Ok(());
                };
                if child.handle.actor.get_id() != cell.get_id() {
                    return Ok(());
                }
                let now = Instant::now();
                child
                    .restarts
                    .retain(|t| now.duration_since(*t) < RESTART_WINDOW);
                if child.restarts.len() >= MAX_RESTARTS {
                    tracing::error!(kind = A::KIND, %id, %err, "child keeps failing; not restarting until next use");
                    A::orphan(&id, drain(&child.registry));
                    state.children.remove(&id);
                    return Ok(());
                }
                child.restarts.push(now);
                tracing::warn!(kind = A::KIND, %id, %err, restarts = child.restarts.len(), "child failed; restarting from the store");
                let registry = child.registry.clone();
                match spawn_child::<A>(&myself, &state.deps, &id, registry).await {
                    Ok(h) => {
                        state.ids.insert(h.actor.get_id(), id.clone());
                        if let Some(child) = state.children.get_mut(&id) {
                            child.handle = h;
                        }
                    }
                    Err(Lookup::Elsewhere(owner)) => {
                        tracing::info!(kind = A::KIND, %id, %owner, "moved to another node; members told to rejoin");
                        if let Some(child) = state.children.remove(&id) {
                            A::orphan(&id, drain(&child.registry));
                        }
                    }
                    Err(e) => {
                        tracing::error!(kind = A::KIND, %id, ?e, "restart failed");
                        if let Some(child) = state.children.remove(&id) {
                            A::orphan(&id, drain(&child.registry));
                        }
                    }
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(id) = state.ids.remove(&cell.get_id())
                    && state
                        .children
                        .get(&id)
                        .is_some_and(|c| c.handle.actor.get_id() == cell.get_id())
                {
                    tracing::debug!(kind = A::KIND, %id, ?reason, "child stopped");
                    state.children.remove(&id);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
