//! [`copy`]: everything of one store into another, through the target's
//! ports, page by page, continuing where an earlier run stopped.

use std::collections::HashSet;
use std::sync::Mutex;

use chalktalk_actors::store::{EncodedEvent, MembershipKind, StoreError};

use super::{Backend, Listing, Target};
use crate::kv::KvBatch;

/// Ids and rows read per page.
const PAGE: usize = 500;
/// Key-value rows written per batch.
const KV_BATCH: usize = 200;

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading {what} from the source: {source}")]
    Read {
        what: String,
        #[source]
        source: StoreError,
    },
    #[error("writing {what} to the target: {source}")]
    Write {
        what: String,
        #[source]
        source: StoreError,
    },
    /// The target holds something else under the same id, or lacks what
    /// was copied (found by the verification).
    #[error("{0}")]
    Differs(String),
}

pub(super) fn read(what: impl Into<String>) -> impl FnOnce(StoreError) -> CopyError {
    let what = what.into();
    move |source| CopyError::Read { what, source }
}

pub(super) fn write(what: impl Into<String>) -> impl FnOnce(StoreError) -> CopyError {
    let what = what.into();
    move |source| CopyError::Write { what, source }
}

/// Called after each page: what is being copied and how many so far.
pub type Progress<'a> = &'a (dyn Fn(&str, u64) + Sync);

/// Copies everything `from` holds into `to`.
pub async fn copy(
    from: &dyn Backend,
    to: &dyn Target,
    progress: Progress<'_>,
) -> Result<(), CopyError> {
    for what in Listing::ALL {
        let mut after = String::new();
        let mut done = 0u64;
        loop {
            let ids = from
                .list(what, &after, PAGE)
                .await
                .map_err(read(format!("the list of {what:?}")))?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            for id in &ids {
                match what {
                    Listing::Rooms => copy_room(from, to, id).await?,
                    Listing::Threads => copy_thread(from, to, id).await?,
                    Listing::Inboxes => copy_inbox(from, to, id).await?,
                    Listing::Members => copy_memberships(from, to, id).await?,
                    Listing::Assets => {
                        if let Some(a) =
                            from.asset(id).await.map_err(read(format!("asset {id}")))?
                        {
                            to.put_asset(&a)
                                .await
                                .map_err(write(format!("asset {id}")))?;
                        }
                    }
                    Listing::Jobs => {
                        if let Some(j) = from.job(id).await.map_err(read(format!("job {id}")))? {
                            to.put_job(&j).await.map_err(write(format!("job {id}")))?;
                        }
                    }
                    record => super::records::copy_record(from, to, record, id).await?,
                }
            }
            done += ids.len() as u64;
            progress(&format!("{what:?}"), done);
            after = last;
        }
    }
    copy_kv(from, to, progress).await
}

async fn copy_room(from: &dyn Backend, to: &dyn Target, id: &str) -> Result<(), CopyError> {
    let what = || format!("room {id}");
    let Some(meta) = from.room(id).await.map_err(read(what()))? else {
        return Ok(());
    };
    if !to.create_room(&meta).await.map_err(write(what()))? {
        let theirs = to.room(id).await.map_err(read(what()))?;
        if theirs.as_ref() != Some(&meta) {
            return Err(CopyError::Differs(format!(
                "the target has another room under id {id}"
            )));
        }
    }
    let mut head = to.room_head(id).await.map_err(read(what()))?;
    loop {
        let events = from
            .room_events(id, head, PAGE)
            .await
            .map_err(read(what()))?;
        let Some(last) = events.last().map(|e| e.seq) else {
            break;
        };
        let encoded: Vec<EncodedEvent> = events.into_iter().map(EncodedEvent::new).collect();
        to.append_room_events(id, 0, &encoded)
            .await
            .map_err(write(what()))?;
        head = last;
    }
    if let Some(snap) = from.room_snapshot(id).await.map_err(read(what()))? {
        to.put_room_snapshot(id, &snap)
            .await
            .map_err(write(what()))?;
    }
    Ok(())
}

async fn copy_thread(from: &dyn Backend, to: &dyn Target, id: &str) -> Result<(), CopyError> {
    let what = || format!("thread {id}");
    let Some(meta) = from.thread(id).await.map_err(read(what()))? else {
        return Ok(());
    };
    if !to.create_thread(&meta).await.map_err(write(what()))? {
        let theirs = to.thread(id).await.map_err(read(what()))?;
        if theirs.as_ref() != Some(&meta) {
            return Err(CopyError::Differs(format!(
                "the target has another thread under id {id}"
            )));
        }
    }
    let mut head = to.thread_head(id).await.map_err(read(what()))?;
    loop {
        let msgs = from
            .messages_after(id, head, PAGE)
            .await
            .map_err(read(what()))?;
        let Some(last) = msgs.last().map(|m| m.seq) else {
            break;
        };
        to.append_messages(id, &msgs).await.map_err(write(what()))?;
        head = last;
    }
    for c in from.cursors(id).await.map_err(read(what()))? {
        to.put_cursor(id, &c).await.map_err(write(what()))?;
    }
    Ok(())
}

async fn copy_inbox(from: &dyn Backend, to: &dyn Target, user: &str) -> Result<(), CopyError> {
    let what = || format!("the inbox of {user}");
    let mut head = to.inbox_head(user).await.map_err(read(what()))?;
    loop {
        let events = from
            .inbox_after(user, head, PAGE)
            .await
            .map_err(read(what()))?;
        if events.is_empty() {
            break;
        }
        for ev in &events {
            to.append_inbox(user, ev).await.map_err(write(what()))?;
            head = ev.seq;
        }
    }
    Ok(())
}

async fn copy_memberships(
    from: &dyn Backend,
    to: &dyn Target,
    user: &str,
) -> Result<(), CopyError> {
    let what = || format!("the memberships of {user}");
    for kind in [MembershipKind::Room, MembershipKind::Thread] {
        for id in from.memberships(user, kind).await.map_err(read(what()))? {
            to.add_membership(user, kind, &id)
                .await
                .map_err(write(what()))?;
        }
    }
    Ok(())
}

async fn copy_kv(
    from: &dyn Backend,
    to: &dyn Target,
    progress: Progress<'_>,
) -> Result<(), CopyError> {
    let mut after = (String::new(), String::new());
    let mut done = 0u64;
    loop {
        let rows = from
            .kv_rows((&after.0, &after.1), PAGE)
            .await
            .map_err(read("key-value rows"))?;
        let Some((ns, key, _)) = rows.last() else {
            return Ok(());
        };
        let next = (ns.clone(), key.clone());
        for chunk in rows.chunks(KV_BATCH) {
            let mut batch = KvBatch::default();
            for (ns, key, value) in chunk {
                batch = batch.put(intern(ns), key.clone(), value.clone());
            }
            to.apply(batch).await.map_err(write("key-value rows"))?;
        }
        done += rows.len() as u64;
        progress("Kv", done);
        after = next;
    }
}

/// The `&'static str` the key-value port names namespaces with, for the
/// namespaces a copy meets (a few dozen at most, kept for the process).
pub(super) fn intern(ns: &str) -> &'static str {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let set = seen.get_or_insert_with(HashSet::new);
    if let Some(s) = set.get(ns) {
        return s;
    }
    let s: &'static str = Box::leak(ns.to_string().into_boxed_str());
    set.insert(s);
    s
}
