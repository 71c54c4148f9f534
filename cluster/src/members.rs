//! The failure detector and the membership view, as plain state driven by
//! the clock the caller passes in (so the tests drive time): a peer is
//! `up` while its heartbeats arrive, `suspect` after `suspect_after`
//! without one, `down` after `down_after`, and `refused` when it speaks
//! another cluster protocol. A frozen process that keeps its TCP
//! connection stops beating, so it goes suspect and then down like a dead
//! one. Every change of status is kept as an event (the last
//! [`EVENTS_KEPT`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::wire::{Beat, NodeInfo};

/// Membership events kept for the dashboard.
pub const EVENTS_KEPT: usize = 200;

/// A peer's status, as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Up,
    Suspect,
    Down,
    /// Speaks another cluster protocol version: never a member.
    Refused,
}

/// When silence turns into suspicion and then into death.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub suspect_after: Duration,
    pub down_after: Duration,
    /// Down peers are forgotten after this.
    pub forget_after: Duration,
}

/// One peer in the view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberView {
    pub node: String,
    pub http: String,
    /// Its relay link listener (`host:port`; empty: none).
    pub relay: String,
    pub app_version: String,
    pub protocol: u32,
    pub status: Status,
    pub started_ms: u64,
    pub heartbeat_age_ms: u64,
    /// Round trip of the latest heartbeat exchange, if measured.
    pub rtt_ms: Option<f64>,
    pub info: NodeInfo,
}

/// A change of a peer's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MembershipEvent {
    pub at_ms: u64,
    pub node: String,
    pub from: Option<Status>,
    pub to: Status,
    pub why: String,
}

struct Peer {
    beat: Beat,
    heard: Instant,
    status: Status,
    rtt_ms: Option<f64>,
}

/// Everything this node knows about the others.
pub struct Members {
    me: String,
    version: u32,
    timing: Timing,
    peers: HashMap<String, Peer>,
    events: VecDeque<MembershipEvent>,
}

impl Members {
    pub fn new(me: impl Into<String>, version: u32, timing: Timing) -> Members {
        Members {
            me: me.into(),
            version,
            timing,
            peers: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    fn record(&mut self, e: MembershipEvent) -> MembershipEvent {
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(e.clone());
        e
    }

    /// A heartbeat arrived at `now` (`now_ms` on the wall clock); the event
    /// if the sender's status changed.
    pub fn heard(&mut self, beat: Beat, now: Instant, now_ms: u64) -> Option<MembershipEvent> {
        if beat.node == self.me {
            return None;
        }
        let node = beat.node.clone();
        let to = if beat.version == self.version {
            Status::Up
        } else {
            Status::Refused
        };
        let rtt_ms = beat
            .echoes
            .iter()
            .find(|(n, _, _)| *n == self.me)
            .map(|(_, mine, held)| now_ms.saturating_sub(*mine).saturating_sub(*held) as f64);
        let (from, why) = match self.peers.get_mut(&node) {
            Some(p) => {
                let restarted = beat.started_ms != p.beat.started_ms;
                if !restarted && beat.seq <= p.beat.seq {
                    return None; // late or repeated
                }
                let from = p.status;
                p.heard = now;
                p.rtt_ms = rtt_ms.or(p.rtt_ms);
                p.status = to;
                p.beat = beat;
                if from == to && !restarted {
                    return None;
                }
                let why = if restarted {
                    "restarted (a new incarnation)".to_string()
                } else {
                    "heartbeats again".to_string()
                };
                (Some(from), why)
            }
            None => {
                self.peers.insert(
                    node.clone(),
                    Peer {
                        beat,
                        heard: now,
                        status: to,
                        rtt_ms,
                    },
                );
                (None, "first heartbeat".to_string())
            }
        };
        let why = if to == Status::Refused {
            let v = self.peers.get(&node).map_or(0, |p| p.beat.version);
            format!(
                "speaks cluster protocol {v}, this node speaks {}: refused",
                self.version
            )
        } else {
            why
        };
        Some(self.record(MembershipEvent {
            at_ms: now_ms,
            node,
            from,
            to,
            why,
        }))
    }

    /// Re-evaluates every peer by the age of its last heartbeat.
    pub fn tick(&mut self, now: Instant, now_ms: u64) -> Vec<MembershipEvent> {
        let mut changes = Vec::new();
        let mut forget = Vec::new();
        for (node, p) in &mut self.peers {
            if p.status == Status::Refused {
                continue;
            }
            let age = now.saturating_duration_since(p.heard);
            let to = if age >= self.timing.down_after {
                Status::Down
            } else if age >= self.timing.suspect_after {
                Status::Suspect
            } else {
                Status::Up
            };
            if age >= self.timing.forget_after {
                forget.push(node.clone());
            }
            if to != p.status {
                changes.push(MembershipEvent {
                    at_ms: now_ms,
                    node: node.clone(),
                    from: Some(p.status),
                    to,
                    why: format!("no heartbeat for {} ms", age.as_millis()),
                });
                p.status = to;
            }
        }
        for node in forget {
            self.peers.remove(&node);
        }
        changes.into_iter().map(|e| self.record(e)).collect()
    }

    /// What this node's next heartbeat echoes back to each peer.
    pub fn echoes(&self, now: Instant) -> Vec<(String, u64, u64)> {
        self.peers
            .iter()
            .filter(|(_, p)| p.status != Status::Refused)
            .map(|(n, p)| {
                let held = now.saturating_duration_since(p.heard).as_millis() as u64;
                (n.clone(), p.beat.sent_ms, held)
            })
            .collect()
    }

    /// Every known peer, by name.
    pub fn view(&self, now: Instant) -> Vec<MemberView> {
        let mut out: Vec<MemberView> = self
            .peers
            .iter()
            .map(|(n, p)| MemberView {
                node: n.clone(),
                http: p.beat.http.clone(),
                relay: p.beat.relay.clone(),
                app_version: p.beat.app_version.clone(),
                protocol: p.beat.version,
                status: p.status,
                started_ms: p.beat.started_ms,
                heartbeat_age_ms: now.saturating_duration_since(p.heard).as_millis() as u64,
                rtt_ms: p.rtt_ms,
                info: p.beat.info.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }

    /// Peers that are up, by name (for placement).
    pub fn up(&self) -> Vec<String> {
        let mut up: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.status == Status::Up)
            .map(|(n, _)| n.clone())
            .collect();
        up.sort();
        up
    }

    /// The relay link address of `node` while it is up.
    pub fn relay_addr(&self, node: &str) -> Option<String> {
        self.peers
            .get(node)
            .filter(|p| p.status == Status::Up && !p.beat.relay.is_empty())
            .map(|p| p.beat.relay.clone())
    }

    /// The latest membership events, oldest first.
    pub fn events(&self) -> Vec<MembershipEvent> {
        self.events.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PROTOCOL_VERSION;

    fn beat(node: &str, seq: u64, started_ms: u64, version: u32) -> Beat {
        Beat {
            version,
            node: node.into(),
            http: format!("{node}:80"),
            relay: format!("{node}:81"),
            app_version: "t".into(),
            started_ms,
            seq,
            sent_ms: 1_000 + seq,
            info: NodeInfo::default(),
            echoes: vec![],
        }
    }

    fn timing() -> Timing {
        Timing {
            suspect_after: Duration::from_millis(1_500),
            down_after: Duration::from_millis(3_000),
            forget_after: Duration::from_secs(600),
        }
    }

    #[test]
    fn silence_makes_suspect_then_down_and_a_beat_brings_back() {
        let t0 = Instant::now();
        let mut m = Members::new("a", PROTOCOL_VERSION, timing());
        let e = m.heard(beat("b", 1, 7, PROTOCOL_VERSION), t0, 0).unwrap();
        assert_eq!((e.from, e.to), (None, Status::Up));
        assert!(m.tick(t0 + Duration::from_millis(1_400), 0).is_empty());
        let e = m.tick(t0 + Duration::from_millis(1_600), 0);
        assert_eq!(e[0].to, Status::Suspect);
        let e = m.tick(t0 + Duration::from_millis(3_100), 0);
        assert_eq!((e[0].from, e[0].to), (Some(Status::Suspect), Status::Down));
        assert!(m.up().is_empty());
        // A late (older) beat changes nothing; a newer one does.
        assert!(m.heard(beat("b", 1, 7, PROTOCOL_VERSION), t0, 0).is_none());
        let t1 = t0 + Duration::from_millis(3_200);
        let e = m.heard(beat("b", 2, 7, PROTOCOL_VERSION), t1, 0).unwrap();
        assert_eq!((e.from, e.to), (Some(Status::Down), Status::Up));
        assert_eq!(m.up(), ["b"]);
        assert_eq!(m.events().len(), 4);
    }

    #[test]
    fn a_restart_is_an_event_and_resets_the_sequence() {
        let t0 = Instant::now();
        let mut m = Members::new("a", PROTOCOL_VERSION, timing());
        m.heard(beat("b", 50, 7, PROTOCOL_VERSION), t0, 0);
        let e = m.heard(beat("b", 1, 8, PROTOCOL_VERSION), t0, 0).unwrap();
        assert!(e.why.contains("restarted"), "{e:?}");
        assert!(m.heard(beat("b", 2, 8, PROTOCOL_VERSION), t0, 0).is_none());
    }

    #[test]
    fn another_protocol_is_refused_and_never_up() {
        let t0 = Instant::now();
        let mut m = Members::new("a", PROTOCOL_VERSION, timing());
        let e = m
            .heard(beat("old", 1, 7, PROTOCOL_VERSION + 1), t0, 0)
            .unwrap();
        assert_eq!(e.to, Status::Refused);
        assert!(e.why.contains("refused"), "{e:?}");
        assert!(m.up().is_empty());
        assert!(m.tick(t0 + Duration::from_secs(5), 0).is_empty());
        assert!(m.echoes(t0).is_empty());
    }

    #[test]
    fn round_trip_from_the_echo_of_my_own_beat() {
        let t0 = Instant::now();
        let mut m = Members::new("a", PROTOCOL_VERSION, timing());
        let mut b = beat("b", 1, 7, PROTOCOL_VERSION);
        // b got my beat sent at 10_000 ms and held it 3 ms before replying.
        b.echoes = vec![("a".into(), 10_000, 3)];
        m.heard(b, t0, 10_010);
        assert_eq!(m.view(t0)[0].rtt_ms, Some(7.0));
        // And my echo tells b when its beat arrived.
        let echoes = m.echoes(t0 + Duration::from_millis(2));
        assert_eq!(echoes, vec![("b".to_string(), 1_001, 2)]);
    }

    #[test]
    fn my_own_beats_are_ignored() {
        let mut m = Members::new("a", PROTOCOL_VERSION, timing());
        assert!(
            m.heard(beat("a", 1, 7, PROTOCOL_VERSION), Instant::now(), 0)
                .is_none()
        );
        assert!(m.view(Instant::now()).is_empty());
    }
}
