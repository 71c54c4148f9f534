//! [`summarize`]: counts what a store holds and, given a second store,
//! checks that it holds each of those things too (the verification of
//! `chalktalk store copy`).

use chalktalk_actors::store::MembershipKind;

use super::run::{CopyError, intern};
use super::{Backend, Listing, Target};

const PAGE: usize = 500;

/// How much of each kind a store holds. Events, messages and inbox events
/// are counted by their heads (their seqs are gap-free from 1).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub rooms: u64,
    pub room_events: u64,
    pub snapshots: u64,
    pub threads: u64,
    pub messages: u64,
    pub cursors: u64,
    pub inboxes: u64,
    pub inbox_events: u64,
    pub memberships: u64,
    pub kv_rows: u64,
    pub assets: u64,
    pub jobs: u64,
    pub programs: u64,
    /// The items of all programs.
    pub program_items: u64,
    pub entitlements: u64,
    /// Items marked done.
    pub progress: u64,
    pub orders: u64,
    pub receipts: u64,
    /// Receipts not applied yet.
    pub pending_receipts: u64,
    pub subscriptions: u64,
    pub plan_overrides: u64,
    pub audit_entries: u64,
    pub payout_accounts: u64,
}

pub(super) fn differs(what: String) -> CopyError {
    CopyError::Differs(format!("verification: the target differs at {what}"))
}

pub(super) fn read(what: String) -> impl FnOnce(chalktalk_actors::store::StoreError) -> CopyError {
    move |source| CopyError::Read { what, source }
}

/// Counts what `from` holds; with `check`, also verifies that `check`
/// holds the same of each (heads, snapshot seq, cursors, memberships,
/// key-value bytes, assets, jobs, and every program and billing record
/// whole) and answers `Differs` at the first gap.
pub async fn summarize(
    from: &dyn Backend,
    check: Option<&dyn Target>,
) -> Result<Summary, CopyError> {
    let mut s = Summary::default();
    for what in Listing::ALL {
        let mut after = String::new();
        loop {
            let ids = from
                .list(what, &after, PAGE)
                .await
                .map_err(read(format!("the list of {what:?}")))?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            for id in &ids {
                count(&mut s, from, check, what, id).await?;
            }
            after = last;
        }
    }
    let mut after = (String::new(), String::new());
    loop {
        let rows = from
            .kv_rows((&after.0, &after.1), PAGE)
            .await
            .map_err(read("key-value rows".into()))?;
        let Some((ns, key, _)) = rows.last() else {
            break;
        };
        let next = (ns.clone(), key.clone());
        for (ns, key, value) in &rows {
            s.kv_rows += 1;
            if let Some(to) = check {
                let theirs = to
                    .get(intern(ns), key)
                    .await
                    .map_err(read(format!("key {ns}/{key}")))?;
                if theirs.as_ref() != Some(value) {
                    return Err(differs(format!("key {ns}/{key}")));
                }
            }
        }
        after = next;
    }
    Ok(s)
}

async fn count(
    s: &mut Summary,
    from: &dyn Backend,
    check: Option<&dyn Target>,
    what: Listing,
    id: &str,
) -> Result<(), CopyError> {
    let r = |w: &str| read(format!("{w} {id}"));
    match what {
        Listing::Rooms => {
            s.rooms += 1;
            let head = from.room_head(id).await.map_err(r("room"))?;
            s.room_events += head;
            let snap = from
                .room_snapshot(id)
                .await
                .map_err(r("room"))?
                .map(|x| x.seq);
            s.snapshots += u64::from(snap.is_some());
            if let Some(to) = check
                && (to.room(id).await.map_err(r("room"))?
                    != from.room(id).await.map_err(r("room"))?
                    || to.room_head(id).await.map_err(r("room"))? != head
                    || to
                        .room_snapshot(id)
                        .await
                        .map_err(r("room"))?
                        .map(|x| x.seq)
                        != snap)
            {
                return Err(differs(format!("room {id}")));
            }
        }
        Listing::Threads => {
            s.threads += 1;
            let head = from.thread_head(id).await.map_err(r("thread"))?;
            s.messages += head;
            let mut cursors = from.cursors(id).await.map_err(r("thread"))?;
            s.cursors += cursors.len() as u64;
            if let Some(to) = check {
                let mut theirs = to.cursors(id).await.map_err(r("thread"))?;
                cursors.sort_by(|a, b| a.user.cmp(&b.user));
                theirs.sort_by(|a, b| a.user.cmp(&b.user));
                if to.thread(id).await.map_err(r("thread"))?
                    != from.thread(id).await.map_err(r("thread"))?
                    || to.thread_head(id).await.map_err(r("thread"))? != head
                    || theirs != cursors
                {
                    return Err(differs(format!("thread {id}")));
                }
            }
        }
        Listing::Inboxes => {
            s.inboxes += 1;
            let head = from.inbox_head(id).await.map_err(r("inbox"))?;
            s.inbox_events += head;
            if let Some(to) = check
                && to.inbox_head(id).await.map_err(r("inbox"))? != head
            {
                return Err(differs(format!("the inbox of {id}")));
            }
        }
        Listing::Members => {
            for kind in [MembershipKind::Room, MembershipKind::Thread] {
                let ours = from.memberships(id, kind).await.map_err(r("member"))?;
                s.memberships += ours.len() as u64;
                if let Some(to) = check
                    && to.memberships(id, kind).await.map_err(r("member"))? != ours
                {
                    return Err(differs(format!("the {kind:?} memberships of {id}")));
                }
            }
        }
        Listing::Assets => {
            s.assets += 1;
            if let Some(to) = check
                && to.asset(id).await.map_err(r("asset"))?
                    != from.asset(id).await.map_err(r("asset"))?
            {
                return Err(differs(format!("asset {id}")));
            }
        }
        Listing::Jobs => {
            s.jobs += 1;
            if let Some(to) = check
                && to.job(id).await.map_err(r("job"))? != from.job(id).await.map_err(r("job"))?
            {
                return Err(differs(format!("job {id}")));
            }
        }
        record => super::verify::count_record(s, from, check, record, id).await?,
    }
    Ok(())
}
