//! What nodes say to each other: one heartbeat message, MessagePack in a
//! ractor_cluster cast (the `Message` impl below), with the cluster
//! protocol version a node checks before believing anything else in it.

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use serde::{Deserialize, Serialize};

/// The cluster protocol this binary speaks. A node that hears another
/// version refuses that peer (and says so in its log).
///
/// 2: a relay's `Down` message carries each frame's class (ephemeral or
/// durable), so the edge node queues it under the right policy.
/// 3: frames go down on relay links of their own (`relay_link.rs`), whose
/// address each node gives in its beats (`Beat::relay`).
pub const PROTOCOL_VERSION: u32 = 3;

/// What a node reports about itself in every heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub connections: u64,
    pub rooms: u64,
    pub threads: u64,
    /// Users' inboxes this node writes (added after version 3's first
    /// beats: absent reads as 0).
    #[serde(default)]
    pub inboxes: u64,
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
    pub encoder_queued: u64,
}

/// A heartbeat: who, which protocol, and the echoes that let every
/// receiver measure its round-trip time to the sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beat {
    pub version: u32,
    pub node: String,
    /// The node's HTTP address (its dashboard and API).
    pub http: String,
    /// Where the node's relay link listener is (`host:port`; empty: none).
    #[serde(default)]
    pub relay: String,
    pub app_version: String,
    pub started_ms: u64,
    /// Increases by one per heartbeat of this incarnation.
    pub seq: u64,
    /// The sender's clock when sent.
    pub sent_ms: u64,
    pub info: NodeInfo,
    /// For each peer heard from: its name, the `sent_ms` of its latest
    /// beat, and how long ago (ms) that beat arrived here.
    pub echoes: Vec<(String, u64, u64)>,
}

/// The member actor's messages.
#[derive(Debug)]
pub enum ClusterMsg {
    /// A heartbeat from another node (or, locally, one to send).
    Beat(Box<Beat>),
}

const BEAT: &str = "beat";

impl ractor::Message for ClusterMsg {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        match self {
            ClusterMsg::Beat(b) => Ok(SerializedMessage::Cast {
                variant: BEAT.into(),
                args: rmp_serde::to_vec_named(&*b).map_err(|_| BoxedDowncastErr)?,
                metadata: None,
            }),
        }
    }

    fn deserialize(m: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        match m {
            SerializedMessage::Cast { variant, args, .. } if variant == BEAT => {
                // A beat of another version may not decode: accept what
                // does, so the version check can refuse it by name.
                rmp_serde::from_slice::<Beat>(&args)
                    .map(|b| ClusterMsg::Beat(Box::new(b)))
                    .map_err(|_| BoxedDowncastErr)
            }
            _ => Err(BoxedDowncastErr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::Message;

    #[test]
    fn a_beat_survives_the_wire() {
        let b = Beat {
            version: PROTOCOL_VERSION,
            node: "n1".into(),
            http: "127.0.0.1:7700".into(),
            relay: "127.0.0.1:7701".into(),
            app_version: "0.1.0".into(),
            started_ms: 5,
            seq: 9,
            sent_ms: 1_000,
            info: NodeInfo {
                connections: 3,
                ..NodeInfo::default()
            },
            echoes: vec![("n2".into(), 990, 4)],
        };
        let wire = ClusterMsg::Beat(Box::new(b.clone())).serialize().unwrap();
        let ClusterMsg::Beat(back) = ClusterMsg::deserialize(wire).unwrap();
        assert_eq!(*back, b);
        let junk = SerializedMessage::Cast {
            variant: BEAT.into(),
            args: vec![0xc1],
            metadata: None,
        };
        assert!(ClusterMsg::deserialize(junk).is_err());
    }
}
