//! Paged joins of large rooms: a room whose state does not fit one frame
//! is sent as a snapshot without annotations (`joined.mode` `paged`) plus
//! pages of annotations the client fetches one request at a time
//! (`snapshot_page`), so every frame stays small, a slow reader sets its
//! own pace and nothing waits in a socket buffer.
//!
//! The pages of one snapshot are encoded once and shared: every member
//! paging it holds an `Arc`, the room keeps only a `Weak` (the memory goes
//! when the last pager is done) and reuses it for later joiners while the
//! events since it are still in the room's replay ring.

use std::sync::Arc;

use bytes::Bytes;
use chalktalk_protocol::{JoinMode, RoomSnapshot, encode, join_array};

use super::state::RoomState;

/// Target size of one page's annotations, in encoded bytes. One annotation
/// is at most ~45 KiB (4096 points), so a page is at most this plus one.
pub const PAGE_BYTES: usize = 256 * 1024;

/// Rooms at or below this many points and annotations are sent inline
/// (`joined.mode` `snapshot`) without measuring their encoded size: at
/// most ~11 bytes a point, they fit well under [`PAGE_BYTES`].
const INLINE_POINTS: u64 = 16_000;
const INLINE_ANNOTATIONS: usize = 1_000;

/// The annotations of one snapshot, encoded as pages.
#[derive(Debug)]
pub struct Pages {
    /// The snapshot without its annotations.
    pub head: RoomSnapshot,
    pub annotations: u32,
    /// Each page: a MessagePack array of annotations.
    pub pages: Vec<Bytes>,
}

impl Pages {
    pub fn seq(&self) -> u64 {
        self.head.seq
    }

    pub fn count(&self) -> u32 {
        self.pages.len() as u32
    }

    /// The `joined.mode` announcing these pages.
    pub fn mode(&self) -> JoinMode {
        JoinMode::Paged {
            snapshot: self.head.clone(),
            annotations: self.annotations,
            pages: self.count(),
        }
    }
}

/// What a join sends: the state inline, or pages.
pub enum Catchup {
    Inline(RoomSnapshot),
    Paged(Arc<Pages>),
}

/// Decides how the state of `core` travels and encodes the pages if needed.
pub fn build(core: &RoomState) -> Catchup {
    if core.points() <= INLINE_POINTS && core.annotations.len() <= INLINE_ANNOTATIONS {
        return Catchup::Inline(core.snapshot());
    }
    let mut pages = Vec::new();
    let mut page: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for a in core.annotations.values() {
        let one = encode(a);
        if !page.is_empty() && bytes + one.len() > PAGE_BYTES {
            pages.push(Bytes::from(join_array(&page)));
            page.clear();
            bytes = 0;
        }
        bytes += one.len();
        page.push(one);
    }
    if pages.is_empty() {
        // Fits one frame after all.
        return Catchup::Inline(core.snapshot());
    }
    pages.push(Bytes::from(join_array(&page)));
    let head = core.snapshot_without_annotations();
    Catchup::Paged(Arc::new(Pages {
        head,
        annotations: core.annotations.len() as u32,
        pages,
    }))
}
