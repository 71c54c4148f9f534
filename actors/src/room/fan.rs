//! Fanning one encoded frame out to a room's members: each local member's
//! queue in turn, the members on another node once per node (their
//! shadows are linked to the node's relay link, `relay/link.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::Member;
use crate::outbound::{Durable, SessionId};
use crate::relay::Class;
use crate::relay::link::Fan;

/// Hands `frame` to every member `to` accepts. Durable frames: the
/// members it could not reach (lagging, gone; for a remote member, its
/// node's link over its bound or gone) are appended to `refused`.
/// Ephemeral frames are dropped for whoever cannot take them.
pub(super) fn fan_out(
    members: &HashMap<SessionId, Member>,
    frame: &Bytes,
    class: Class,
    to: impl Fn(SessionId, &Member) -> bool,
    refused: &mut Vec<SessionId>,
) {
    let mut remote = Fan::default();
    for (sid, m) in members {
        if !to(*sid, m) {
            continue;
        }
        if let Some((link, there)) = m.out.link() {
            remote.add(link, *there);
            continue;
        }
        match class {
            Class::Ephemeral => {
                m.out.ephemeral(frame);
            }
            Class::Durable => match m.out.durable(frame) {
                Durable::Sent => {}
                Durable::Lagging | Durable::Gone => refused.push(*sid),
            },
        }
    }
    let full = remote.send(frame, class);
    // Rare: a node's link over its bound or gone. Ephemeral frames are
    // just dropped; the members behind a durable refusal lag.
    if class == Class::Durable && !full.is_empty() {
        for (sid, m) in members {
            if let Some((link, _)) = m.out.link()
                && full.iter().any(|f| Arc::ptr_eq(f, link))
                && to(*sid, m)
            {
                refused.push(*sid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chalktalk_protocol::Activity;

    use super::*;
    use crate::outbound::{Outbound, OutboundStats};
    use crate::relay::link::{Item, Link};

    fn member(out: Outbound, skip_until: u64) -> Member {
        Member {
            out,
            activity: Activity::Watching,
            skip_until,
            pages: None,
        }
    }

    #[tokio::test]
    async fn a_frame_goes_to_each_node_once_with_its_members() {
        let stats = Arc::new(OutboundStats::default());
        let (n2, mut rx2) = Link::new("n2".into());
        let (n3, mut rx3) = Link::new("n3".into());
        let mut members = HashMap::new();
        let (local, mut local_rx) = Outbound::new(1, "coach".into(), "d".into(), stats.clone());
        members.insert(1, member(local, 0));
        // Shadows 100.. on this node; 7, 8, 9 and 5 are the sessions on
        // the edge nodes. Shadow 103 joined with a snapshot at seq 10.
        for (shadow, link, there, skip) in [
            (100, &n2, 7, 0),
            (101, &n2, 8, 0),
            (102, &n3, 5, 0),
            (103, &n2, 9, 10),
        ] {
            let out = Outbound::linked(
                shadow,
                format!("u{shadow}"),
                "d".into(),
                stats.clone(),
                link.clone(),
                there,
            );
            members.insert(shadow, member(out, skip));
        }
        let frame = Bytes::from_static(b"event 5");
        let mut refused = Vec::new();
        fan_out(
            &members,
            &frame,
            Class::Durable,
            |_, m| 5 > m.skip_until,
            &mut refused,
        );
        assert!(refused.is_empty());
        // The local member has it in its queue.
        assert!(matches!(local_rx.try_recv(), Some(crate::outbound::Out::Frame(f)) if f == frame));
        // Each node got it once, for its members past their snapshot.
        let mut got = Vec::new();
        assert_eq!(rx2.recv_many(&mut got, 16).await, 1);
        let Item::Group(f, Class::Durable, mut ss) = got.remove(0) else {
            panic!("a durable group expected");
        };
        ss.sort_unstable();
        assert_eq!((f, ss), (frame.clone(), vec![7, 8]));
        assert_eq!(rx3.recv_many(&mut got, 16).await, 1);
        assert!(
            matches!(&got[0], Item::Group(f, Class::Durable, ss) if *f == frame && *ss == vec![5])
        );
    }

    #[tokio::test]
    async fn a_full_link_drops_live_input_and_lags_its_members() {
        let stats = Arc::new(OutboundStats::default());
        let (n2, _rx2) = Link::new("n2".into());
        let mut members = HashMap::new();
        let out = Outbound::linked(100, "a".into(), "d".into(), stats.clone(), n2.clone(), 7);
        members.insert(100, member(out, 0));
        let frame = Bytes::from_static(b"x");
        // Nothing drains the link: fill it past the ephemeral bound.
        let mut sent = 0;
        while n2.group(&frame, Class::Ephemeral, vec![7]) == crate::relay::link::Handed::Sent {
            sent += 1;
        }
        assert_eq!(sent, crate::relay::link::EPHEMERAL_LIMIT);
        let mut refused = Vec::new();
        fan_out(
            &members,
            &frame,
            Class::Ephemeral,
            |_, _| true,
            &mut refused,
        );
        assert!(refused.is_empty(), "live input is dropped, nobody resyncs");
        // Durable frames still fit until their own bound.
        while n2.group(&frame, Class::Durable, vec![7]) == crate::relay::link::Handed::Sent {}
        fan_out(&members, &frame, Class::Durable, |_, _| true, &mut refused);
        assert_eq!(refused, vec![100]);
        // A reply still goes.
        assert_eq!(
            n2.control(frame.clone(), 7),
            crate::relay::link::Handed::Sent
        );
    }
}
