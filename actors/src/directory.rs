//! The directory: how a session finds the actor of a room or thread by id
//! without knowing where it runs. Every actor lives on this node under a
//! local supervisor; in a cluster a room or thread starts only where its
//! lease could be taken (`Lookup::Elsewhere` otherwise), and one that
//! another live node serves is reached through a stand-in (`relay::proxy`,
//! `relay::thread_proxy`) behind this same interface.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorRef, Message};

use crate::handle::Handle;
use crate::inbox::{Inbox, InboxArgs, InboxMsg};
use crate::lease::{LeaseKind, PlacePolicy};
use crate::relay::Relay;
use crate::relay::endpoint::{Endpoint, EndpointArgs};
use crate::relay::proxy::{ProxyArgs, RoomProxy};
use crate::relay::thread_proxy::{ThreadProxy, ThreadProxyArgs};
use crate::room::{ReviewRoom, RoomMsg};
use crate::supervisor::{Lookup, SupMsg, Supervised, Supervisor};
use crate::thread::{ChatThread, ThreadMsg};
use crate::{CoreConfig, Deps, OutboundStats, lock, store::Store};

struct Place<M: Message> {
    sup: ActorRef<SupMsg<M>>,
    cache: Mutex<HashMap<String, Handle<M>>>,
}

impl<M: Message> Place<M> {
    async fn get(&self, id: &str) -> Result<Handle<M>, Lookup> {
        if let Some(h) = lock(&self.cache).get(id)
            && h.alive()
        {
            return Ok(h.clone());
        }
        let id_owned = id.to_string();
        let res = self
            .sup
            .call(
                |reply| SupMsg::Get {
                    id: id_owned,
                    reply,
                },
                None,
            )
            .await
            .map_err(|e| Lookup::Unavailable(e.to_string()))?;
        match res {
            ractor::rpc::CallResult::Success(Ok(h)) => {
                let mut cache = lock(&self.cache);
                cache.retain(|_, h| h.alive());
                cache.insert(id.to_string(), h.clone());
                Ok(h)
            }
            ractor::rpc::CallResult::Success(Err(e)) => Err(e),
            _ => Err(Lookup::Unavailable("supervisor did not answer".into())),
        }
    }

    /// True if the actor of `id` runs here (as far as the cache knows).
    fn running(&self, id: &str) -> bool {
        lock(&self.cache).get(id).is_some_and(|h| h.alive())
    }

    async fn count(&self) -> usize {
        match self.sup.call(SupMsg::Count, None).await {
            Ok(ractor::rpc::CallResult::Success(n)) => n,
            _ => 0,
        }
    }
}

/// Stand-ins of rooms or threads other nodes serve: id → (owner, handle).
type StandIns<M> = Mutex<HashMap<String, (String, Handle<M>)>>;

async fn start_place<A: Supervised>(deps: &Arc<Deps>) -> Result<Place<A::Msg>, ractor::SpawnErr> {
    let (sup, _) = Actor::spawn(None, Supervisor::<A>::default(), deps.clone()).await?;
    Ok(Place {
        sup,
        cache: Mutex::new(HashMap::new()),
    })
}

/// Finds (and starts) rooms and threads; owns the core's shared deps.
pub struct Directory {
    pub deps: Arc<Deps>,
    rooms: Place<RoomMsg>,
    threads: Place<ThreadMsg>,
    /// In a cluster: how this node reaches rooms owned elsewhere.
    relay: Option<Arc<Relay>>,
    /// Stand-ins of rooms owned by other nodes.
    proxies: StandIns<RoomMsg>,
    /// Stand-ins of threads owned by other nodes.
    thread_proxies: StandIns<ThreadMsg>,
}

impl Directory {
    /// Starts the inbox and the supervisors (a node outside any cluster).
    pub async fn start(
        store: Arc<dyn Store>,
        config: CoreConfig,
    ) -> Result<Arc<Directory>, ractor::SpawnErr> {
        Self::start_placed(store, config, None).await
    }

    /// Starts the inbox and the supervisors; with a placement, rooms are
    /// leased and their writes fenced (docs/ARCHITECTURE.md, "Cluster").
    pub async fn start_placed(
        store: Arc<dyn Store>,
        config: CoreConfig,
        placement: Option<Arc<crate::lease::Placement>>,
    ) -> Result<Arc<Directory>, ractor::SpawnErr> {
        let relay = placement.as_ref().map(|p| Relay::new(p.node.clone()));
        let (inbox, _) = Actor::spawn(
            None,
            Inbox,
            InboxArgs {
                store: store.clone(),
                relay: relay.clone(),
            },
        )
        .await?;
        let deps = Arc::new(Deps {
            media_watch: Default::default(),
            store,
            config,
            stats: Arc::new(OutboundStats::default()),
            inbox,
            placement,
        });
        let dir = Arc::new(Directory {
            rooms: start_place::<ReviewRoom>(&deps).await?,
            threads: start_place::<ChatThread>(&deps).await?,
            relay: relay.clone(),
            proxies: Mutex::new(HashMap::new()),
            thread_proxies: Mutex::new(HashMap::new()),
            deps,
        });
        if let Some(relay) = relay {
            let (endpoint, _) = Actor::spawn(
                None,
                Endpoint,
                EndpointArgs {
                    relay: relay.clone(),
                    dir: Arc::downgrade(&dir),
                    stats: dir.deps.stats.clone(),
                },
            )
            .await?;
            relay.set_endpoint(endpoint);
        }
        Ok(dir)
    }

    /// This node's relay (in a cluster).
    pub fn relay(&self) -> Option<&Arc<Relay>> {
        self.relay.as_ref()
    }

    /// The room's actor on this node only (never a stand-in of another
    /// node's): what the relay hands requests from other nodes to.
    pub async fn local_room(&self, id: &str) -> Result<Handle<RoomMsg>, Lookup> {
        self.rooms.get(id).await
    }

    /// The room's actor, started (and rebuilt from the store) if needed;
    /// in a cluster, the stand-in of the room when another live node
    /// serves it.
    pub async fn room(&self, id: &str) -> Result<Handle<RoomMsg>, Lookup> {
        let limit = self.deps.config.queue_limit;
        self.placed(
            &self.rooms,
            &self.proxies,
            LeaseKind::Room,
            id,
            |relay, placement, owner, depth| async move {
                let args = ProxyArgs {
                    room: id.to_string(),
                    owner,
                    relay,
                    placement,
                    depth,
                };
                Actor::spawn(None, RoomProxy, args).await.map(|(a, _)| a)
            },
            limit,
        )
        .await
    }

    /// The thread's actor on this node only (what the relay hands
    /// requests from other nodes to).
    pub async fn local_thread(&self, id: &str) -> Result<Handle<ThreadMsg>, Lookup> {
        self.threads.get(id).await
    }

    /// The thread's actor, started (and rebuilt from the store) if needed;
    /// in a cluster, its stand-in when another live node serves it.
    pub async fn thread(&self, id: &str) -> Result<Handle<ThreadMsg>, Lookup> {
        let limit = self.deps.config.queue_limit;
        self.placed(
            &self.threads,
            &self.thread_proxies,
            LeaseKind::Thread,
            id,
            |relay, placement, owner, depth| async move {
                let args = ThreadProxyArgs {
                    thread: id.to_string(),
                    owner,
                    relay,
                    placement,
                    depth,
                };
                Actor::spawn(None, ThreadProxy, args).await.map(|(a, _)| a)
            },
            limit,
        )
        .await
    }

    /// The local actor of a room or thread, or in a cluster, when another
    /// live node holds its lease, its stand-in (`spawn`ed if needed). Under
    /// [`PlacePolicy::Rendezvous`], one that no node serves gets a stand-in
    /// for the live node of the highest rendezvous score, whose relay
    /// starts it there (unless that is this node).
    #[allow(clippy::too_many_arguments)]
    async fn placed<M, F, Fut>(
        &self,
        local: &Place<M>,
        stand_ins: &StandIns<M>,
        kind: LeaseKind,
        id: &str,
        spawn: F,
        limit: usize,
    ) -> Result<Handle<M>, Lookup>
    where
        M: Message,
        F: FnOnce(Arc<Relay>, Arc<crate::lease::Placement>, String, Arc<AtomicUsize>) -> Fut,
        Fut: std::future::Future<Output = Result<ActorRef<M>, ractor::SpawnErr>>,
    {
        let Some(relay) = &self.relay else {
            return local.get(id).await;
        };
        let cached = lock(stand_ins)
            .get(id)
            .filter(|(_, h)| h.alive())
            .map(|(_, h)| h.clone());
        if let Some(h) = cached {
            return Ok(h);
        }
        let elsewhere = match self.rendezvous_pick(local, relay, kind, id).await {
            Some(owner) => Err(Lookup::Elsewhere(owner)),
            None => local.get(id).await,
        };
        let owner = match elsewhere {
            Err(Lookup::Elsewhere(owner)) if relay.is_live(&owner) => owner,
            other => return other,
        };
        let Some(placement) = self.deps.placement.clone() else {
            return Err(Lookup::Elsewhere(owner));
        };
        let depth = Arc::new(AtomicUsize::new(0));
        let actor = spawn(relay.clone(), placement, owner.clone(), depth.clone())
            .await
            .map_err(|e| Lookup::Unavailable(e.to_string()))?;
        let h = Handle {
            actor,
            depth,
            limit,
        };
        let mut all = lock(stand_ins);
        all.retain(|_, (_, h)| h.alive());
        all.insert(id.to_string(), (owner, h.clone()));
        Ok(h)
    }

    /// Under the rendezvous policy, the other node that serves or should
    /// start `id`: its lease holder if one holds it (and is up), else the
    /// rendezvous pick over the nodes up. `None`: look here (running here,
    /// this node's pick, first-use policy, or the store cannot say).
    async fn rendezvous_pick<M: Message>(
        &self,
        local: &Place<M>,
        relay: &Relay,
        kind: LeaseKind,
        id: &str,
    ) -> Option<String> {
        let placement = self.deps.placement.as_ref()?;
        if placement.policy != PlacePolicy::Rendezvous || local.running(id) {
            return None;
        }
        let other = |n: String| (n != placement.node).then_some(n);
        match placement.leases.holder(kind, id).await {
            Ok(Some(l)) if l.expires_ms > crate::now_ms() && relay.is_live(&l.owner) => {
                other(l.owner)
            }
            Ok(_) => other(relay.rendezvous_owner(id)),
            Err(_) => None,
        }
    }

    /// Live rooms showing `video` on this node.
    pub fn rooms_showing(&self, video: &str) -> Vec<ActorRef<RoomMsg>> {
        crate::lock(&self.deps.media_watch)
            .get(video)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn inbox(&self) -> &ActorRef<InboxMsg> {
        &self.deps.inbox
    }

    /// Rooms and threads running on this node.
    pub async fn counts(&self) -> (usize, usize) {
        (self.rooms.count().await, self.threads.count().await)
    }

    /// The users' inboxes this node writes (held in memory: users with a
    /// device connected or notices on the way; in a cluster, those it
    /// owns).
    pub async fn inboxes(&self) -> usize {
        match self.inbox().call(InboxMsg::Owned, None).await {
            Ok(ractor::rpc::CallResult::Success(n)) => n,
            _ => 0,
        }
    }

    /// Stops the supervisors (and with them every room and thread).
    pub fn shutdown(&self) {
        for (_, (_, h)) in lock(&self.proxies).drain() {
            h.actor.stop(Some("shutdown".into()));
        }
        for (_, (_, h)) in lock(&self.thread_proxies).drain() {
            h.actor.stop(Some("shutdown".into()));
        }
        if let Some(e) = self.relay.as_ref().and_then(|r| r.endpoint()) {
            e.stop(Some("shutdown".into()));
        }
        self.rooms.sup.stop(Some("shutdown".into()));
        self.threads.sup.stop(Some("shutdown".into()));
        self.deps.inbox.stop(Some("shutdown".into()));
    }
}
