//! The relay actor of a node: the owner side (requests from sessions of
//! other nodes, each remote member a shadow connection of the room) and the
//! edge side (frames coming down for this node's sessions).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chalktalk_protocol::{ClientMsg, ErrorCode, StrokeIn};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use tokio::sync::mpsc;

use super::{Down, Relay, RelayMsg, SCOPE, Up};
use crate::directory::Directory;
use crate::handle::SendFail;
use crate::outbound::{Out, Outbound, OutboundRx, OutboundStats, SessionId, err_frame};
use crate::room::{LiveInput, RoomMsg};
use crate::supervisor::Lookup;

/// Frames (for all sessions of one node) shipped down in one message at
/// most.
const MAX_DOWN_BATCH: usize = 1024;
/// How often shadows of nodes that went down are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct Endpoint;

pub struct EndpointArgs {
    pub relay: Arc<Relay>,
    pub dir: Weak<Directory>,
    pub stats: Arc<OutboundStats>,
}

/// (edge node, its session, room) → the shadow connection in that room.
type Shadows = HashMap<(String, SessionId, String), Outbound>;

/// What a shadow's queue hands to its node's downlink.
type Item = (SessionId, Out);

pub struct EndpointState {
    relay: Arc<Relay>,
    dir: Weak<Directory>,
    stats: Arc<OutboundStats>,
    shadows: Shadows,
    /// Per edge node: the channel its shadows' frames go down through.
    downlinks: HashMap<String, mpsc::UnboundedSender<Item>>,
}

impl Actor for Endpoint {
    type Msg = RelayMsg;
    type State = EndpointState;
    type Arguments = EndpointArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RelayMsg>,
        args: EndpointArgs,
    ) -> Result<EndpointState, ActorProcessingErr> {
        ractor::pg::join_scoped(
            SCOPE.to_string(),
            args.relay.node().to_string(),
            vec![myself.get_cell()],
        );
        myself.send_interval(SWEEP_EVERY, || RelayMsg::Sweep);
        Ok(EndpointState {
            relay: args.relay,
            dir: args.dir,
            stats: args.stats,
            shadows: HashMap::new(),
            downlinks: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<RelayMsg>,
        msg: RelayMsg,
        st: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RelayMsg::Up(up) => st.up(*up).await,
            RelayMsg::Gone {
                from,
                session,
                room,
            } => {
                if let Some(out) = st.shadows.remove(&(from, session, room.clone())) {
                    st.disconnected(&room, &out).await;
                }
            }
            RelayMsg::Down(down) => st.relay.deliver(down),
            RelayMsg::Sweep => st.sweep().await,
        }
        Ok(())
    }
}

/// The room a relayed request is for (`None`: not a room request).
fn room_of(m: &ClientMsg) -> Option<&str> {
    match m {
        ClientMsg::JoinRoom { room, .. }
        | ClientMsg::LeaveRoom { room }
        | ClientMsg::SnapshotPage { room, .. }
        | ClientMsg::Op { room, .. }
        | ClientMsg::Points(StrokeIn { room, .. })
        | ClientMsg::Pointer { room, .. }
        | ClientMsg::Activity { room, .. } => Some(room),
        _ => None,
    }
}

impl EndpointState {
    fn shadow(&mut self, up: &Up, room: &str) -> Outbound {
        let key = (up.from.clone(), up.session, room.to_string());
        if let Some(o) = self.shadows.get(&key) {
            return o.clone();
        }
        let (out, rx) = Outbound::new(
            self.relay.next_shadow_id(),
            up.user.clone(),
            up.device.clone(),
            self.stats.clone(),
        );
        let tx = match self.downlinks.get(&up.from) {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(downlink(self.relay.clone(), up.from.clone(), rx));
                self.downlinks.insert(up.from.clone(), tx.clone());
                tx
            }
        };
        tokio::spawn(mover(rx, up.session, tx));
        self.shadows.insert(key, out.clone());
        out
    }

    async fn up(&mut self, up: Up) {
        let Some(room) = room_of(&up.msg).map(str::to_string) else {
            tracing::warn!(from = %up.from, "relay: a request that is not for a room; dropped");
            return;
        };
        let out = self.shadow(&up, &room);
        let req = up.req;
        let fail = |out: &Outbound, code: ErrorCode, msg: String| {
            if req != 0 {
                out.control(err_frame(req, code, msg));
            }
        };
        let Some(dir) = self.dir.upgrade() else {
            return;
        };
        let handle = match dir.local_room(&room).await {
            Ok(h) => h,
            Err(e) => {
                let (code, msg) = match e {
                    Lookup::NotFound => (ErrorCode::NotFound, format!("no room {room}")),
                    Lookup::Unavailable(why) => (
                        ErrorCode::Unavailable,
                        format!("room {room} unavailable: {why}"),
                    ),
                    Lookup::Elsewhere(owner) => (
                        ErrorCode::Unavailable,
                        format!("room {room} moved to node {owner}; join it again"),
                    ),
                };
                fail(&out, code, msg);
                if matches!(up.msg, ClientMsg::JoinRoom { .. }) {
                    self.shadows.remove(&(up.from, up.session, room));
                }
                return;
            }
        };
        let leaving = matches!(up.msg, ClientMsg::LeaveRoom { .. });
        let session = out.session;
        let msg = match up.msg {
            ClientMsg::JoinRoom { since, .. } => RoomMsg::Join {
                out: out.clone(),
                req,
                since,
            },
            ClientMsg::LeaveRoom { .. } => RoomMsg::Leave {
                out: out.clone(),
                req,
            },
            ClientMsg::SnapshotPage { seq, page, .. } => RoomMsg::Page {
                out: out.clone(),
                req,
                seq,
                page,
            },
            ClientMsg::Op { op_id, op, .. } => match up.role {
                Some(role) => RoomMsg::Op {
                    out: out.clone(),
                    role,
                    req,
                    op_id,
                    op,
                },
                None => return fail(&out, ErrorCode::Invalid, "an op without a role".into()),
            },
            ClientMsg::Points(StrokeIn { live, .. }) => RoomMsg::Live {
                session,
                input: LiveInput::Points(live),
            },
            ClientMsg::Pointer { at, .. } => RoomMsg::Live {
                session,
                input: LiveInput::Pointer(at),
            },
            ClientMsg::Activity { activity, .. } => RoomMsg::Live {
                session,
                input: LiveInput::Activity(activity),
            },
            _ => return,
        };
        let ephemeral = matches!(msg, RoomMsg::Live { .. });
        match handle.send(msg, ephemeral) {
            Ok(()) => {}
            Err((SendFail::Overloaded, _)) => fail(
                &out,
                ErrorCode::Overloaded,
                "the room is busy; retry with the same id".into(),
            ),
            Err((SendFail::Stopped, _)) => fail(
                &out,
                ErrorCode::Unavailable,
                format!("room {room} restarted; retry"),
            ),
        }
        if leaving {
            self.shadows.remove(&(up.from, up.session, room));
        }
    }

    async fn disconnected(&self, room: &str, out: &Outbound) {
        let Some(dir) = self.dir.upgrade() else {
            return;
        };
        if let Ok(h) = dir.local_room(room).await {
            let _ = h.actor.cast(RoomMsg::Disconnected {
                session: out.session,
            });
        }
    }

    /// Drops the shadows of nodes that are no longer up: their members'
    /// presence grace starts, as for a dropped connection.
    async fn sweep(&mut self) {
        let dead: Vec<_> = self
            .shadows
            .keys()
            .filter(|(node, _, _)| !self.relay.is_live(node))
            .cloned()
            .collect();
        for key in dead {
            if let Some(out) = self.shadows.remove(&key) {
                tracing::info!(node = %key.0, room = %key.2, "relay: member of a node that is down dropped");
                self.disconnected(&key.2, &out).await;
            }
        }
    }
}

/// Moves what a shadow's room queued (under the member's own policy) to
/// its node's downlink, in order, until the shadow is dropped.
async fn mover(mut rx: OutboundRx, session: SessionId, tx: mpsc::UnboundedSender<Item>) {
    while let Some(o) = rx.recv().await {
        let close = matches!(o, Out::Close(..));
        if tx.send((session, o)).is_err() || close {
            break;
        }
    }
}

/// Ships what the shadows of one edge node queued, batch after batch,
/// each frame once however many of that node's sessions it is for.
async fn downlink(relay: Arc<Relay>, node: String, mut rx: mpsc::UnboundedReceiver<Item>) {
    let mut buf = Vec::with_capacity(64);
    while rx.recv_many(&mut buf, MAX_DOWN_BATCH).await > 0 {
        let down = group(std::mem::take(&mut buf));
        match relay.peer(&node) {
            Some(peer) => {
                if peer.cast(RelayMsg::Down(down)).is_err() {
                    tracing::debug!(%node, "relay: frames for a node that went away dropped");
                }
            }
            None => tracing::debug!(%node, "relay: frames for a node that went away dropped"),
        }
    }
}

/// Groups frames by identity (the room encodes a broadcast once and
/// queues the same bytes to every member), keeping each session's order: a
/// session joins an earlier group only if it has nothing in a later one.
pub(crate) fn group(items: Vec<Item>) -> Down {
    let mut d = Down::default();
    let mut index: HashMap<(usize, usize), usize> = HashMap::new();
    let mut last: HashMap<SessionId, usize> = HashMap::new();
    for (s, o) in items {
        match o {
            Out::Frame(b) => {
                let key = (b.as_ptr() as usize, b.len());
                let after = last.get(&s).copied();
                match index.get(&key).copied() {
                    Some(g) if after.is_none_or(|l| l < g) => {
                        d.groups[g].1.push(s);
                        last.insert(s, g);
                    }
                    _ => {
                        d.groups.push((b, vec![s]));
                        let g = d.groups.len() - 1;
                        index.insert(key, g);
                        last.insert(s, g);
                    }
                }
            }
            Out::Close(code, reason) => d.closes.push((s, code, reason)),
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_broadcast_crosses_once_and_each_session_keeps_its_order() {
        let x = Bytes::from_static(b"broadcast");
        let y = Bytes::from(b"only-for-2".to_vec());
        let z = Bytes::from(b"after".to_vec());
        let items = vec![
            (1, Out::Frame(x.clone())),
            (2, Out::Frame(y.clone())),
            (2, Out::Frame(x.clone())),
            (3, Out::Frame(x.clone())),
            (1, Out::Frame(z.clone())),
            (3, Out::Close(4008, "slow".into())),
        ];
        let d = group(items);
        // 2 got y before x: x crosses a second time, after y (and 3
        // shares that later copy); 4 frames cross for 6 deliveries.
        assert_eq!(
            d.groups,
            vec![
                (x.clone(), vec![1]),
                (y, vec![2]),
                (x, vec![2, 3]),
                (z, vec![1]),
            ]
        );
        assert_eq!(d.closes, vec![(3, 4008, "slow".to_string())]);
        // Replayed per session, the order is what each queued.
        let per = |s: u64| -> Vec<&[u8]> {
            d.groups
                .iter()
                .filter(|(_, ss)| ss.contains(&s))
                .map(|(f, _)| f.as_ref())
                .collect()
        };
        assert_eq!(per(1), vec![&b"broadcast"[..], &b"after"[..]]);
        assert_eq!(per(2), vec![&b"only-for-2"[..], &b"broadcast"[..]]);
        assert_eq!(per(3), vec![&b"broadcast"[..]]);
    }
}
