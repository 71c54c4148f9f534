//! Small rules every store adapter shares: the seqs of one append must be
//! consecutive, the number each engine stores for a membership kind, and
//! how one member is added to or removed from a thread's member list.

use chalktalk_actors::store::{MembershipKind, StoreError};

/// The stored number of a membership kind (0 room, 1 thread; the same in
/// every engine's schema).
pub(crate) fn membership_code(kind: MembershipKind) -> u8 {
    match kind {
        MembershipKind::Room => 0,
        MembershipKind::Thread => 1,
    }
}

/// Adds (`member`) or removes `user` in `members`, which stay sorted and
/// deduplicated; false when nothing changed.
pub(crate) fn set_member(members: &mut Vec<String>, user: &str, member: bool) -> bool {
    let had = members.iter().any(|m| m == user);
    if had == member {
        return false;
    }
    if member {
        members.push(user.to_owned());
    } else {
        members.retain(|m| m != user);
    }
    members.sort();
    members.dedup();
    true
}

/// Checks that `seqs` are consecutive; each adapter checks the first one
/// against its stored head.
pub(crate) fn consecutive(
    what: &str,
    id: &str,
    seqs: impl Iterator<Item = u64>,
) -> Result<(), StoreError> {
    let mut prev: Option<u64> = None;
    for seq in seqs {
        if let Some(p) = prev
            && p.checked_add(1) != Some(seq)
        {
            return Err(StoreError::Conflict(format!(
                "{what} {id}: seq {seq} does not follow {p}"
            )));
        }
        prev = Some(seq);
    }
    Ok(())
}
