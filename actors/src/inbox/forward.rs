//! Notices this node forwarded to another node (the owner of the user's
//! inbox), kept until they come back in that node's broadcast of what it
//! stored. A notice whose owner went down before that is handed to
//! whoever owns the inbox now, so a notice is never lost with its owner
//! (at least once: an owner that stored it and died before its broadcast
//! got out makes it arrive twice).

use std::time::{Duration, Instant};

use chalktalk_protocol::{Notice, UserId};

/// How often the inbox looks for notices to send again.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// A notice whose owner is still up but never stored it (as far as this
/// node heard) is sent again after this long.
const RESEND_AFTER: Duration = Duration::from_secs(30);
/// Sends of one notice before it is given up (logged).
const MAX_SENDS: u32 = 4;

struct Entry {
    user: UserId,
    notice: Notice,
    owner: String,
    at: Instant,
    sends: u32,
}

#[derive(Default)]
pub(super) struct Forwarded {
    entries: Vec<Entry>,
}

impl Forwarded {
    /// Remembers a notice sent to `owner` (`sends`: how many times so far).
    pub(super) fn add(&mut self, user: UserId, notice: Notice, owner: String, sends: u32) {
        self.entries.push(Entry {
            user,
            notice,
            owner,
            at: Instant::now(),
            sends,
        });
    }

    /// A node stored `notice` for `user`: it is no longer waited for.
    pub(super) fn stored(&mut self, user: &str, notice: &Notice) {
        if let Some(i) = self
            .entries
            .iter()
            .position(|e| e.user == user && e.notice == *notice)
        {
            self.entries.remove(i);
        }
    }

    /// Takes the notices to send again: their owner is down (`live`
    /// says), or it has not stored them for [`RESEND_AFTER`]. Each comes
    /// with the sends so far; past [`MAX_SENDS`] a notice is given up.
    pub(super) fn due(
        &mut self,
        live: impl Fn(&str) -> bool,
        now: Instant,
    ) -> Vec<(UserId, Notice, u32)> {
        let mut out = Vec::new();
        // In the order they were forwarded: a user's notices keep theirs.
        let (due, keep): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| !live(&e.owner) || now.duration_since(e.at) >= RESEND_AFTER);
        self.entries = keep;
        for e in due {
            if e.sends >= MAX_SENDS {
                tracing::warn!(user = %e.user, owner = %e.owner, sends = e.sends, "inbox notice never stored by its owner; given up");
            } else {
                out.push((e.user, e.notice, e.sends));
            }
        }
        out
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(seq: u64) -> Notice {
        Notice::NewMessage {
            thread: "t".into(),
            seq,
            from: "coach".into(),
            preview: "hi".into(),
        }
    }

    #[test]
    fn a_notice_is_sent_again_only_when_its_owner_went_down_or_never_stored_it() {
        let mut f = Forwarded::default();
        let t0 = Instant::now();
        f.add("a".into(), notice(1), "n3".into(), 1);
        f.add("a".into(), notice(2), "n3".into(), 1);
        f.add("b".into(), notice(1), "n2".into(), 1);
        f.add("a".into(), notice(4), "n3".into(), 1);
        // n3 stored the first one and broadcast it.
        f.stored("a", &notice(1));
        assert_eq!(f.len(), 3);
        // Everyone up, nothing old: nothing to send.
        assert!(f.due(|_| true, t0).is_empty());
        // n3 went down: its notice goes again, n2's stays.
        let again = f.due(|n| n != "n3", t0);
        let again: Vec<_> = again.iter().map(|(u, n, s)| (u.as_str(), n, *s)).collect();
        assert_eq!(
            again,
            vec![("a", &notice(2), 1), ("a", &notice(4), 1)],
            "in order"
        );
        assert_eq!(f.len(), 1);
        // n2 is up but silent for too long: sent again.
        let later = t0 + RESEND_AFTER + Duration::from_secs(1);
        assert_eq!(f.due(|_| true, later).len(), 1);
        assert_eq!(f.len(), 0);
        // A notice sent too often is given up.
        f.add("c".into(), notice(3), "n2".into(), MAX_SENDS);
        assert!(f.due(|_| false, t0).is_empty());
        assert_eq!(f.len(), 0);
    }
}
