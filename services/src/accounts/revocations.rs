//! Closing the open WebSockets of revoked sign-in sessions: the gateway's
//! [`SidIndex`] of connections by session id, and [`spawn_closer`], which
//! listens to the revocation list (`chalktalk_adapters::revocations`) and
//! closes each revoked session's connections with 4001.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chalktalk_actors::{Outbound, SessionId};
use chalktalk_adapters::revocations::Revocations;
use chalktalk_protocol::CloseCode;
use tokio::sync::broadcast;

/// The gateway's index of open WebSocket connections by sign-in session.
#[derive(Clone, Default, Debug)]
pub struct SidIndex(Arc<Mutex<HashMap<String, Vec<SessionId>>>>);

impl SidIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<SessionId>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, sid: &str, conn: SessionId) {
        self.lock().entry(sid.to_string()).or_default().push(conn);
    }

    pub fn remove(&self, sid: &str, conn: SessionId) {
        let mut m = self.lock();
        if let Some(v) = m.get_mut(sid) {
            v.retain(|c| *c != conn);
            if v.is_empty() {
                m.remove(sid);
            }
        }
    }

    /// The connections of `sid` (removed from the index).
    pub fn take(&self, sid: &str) -> Vec<SessionId> {
        self.lock().remove(sid).unwrap_or_default()
    }
}

/// Close reason sent with 4001 to connections of a revoked session.
pub const REVOKED_REASON: &str = "session revoked";

/// Closes (4001) the open connections of every session revoked from now
/// on. Ends when the revocation list is dropped.
pub fn spawn_closer(
    revocations: &dyn Revocations,
    connections: Arc<Mutex<HashMap<SessionId, Outbound>>>,
    index: SidIndex,
) -> tokio::task::JoinHandle<()> {
    let mut rx = revocations.subscribe();
    tokio::spawn(async move {
        loop {
            let sid = match rx.recv().await {
                Ok(sid) => sid,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(n, "revocation closer lagged");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let conns = index.take(&sid);
            let outs: Vec<Outbound> = {
                let map = connections.lock().unwrap_or_else(|e| e.into_inner());
                conns.iter().filter_map(|c| map.get(c).cloned()).collect()
            };
            for out in outs {
                tracing::info!(%sid, session = out.session, "closing connection of revoked session");
                out.kill(CloseCode::UNAUTHORIZED, REVOKED_REASON);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_index() {
        let i = SidIndex::default();
        i.insert("a", 1);
        i.insert("a", 2);
        i.remove("a", 1);
        assert_eq!(i.take("a"), vec![2]);
        assert!(i.take("a").is_empty());
    }
}
