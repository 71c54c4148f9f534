//! chalktalk-cluster: several nodes as one deployment. What is here now is
//! membership: nodes connect over ractor_cluster (a cookie, transitive
//! connections), find each other through a seed list, and send
//! heartbeats that carry the cluster protocol version and what each node
//! reports about itself. Above ractor_cluster, which has none of them:
//! a failure detector with suspicion (`members.rs`), re-dialing of seeds
//! with backoff and the version check (`node.rs`), and the wire format
//! (`wire.rs`); and the relay links on which an owner node ships frames
//! to the sessions of the others (`relay_link.rs`: listener, cookie
//! handshake, dialer). Placement, leases and routing live in the actors
//! crate (docs/ARCHITECTURE.md, "Cluster").

pub mod members;
pub mod node;
pub mod relay_link;
pub mod tls;
pub mod wire;

pub use members::{MemberView, MembershipEvent, Status, Timing};
pub use node::{Cluster, ClusterConfig, ClusterError, ClusterView, InfoFn};
pub use tls::{Tls, TlsError, TlsFiles};
pub use wire::{NodeInfo, PROTOCOL_VERSION};
