//! Moving files between the worker's directory and the blob store: the
//! source in, outputs out (large files as multipart uploads), the mobile
//! rendition published segment by segment while the rest is encoding.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chalktalk_adapters::blob::{BlobError, BlobStore, CompletedPart};
use chalktalk_media::hls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::sign::{asset_key, content_type_for};

/// Files above this go up as multipart uploads.
const MULTIPART_ABOVE: u64 = 16 << 20;
/// Part size of multipart uploads (S3 needs at least 5 MiB).
const PART: usize = 8 << 20;

/// Blob key of an asset's original upload.
pub fn source_key(asset: &str) -> String {
    format!("uploads/{asset}/source")
}

/// Stores the file at `path` under `key`.
pub async fn put_file(blobs: &Arc<dyn BlobStore>, key: &str, path: &Path) -> Result<(), BlobError> {
    let ct = content_type_for(key);
    let io = |e: std::io::Error| BlobError::Unavailable(format!("{}: {e}", path.display()));
    let len = tokio::fs::metadata(path).await.map_err(io)?.len();
    if len <= MULTIPART_ABOVE {
        let bytes = tokio::fs::read(path).await.map_err(io)?;
        return blobs.put(key, Bytes::from(bytes), ct).await.map(|_| ());
    }
    let upload = blobs.create_multipart(key, ct).await?;
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    let mut parts = Vec::new();
    let result: Result<(), BlobError> = async {
        loop {
            let mut buf = vec![0u8; PART];
            let mut n = 0;
            while n < PART {
                let k = f.read(&mut buf[n..]).await.map_err(io)?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            if n == 0 {
                break;
            }
            buf.truncate(n);
            let part_number = parts.len() as u32 + 1;
            let etag = blobs
                .upload_part(key, &upload, part_number, Bytes::from(buf))
                .await?;
            parts.push(CompletedPart { part_number, etag });
            if n < PART {
                break;
            }
        }
        blobs
            .complete_multipart(key, &upload, &parts)
            .await
            .map(|_| ())
    }
    .await;
    if result.is_err() {
        let _ = blobs.abort_multipart(key, &upload).await;
    }
    result
}

/// Downloads `key` to `path` in ranges (never whole into memory).
pub async fn get_file(blobs: &Arc<dyn BlobStore>, key: &str, path: &Path) -> Result<(), BlobError> {
    let io = |e: std::io::Error| BlobError::Unavailable(format!("{}: {e}", path.display()));
    let info = blobs.head(key).await?.ok_or(BlobError::NotFound)?;
    let tmp = path.with_extension("part");
    let mut f = tokio::fs::File::create(&tmp).await.map_err(io)?;
    let mut at = 0u64;
    while at < info.size {
        let end = (at + PART as u64).min(info.size);
        let bytes = blobs.get_range(key, at, end - 1).await?;
        if bytes.is_empty() {
            return Err(BlobError::Unavailable(format!("{key}: short read at {at}")));
        }
        f.write_all(&bytes).await.map_err(io)?;
        at += bytes.len() as u64;
    }
    f.sync_all().await.map_err(io)?;
    tokio::fs::rename(&tmp, path).await.map_err(io)
}

/// Publishes an asset's files from its output directory, remembering what
/// went up so the mobile rendition can go first, piece by piece.
pub struct Publisher {
    blobs: Arc<dyn BlobStore>,
    asset: String,
    root: PathBuf,
    done: HashSet<String>,
}

impl Publisher {
    pub fn new(blobs: Arc<dyn BlobStore>, asset: &str, root: &Path) -> Publisher {
        Publisher {
            blobs,
            asset: asset.to_string(),
            root: root.to_path_buf(),
            done: HashSet::new(),
        }
    }

    async fn put(&mut self, rel: &str) -> Result<(), BlobError> {
        put_file(
            &self.blobs,
            &asset_key(&self.asset, rel),
            &self.root.join(rel),
        )
        .await?;
        self.done.insert(rel.to_string());
        Ok(())
    }

    /// Publishes the segments `rendition`'s playlist lists, then the
    /// playlist itself, then (once) the early master playlist. Returns the
    /// number of segments now public.
    pub async fn rendition_so_far(&mut self, rendition: &str) -> Result<usize, BlobError> {
        let dir = format!("hls/{rendition}");
        let text = tokio::fs::read_to_string(self.root.join(&dir).join("index.m3u8"))
            .await
            .map_err(|e| BlobError::Unavailable(format!("playlist: {e}")))?;
        let pl = hls::parse_media(&text).map_err(BlobError::Unavailable)?;
        for (_, uri) in &pl.segments {
            let rel = format!("{dir}/{uri}");
            if !self.done.contains(&rel) {
                self.put(&rel).await?;
            }
        }
        // The playlist text we parsed, so it never lists an unpublished segment.
        self.blobs
            .put(
                &asset_key(&self.asset, &format!("{dir}/index.m3u8")),
                Bytes::from(text),
                content_type_for("index.m3u8"),
            )
            .await?;
        if !self.done.contains("hls/master.m3u8") && self.root.join("hls/master.m3u8").exists() {
            self.put("hls/master.m3u8").await?;
        }
        Ok(pl.segments.len())
    }

    /// Publishes everything not yet public; playlists (which changed) again,
    /// the master playlist last.
    pub async fn everything(&mut self, first: Option<&str>) -> Result<(), BlobError> {
        let mut files = Vec::new();
        walk(&self.root, &self.root, &mut files)
            .map_err(|e| BlobError::Unavailable(format!("outputs: {e}")))?;
        files.retain(|f| !f.ends_with(".tmp") && f != "source" && !f.ends_with(".part"));
        let prefix = first.map(|r| format!("hls/{r}/"));
        files.sort_by_key(|f| {
            let first = prefix.as_ref().is_some_and(|p| f.starts_with(p.as_str()));
            (
                f == "hls/master.m3u8",
                !first,
                f.ends_with(".m3u8"),
                f.clone(),
            )
        });
        for f in files {
            if f.ends_with(".m3u8") || !self.done.contains(&f) {
                self.put(&f).await?;
            }
        }
        Ok(())
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(root, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
