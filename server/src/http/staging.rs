//! Uploads in progress on disk: `staging_dir/{id}.json` (the [`Record`],
//! written atomically: temporary file, fsync, rename, directory fsync) next
//! to `staging_dir/{id}.data` (the bytes received so far). Every request
//! reads the record from disk, so a restarted server (or a new `HttpState`
//! over the same directory) resumes where the last one stopped.
//!
//! Also the per-upload locks ([`UploadLocks`]) and the sweeper pass
//! ([`sweep_once`]).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chalktalk_protocol::MediaKind;
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedMutexGuard;

use super::{ApiError, CompletedUpload, HttpState};

const JSON: &str = ".json";
const DATA: &str = ".data";
const TMP_MARK: &str = ".tmp-";
/// Length of an upload id: 16 random bytes in unpadded base64url.
pub(crate) const ID_LEN: usize = 22;

/// The persisted state of one resumable upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    /// User id of the creator; nobody else sees the upload.
    pub owner: String,
    pub kind: MediaKind,
    pub filename: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub room: Option<String>,
    pub at_ms: Option<f64>,
    /// Bytes stored (and fsynced) so far.
    pub offset: u64,
    pub created_ms: u64,
    /// Last activity (creation or a PATCH, even an interrupted one).
    pub updated_ms: u64,
}

impl Record {
    /// When the sweeper may remove the upload (unix ms).
    pub fn expires_ms(&self, ttl: Duration) -> u64 {
        self.updated_ms.saturating_add(ms(ttl))
    }

    /// What the handler gets once every byte is in.
    pub fn completed(&self, dir: &Path) -> CompletedUpload {
        CompletedUpload {
            id: self.id.clone(),
            kind: self.kind,
            filename: self.filename.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            room: self.room.clone(),
            at_ms: self.at_ms,
            path: data_path(dir, &self.id),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Unix time in ms.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, ms)
}

/// A new random upload id: 128 bits, URL-safe.
pub(crate) fn new_id() -> Result<String, ApiError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// True for strings shaped like [`new_id`]'s (so they are safe file names).
pub(crate) fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn json_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{JSON}"))
}

pub(crate) fn data_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{DATA}"))
}

/// Reads a record; `None` when there is none (or the id is malformed).
pub(crate) async fn load(dir: &Path, id: &str) -> io::Result<Option<Record>> {
    if !valid_id(id) {
        return Ok(None);
    }
    match tokio::fs::read(json_path(dir, id)).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a record atomically and durably.
pub(crate) async fn save(dir: &Path, rec: &Record) -> io::Result<()> {
    let bytes = serde_json::to_vec(rec).map_err(io::Error::other)?;
    let dir = dir.to_path_buf();
    let id = rec.id.clone();
    tokio::task::spawn_blocking(move || {
        let path = json_path(&dir, &id);
        let tmp = dir.join(format!("{id}{JSON}{TMP_MARK}{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .map_err(io::Error::other)?
}

/// Removes whatever exists of an upload (record first: without it the data
/// file is an orphan the sweeper cleans up).
pub(crate) async fn remove(dir: &Path, id: &str) -> io::Result<()> {
    for path in [json_path(dir, id), data_path(dir, id)] {
        remove_file(&path).await?;
    }
    Ok(())
}

/// Removes a file; a missing one is fine.
pub(crate) async fn remove_file(path: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(crate) fn io_error(what: &str, e: io::Error) -> ApiError {
    tracing::warn!(error = %e, "{what}");
    ApiError::internal(format!("{what}: {e}"))
}

type LockMap = HashMap<String, Arc<tokio::sync::Mutex<()>>>;

/// One async mutex per upload id, created on demand and dropped when the
/// last holder lets go.
#[derive(Clone, Default)]
pub struct UploadLocks(Arc<Mutex<LockMap>>);

impl std::fmt::Debug for UploadLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |m| m.len());
        write!(f, "UploadLocks({n} held)")
    }
}

/// A held upload lock.
pub(crate) struct LockGuard {
    locks: UploadLocks,
    id: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl UploadLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, LockMap> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock of upload `id`, or `None` when someone holds it.
    pub(crate) fn try_lock(&self, id: &str) -> Option<LockGuard> {
        let mutex = self.map().entry(id.to_string()).or_default().clone();
        let guard = mutex.try_lock_owned().ok()?;
        Some(LockGuard {
            locks: self.clone(),
            id: id.to_string(),
            guard: Some(guard),
        })
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let mut map = self.locks.map();
        // Ours (the guard) + the map's: nobody else is about to use it.
        if map.get(&self.id).is_some_and(|m| Arc::strong_count(m) <= 2) {
            map.remove(&self.id);
        }
        self.guard.take();
    }
}

/// One sweeper pass at time `now`: removes incomplete uploads whose last
/// activity is older than `incomplete_ttl` (unless a request holds them),
/// and files without a live record (orphaned data, temporary and unreadable
/// files) older than that too. Returns how many uploads and orphan files it
/// removed.
pub async fn sweep_once(state: &HttpState, now: SystemTime) -> usize {
    let dir = state.uploads.staging_dir.clone();
    let ttl = state.uploads.incomplete_ttl;
    let now_ms = unix_ms(now);
    let mut entries = match tokio::fs::read_dir(&dir).await {
        Ok(e) => e,
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(error = %e, dir = %dir.display(), "sweep: cannot list staging");
            }
            return 0;
        }
    };
    let mut removed = 0;
    let mut live = Vec::new();
    let mut others = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        match name.strip_suffix(JSON).filter(|id| valid_id(id)) {
            Some(id) => live.push(id.to_string()),
            None => others.push(name),
        }
    }
    let mut kept = Vec::new();
    for id in live {
        let rec = match load(&dir, &id).await {
            Ok(Some(rec)) => rec,
            // Unreadable: an orphan (judged by age below).
            _ => {
                others.push(format!("{id}{JSON}"));
                continue;
            }
        };
        if rec.expires_ms(ttl) > now_ms {
            kept.push(id);
            continue;
        }
        let Some(_guard) = state.locks.try_lock(&id) else {
            kept.push(id);
            continue;
        };
        match remove(&dir, &id).await {
            Ok(()) => {
                tracing::info!(upload = %id, "sweep: removed stale upload");
                removed += 1;
            }
            Err(e) => tracing::warn!(upload = %id, error = %e, "sweep: cannot remove"),
        }
    }
    for name in others {
        let owner = name.split('.').next().unwrap_or("");
        if kept.iter().any(|id| id == owner) {
            continue;
        }
        let path = dir.join(&name);
        let Ok(meta) = tokio::fs::metadata(&path).await else {
            continue;
        };
        let modified = meta.modified().map_or(0, unix_ms);
        if !meta.is_file() || modified.saturating_add(ms(ttl)) > now_ms {
            continue;
        }
        // A record may have appeared since the listing (an upload created
        // right now): keep the data file then.
        if name.ends_with(DATA)
            && tokio::fs::try_exists(json_path(&dir, owner))
                .await
                .unwrap_or(true)
        {
            continue;
        }
        if remove_file(&path).await.is_ok() {
            tracing::info!(file = %name, "sweep: removed orphan file");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert!(valid_id(&a), "{a}");
        for bad in [
            "",
            "../../../../etc/passwd",
            "abc",
            &"a".repeat(23),
            "aaaaaaaaaaaaaaaaaaaaa/",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn locks_are_exclusive_and_dropped() {
        let locks = UploadLocks::default();
        let g = locks.try_lock("a").unwrap();
        assert!(locks.try_lock("a").is_none());
        assert!(locks.try_lock("b").is_some());
        drop(g);
        assert!(locks.map().is_empty());
        assert!(locks.try_lock("a").is_some());
    }

    #[tokio::test]
    async fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let id = new_id().unwrap();
        let rec = Record {
            id: id.clone(),
            owner: "u".into(),
            kind: MediaKind::VoiceOver,
            filename: "a.m4a".into(),
            size: 10,
            content_type: None,
            room: Some("r".into()),
            at_ms: Some(1.5),
            offset: 3,
            created_ms: 1,
            updated_ms: 2,
        };
        assert_eq!(load(dir.path(), &id).await.unwrap(), None);
        save(dir.path(), &rec).await.unwrap();
        assert_eq!(load(dir.path(), &id).await.unwrap(), Some(rec.clone()));
        assert_eq!(load(dir.path(), "../x").await.unwrap(), None);
        remove(dir.path(), &id).await.unwrap();
        remove(dir.path(), &id).await.unwrap();
        assert_eq!(load(dir.path(), &id).await.unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
