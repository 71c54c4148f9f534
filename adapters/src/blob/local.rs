//! The local-files blob adapter (the default): objects are plain files under
//! a root directory, so a reverse proxy or `sendfile` can serve them as-is.
//!
//! Layout under the root:
//! - `objects/<dirs>/<name>@blob` — the content of key `<dirs>/<name>`;
//! - `objects/<dirs>/<name>@meta` — a JSON sidecar: size, content type,
//!   etag (hex SHA-256 of the content) and the inode of the content file it
//!   describes;
//! - `multipart/<upload id>/info` (JSON: key, content type) and
//!   `multipart/<upload id>/<part number>` — unfinished multipart uploads;
//! - `@tmp-<random>` files in any of those directories while writing.
//!
//! Keys cannot contain `@` (see `validate_key`), so content files, sidecars,
//! temporary files and the directories that hold deeper keys never collide:
//! `a` and `a/b` can both exist.
//!
//! Writes are atomic and durable: content and sidecar go to temporary files
//! in the destination directory, are fsynced, renamed into place (sidecar
//! first, content last: the content rename is the commit point) and the
//! directory is fsynced. A sidecar whose inode does not match its content
//! file (a crash between the two renames, or a reader racing an overwrite)
//! is ignored and the etag recomputed from the content. Emptied directories
//! are left in place. All file IO runs on tokio's blocking pool.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::blob::{
    BlobError, BlobInfo, BlobStore, CompletedPart, MIN_PART_BYTES, PartETag, UploadId,
    validate_key, validate_part_number, validate_parts, validate_prefix,
};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const OBJECTS: &str = "objects";
const MULTIPART: &str = "multipart";
const BLOB_SUFFIX: &str = "@blob";
const META_SUFFIX: &str = "@meta";
const INFO_FILE: &str = "info";
/// Content type reported when a sidecar is missing or stale.
const FALLBACK_TYPE: &str = "application/octet-stream";

/// Blob store on the local filesystem (see the module docs for the layout).
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    size: u64,
    content_type: String,
    etag: String,
    ino: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct UploadInfo {
    key: String,
    content_type: String,
}

impl LocalBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalBlobStore, BlobError> {
        let root = root.into();
        for sub in [OBJECTS, MULTIPART] {
            fs::create_dir_all(root.join(sub)).map_err(|e| io_err(e, "create root"))?;
        }
        Ok(LocalBlobStore { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, BlobError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, BlobError> + Send + 'static,
    {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || f(&root))
            .await
            .map_err(|e| BlobError::Unavailable(format!("blob io task failed: {e}")))?
    }
}

fn io_err(e: io::Error, what: &str) -> BlobError {
    if e.kind() == io::ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        BlobError::Unavailable(format!("{what}: {e}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Where key `key`'s files live: (directory, content file, sidecar).
fn object_paths(root: &Path, key: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (dirs, name) = match key.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, key),
    };
    let mut dir = root.join(OBJECTS);
    if let Some(d) = dirs {
        dir.push(d);
    }
    let blob = dir.join(format!("{name}{BLOB_SUFFIX}"));
    let meta = dir.join(format!("{name}{META_SUFFIX}"));
    (dir, blob, meta)
}

/// The directory of an upload; ids this adapter did not make are `NotFound`
/// (they could otherwise name paths outside the root).
fn upload_dir(root: &Path, upload: &UploadId) -> Result<PathBuf, BlobError> {
    let id = &upload.0;
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(BlobError::NotFound);
    }
    Ok(root.join(MULTIPART).join(id))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (under `base`) if missing, fsyncing every directory whose
/// entries changed so the new directories survive a crash.
fn ensure_dir(base: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let mut d = dir;
    while let Some(parent) = d.parent() {
        sync_dir(parent)?;
        if parent == base || !parent.starts_with(base) {
            break;
        }
        d = parent;
    }
    Ok(())
}

/// A temporary file in `dir`, removed on drop unless renamed into place.
struct TempFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl TempFile {
    fn new(dir: &Path) -> io::Result<TempFile> {
        let path = dir.join(format!(
            "@tmp-{}",
            chalktalk_actors::new_id("w").trim_start_matches("w-")
        ));
        let file = File::create_new(&path)?;
        Ok(TempFile {
            path,
            file,
            keep: false,
        })
    }

    /// Fsyncs and renames over `dest`; returns the file's inode.
    fn commit(mut self, dest: &Path) -> io::Result<u64> {
        self.file.sync_all()?;
        let ino = self.file.metadata()?.ino();
        fs::rename(&self.path, dest)?;
        self.keep = true;
        Ok(ino)
    }

    /// Fsyncs; the caller renames later with [`TempFile::rename`].
    fn finish(&mut self) -> io::Result<u64> {
        self.file.sync_all()?;
        Ok(self.file.metadata()?.ino())
    }

    fn rename(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes a whole object: `fill` writes the content into the temporary file
/// and returns its etag.
fn write_object(
    root: &Path,
    key: &str,
    content_type: &str,
    fill: impl FnOnce(&mut File) -> Result<String, BlobError>,
) -> Result<BlobInfo, BlobError> {
    let (dir, blob, meta_path) = object_paths(root, key);
    ensure_dir(&root.join(OBJECTS), &dir).map_err(|e| io_err(e, "create directory"))?;
    let mut data = TempFile::new(&dir).map_err(|e| io_err(e, "create temp file"))?;
    let etag = fill(&mut data.file)?;
    let ino = data.finish().map_err(|e| io_err(e, "sync content"))?;
    let size = data
        .file
        .metadata()
        .map_err(|e| io_err(e, "stat content"))?
        .len();
    let meta = Meta {
        size,
        content_type: content_type.to_string(),
        etag: etag.clone(),
        ino,
    };
    let json = serde_json::to_vec(&meta)
        .map_err(|e| BlobError::Unavailable(format!("encode sidecar: {e}")))?;
    let mut side = TempFile::new(&dir).map_err(|e| io_err(e, "create temp file"))?;
    side.file
        .write_all(&json)
        .map_err(|e| io_err(e, "write sidecar"))?;
    side.commit(&meta_path)
        .map_err(|e| io_err(e, "commit sidecar"))?;
    data.rename(&blob)
        .map_err(|e| io_err(e, "commit content"))?;
    sync_dir(&dir).map_err(|e| io_err(e, "sync directory"))?;
    Ok(BlobInfo {
        size,
        content_type: meta.content_type,
        etag,
    })
}

fn sha256_file(file: &mut File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn head_blocking(root: &Path, key: &str) -> Result<Option<BlobInfo>, BlobError> {
    let (_, blob, meta_path) = object_paths(root, key);
    let mut file = match File::open(&blob) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e, "open content")),
    };
    let stat = file.metadata().map_err(|e| io_err(e, "stat content"))?;
    let meta: Option<Meta> = fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match meta {
        Some(m) if m.ino == stat.ino() && m.size == stat.len() => Ok(Some(BlobInfo {
            size: m.size,
            content_type: m.content_type,
            etag: m.etag,
        })),
        stale => {
            let etag = sha256_file(&mut file).map_err(|e| io_err(e, "read content"))?;
            Ok(Some(BlobInfo {
                size: stat.len(),
                content_type: stale
                    .map(|m| m.content_type)
                    .unwrap_or_else(|| FALLBACK_TYPE.to_string()),
                etag,
            }))
        }
    }
}

fn list_blocking(root: &Path, prefix: &str) -> Result<Vec<String>, BlobError> {
    let objects = root.join(OBJECTS);
    // Start at the deepest directory the prefix names in full.
    let base_rel = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let start = if base_rel.is_empty() {
        objects.clone()
    } else {
        objects.join(base_rel)
    };
    let mut out = Vec::new();
    let mut stack = vec![(start, base_rel.to_string())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(e, "read directory")),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err(e, "read directory"))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let joined = |n: &str| {
                if rel.is_empty() {
                    n.to_string()
                } else {
                    format!("{rel}/{n}")
                }
            };
            if let Some(stem) = name.strip_suffix(BLOB_SUFFIX) {
                let key = joined(stem);
                if key.starts_with(prefix) {
                    out.push(key);
                }
            } else if !name.contains('@') {
                let is_dir = entry
                    .file_type()
                    .map_err(|e| io_err(e, "stat entry"))?
                    .is_dir();
                let sub = joined(&name);
                let sub_prefix = format!("{sub}/");
                if is_dir && (sub_prefix.starts_with(prefix) || prefix.starts_with(&sub_prefix)) {
                    stack.push((entry.path(), sub));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_upload(dir: &Path, key: &str) -> Result<UploadInfo, BlobError> {
    let bytes = fs::read(dir.join(INFO_FILE)).map_err(|e| io_err(e, "read upload"))?;
    let info: UploadInfo = serde_json::from_slice(&bytes)
        .map_err(|e| BlobError::Unavailable(format!("corrupt upload info: {e}")))?;
    if info.key != key {
        return Err(BlobError::NotFound);
    }
    Ok(info)
}

fn complete_blocking(
    root: &Path,
    key: &str,
    upload: &UploadId,
    parts: &[CompletedPart],
) -> Result<BlobInfo, BlobError> {
    let dir = upload_dir(root, upload)?;
    let info = read_upload(&dir, key)?;
    validate_parts(parts)?;
    for (i, part) in parts.iter().enumerate() {
        let path = dir.join(part.part_number.to_string());
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::InvalidPart(format!(
                    "part {} was not uploaded",
                    part.part_number
                )));
            }
            Err(e) => return Err(io_err(e, "stat part")),
        };
        if i + 1 < parts.len() && len < MIN_PART_BYTES as u64 {
            return Err(BlobError::InvalidPart(format!(
                "part {} is {len} bytes, less than {MIN_PART_BYTES}",
                part.part_number
            )));
        }
    }
    let blob = write_object(root, key, &info.content_type, |out| {
        let mut whole = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        for part in parts {
            let mut src = File::open(dir.join(part.part_number.to_string()))
                .map_err(|e| io_err(e, "open part"))?;
            let mut one = Sha256::new();
            loop {
                let n = src.read(&mut buf).map_err(|e| io_err(e, "read part"))?;
                if n == 0 {
                    break;
                }
                one.update(&buf[..n]);
                whole.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| io_err(e, "write content"))?;
            }
            if hex(&one.finalize()) != part.etag.0 {
                return Err(BlobError::InvalidPart(format!(
                    "etag of part {} does not match",
                    part.part_number
                )));
            }
        }
        Ok(hex(&whole.finalize()))
    })?;
    fs::remove_dir_all(&dir).map_err(|e| io_err(e, "remove upload"))?;
    Ok(blob)
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<BlobInfo, BlobError> {
        validate_key(key)?;
        let (key, content_type) = (key.to_string(), content_type.to_string());
        self.blocking(move |root| {
            write_object(root, &key, &content_type, |f| {
                f.write_all(&bytes)
                    .map_err(|e| io_err(e, "write content"))?;
                Ok(hex(&Sha256::digest(&bytes)))
            })
        })
        .await
    }

    async fn create_multipart(&self, key: &str, content_type: &str) -> Result<UploadId, BlobError> {
        validate_key(key)?;
        let info = UploadInfo {
            key: key.to_string(),
            content_type: content_type.to_string(),
        };
        self.blocking(move |root| {
            let upload = UploadId(chalktalk_actors::new_id("mp"));
            let dir = upload_dir(root, &upload)?;
            fs::create_dir(&dir).map_err(|e| io_err(e, "create upload"))?;
            let json = serde_json::to_vec(&info)
                .map_err(|e| BlobError::Unavailable(format!("encode upload info: {e}")))?;
            let mut tmp = TempFile::new(&dir).map_err(|e| io_err(e, "create temp file"))?;
            tmp.file
                .write_all(&json)
                .map_err(|e| io_err(e, "write upload info"))?;
            tmp.commit(&dir.join(INFO_FILE))
                .map_err(|e| io_err(e, "commit upload info"))?;
            sync_dir(&dir).map_err(|e| io_err(e, "sync upload"))?;
            sync_dir(&root.join(MULTIPART)).map_err(|e| io_err(e, "sync uploads"))?;
            Ok(upload)
        })
        .await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload: &UploadId,
        part_number: u32,
        bytes: Bytes,
    ) -> Result<PartETag, BlobError> {
        validate_key(key)?;
        validate_part_number(part_number)?;
        let (key, upload) = (key.to_string(), upload.clone());
        self.blocking(move |root| {
            let dir = upload_dir(root, &upload)?;
            read_upload(&dir, &key)?;
            let mut tmp = TempFile::new(&dir).map_err(|e| io_err(e, "create temp file"))?;
            tmp.file
                .write_all(&bytes)
                .map_err(|e| io_err(e, "write part"))?;
            tmp.commit(&dir.join(part_number.to_string()))
                .map_err(|e| io_err(e, "commit part"))?;
            sync_dir(&dir).map_err(|e| io_err(e, "sync upload"))?;
            Ok(PartETag(hex(&Sha256::digest(&bytes))))
        })
        .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload: &UploadId,
        parts: &[CompletedPart],
    ) -> Result<BlobInfo, BlobError> {
        validate_key(key)?;
        let (key, upload, parts) = (key.to_string(), upload.clone(), parts.to_vec());
        self.blocking(move |root| complete_blocking(root, &key, &upload, &parts))
            .await
    }

    async fn abort_multipart(&self, key: &str, upload: &UploadId) -> Result<(), BlobError> {
        validate_key(key)?;
        let (key, upload) = (key.to_string(), upload.clone());
        self.blocking(move |root| {
            let dir = match upload_dir(root, &upload) {
                Ok(d) => d,
                Err(BlobError::NotFound) => return Ok(()),
                Err(e) => return Err(e),
            };
            match read_upload(&dir, &key) {
                Ok(_) => {}
                Err(BlobError::NotFound) => return Ok(()),
                Err(e) => return Err(e),
            }
            match fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(e, "remove upload")),
            }
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking(move |root| {
            let (_, blob, _) = object_paths(root, &key);
            fs::read(blob)
                .map(Bytes::from)
                .map_err(|e| io_err(e, "read content"))
        })
        .await
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        end_inclusive: u64,
    ) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        if end_inclusive < start {
            return Err(BlobError::InvalidRange);
        }
        let key = key.to_string();
        self.blocking(move |root| {
            let (_, blob, _) = object_paths(root, &key);
            let file = File::open(blob).map_err(|e| io_err(e, "open content"))?;
            let len = file
                .metadata()
                .map_err(|e| io_err(e, "stat content"))?
                .len();
            if start >= len {
                return Err(BlobError::InvalidRange);
            }
            let end = end_inclusive.min(len - 1);
            let n = usize::try_from(end - start + 1)
                .map_err(|_| BlobError::InvalidArgument("range too large".into()))?;
            let mut buf = vec![0u8; n];
            file.read_exact_at(&mut buf, start)
                .map_err(|e| io_err(e, "read content"))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking(move |root| head_blocking(root, &key)).await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking(move |root| {
            let (dir, blob, meta) = object_paths(root, &key);
            for path in [blob, meta] {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(e, "delete")),
                }
            }
            match sync_dir(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(e, "sync directory")),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_string();
        self.blocking(move |root| list_blocking(root, &prefix))
            .await
    }

    async fn presign_get(&self, key: &str, _ttl: Duration) -> Result<Option<String>, BlobError> {
        validate_key(key)?;
        Ok(None)
    }

    async fn presign_put(
        &self,
        key: &str,
        _ttl: Duration,
        _content_type: &str,
    ) -> Result<Option<String>, BlobError> {
        validate_key(key)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::conformance::blob as conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_conformance() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Arc::new(LocalBlobStore::open(dir.path()).unwrap());
        conformance::run_all(store.clone()).await;
        conformance::longest_key(&*store).await;
        conformance::multipart_strict(&*store).await;
        // Only committed objects and nothing temporary remain.
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                assert!(!name.starts_with("@tmp-"), "leftover {name}");
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
            }
        }
        let uploads: Vec<_> = fs::read_dir(dir.path().join(MULTIPART)).unwrap().collect();
        assert!(uploads.is_empty(), "leftover uploads {uploads:?}");
    }

    #[tokio::test]
    async fn no_presigned_urls() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let ttl = Duration::from_secs(60);
        assert_eq!(store.presign_get("a", ttl).await, Ok(None));
        assert_eq!(store.presign_put("a", ttl, "video/mp4").await, Ok(None));
        assert!(matches!(
            store.presign_get("../a", ttl).await,
            Err(BlobError::InvalidKey(_))
        ));
    }

    #[tokio::test]
    async fn key_and_deeper_key_coexist() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        store
            .put("a", Bytes::from_static(b"1"), "t/a")
            .await
            .unwrap();
        store
            .put("a/b", Bytes::from_static(b"22"), "t/b")
            .await
            .unwrap();
        store
            .put("a.blob", Bytes::from_static(b"3"), "t/c")
            .await
            .unwrap();
        assert_eq!(store.get("a").await.unwrap(), Bytes::from_static(b"1"));
        assert_eq!(store.get("a/b").await.unwrap(), Bytes::from_static(b"22"));
        assert_eq!(store.list("").await.unwrap(), ["a", "a.blob", "a/b"]);
        assert_eq!(store.list("a/").await.unwrap(), ["a/b"]);
        store.delete("a").await.unwrap();
        assert_eq!(store.list("a").await.unwrap(), ["a.blob", "a/b"]);
    }

    #[tokio::test]
    async fn stale_sidecar_is_ignored() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let first = store
            .put("k", Bytes::from_static(b"one"), "t/1")
            .await
            .unwrap();
        let (_, blob, _) = object_paths(dir.path(), "k");
        // A crash after the content rename of a second write but before its
        // sidecar rename: new content, old sidecar (another inode).
        let tmp = dir.path().join("objects").join("x");
        fs::write(&tmp, b"two").unwrap();
        fs::rename(&tmp, &blob).unwrap();
        let info = store.head("k").await.unwrap().unwrap();
        assert_eq!(info.size, 3);
        assert_ne!(info.etag, first.etag);
        assert_eq!(info.etag, hex(&Sha256::digest(b"two")));
    }

    #[tokio::test]
    async fn foreign_upload_ids_are_not_found() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let up = store.create_multipart("k", "t/x").await.unwrap();
        for bad in ["../../objects", "", "A"] {
            let id = UploadId(bad.into());
            assert_eq!(
                store.upload_part("k", &id, 1, Bytes::new()).await,
                Err(BlobError::NotFound)
            );
            assert_eq!(store.abort_multipart("k", &id).await, Ok(()));
        }
        // The upload belongs to key `k`, not `j`.
        assert_eq!(
            store.upload_part("j", &up, 1, Bytes::new()).await,
            Err(BlobError::NotFound)
        );
        assert_eq!(store.abort_multipart("j", &up).await, Ok(()));
        store.upload_part("k", &up, 1, Bytes::new()).await.unwrap();
        assert_eq!(
            store.upload_part("k", &up, 0, Bytes::new()).await,
            Err(BlobError::InvalidArgument(
                "part number 0 not in 1..=10000".into()
            ))
        );
    }
}
