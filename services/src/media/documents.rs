//! Documents: files a coach hands out as they are (a PDF training plan, an
//! image of a drill), for training programs' attachment items. No worker
//! touches them: the type comes from the file's first bytes (PDF, PNG,
//! JPEG, WebP; anything else is refused with `unsupported_type`, whatever
//! its name or declared type), the malware scanner has run before, and the
//! file is published as `doc/<name>.<ext>` under the asset, where the
//! media route serves it for download (`Content-Disposition: attachment`).

use chalktalk_protocol::{Asset, MediaInfo, MediaKind, MediaStage};
use tokio::io::AsyncReadExt;

use super::MediaService;
use super::error::MediaError;
use super::publish::put_file;
use super::sign::asset_key;
use super::uploads::CompletedUpload;
use crate::auth::Claims;

/// The document types handed out: (media type, extension) of a file's
/// first bytes.
pub fn sniff(head: &[u8]) -> Option<(&'static str, &'static str)> {
    if head.starts_with(b"%PDF-") {
        Some(("application/pdf", "pdf"))
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if head.starts_with(b"\xff\xd8\xff") {
        Some(("image/jpeg", "jpg"))
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(("image/webp", "webp"))
    } else {
        None
    }
}

/// The published file's name: the upload's name without its extension,
/// kept to `[A-Za-z0-9_-]` (others become `_`), at most 64 characters;
/// `document` when nothing is left.
pub fn file_name(filename: &str, ext: &str) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    let mut safe: String = stem
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.trim_matches('_').is_empty() {
        safe = "document".into();
    }
    format!("doc/{safe}.{ext}")
}

impl MediaService {
    /// Publishes a document whose bytes are all in `upload.path` (checked
    /// and scanned): ready at once, answered as the asset's JSON.
    pub(super) async fn store_document(
        &self,
        user: &Claims,
        asset_id: String,
        upload: CompletedUpload,
    ) -> Result<serde_json::Value, MediaError> {
        let mut head = [0u8; 16];
        let mut f = tokio::fs::File::open(&upload.path)
            .await
            .map_err(|e| MediaError::internal(format!("staged file: {e}")))?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]).await {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(MediaError::internal(format!("staged file: {e}"))),
            }
        }
        let Some((mime, ext)) = sniff(&head[..n]) else {
            return Err(MediaError::rejected(
                "unsupported_type",
                "a document must be a PDF, PNG, JPEG or WebP file",
            ));
        };
        let rel = file_name(&upload.filename, ext);
        let key = asset_key(&asset_id, &rel);
        put_file(&self.blobs, &key, &upload.path)
            .await
            .map_err(|e| MediaError::unavailable(format!("blob store: {e}")))?;
        let asset = Asset {
            id: asset_id,
            kind: MediaKind::Document,
            owner: user.sub.clone(),
            stage: MediaStage::Ready,
            filename: upload.filename.clone(),
            size: upload.size,
            created_ms: chalktalk_actors::now_ms(),
            room: None,
            at_ms: None,
            info: Some(MediaInfo {
                file: Some(rel),
                mime: Some(mime.into()),
                ..MediaInfo::default()
            }),
            error: None,
        };
        if let Err(e) = self.store.put_asset(&asset).await {
            let _ = self.blobs.delete(&key).await;
            return Err(MediaError::unavailable(format!("store: {e}")));
        }
        let _ = tokio::fs::remove_file(&upload.path).await;
        tracing::info!(asset = %asset.id, user = %user.sub, mime, size = asset.size, "document published");
        serde_json::to_value(&asset).map_err(|e| MediaError::internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_from_first_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(("application/pdf", "pdf")));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(("image/png", "png"))
        );
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some(("image/jpeg", "jpg")));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(("image/webp", "webp")));
        for bad in [
            &b"<html><script>"[..],
            b"PK\x03\x04",
            b"",
            b"%PD",
            b"RIFF\0\0\0\0WAVE",
        ] {
            assert_eq!(sniff(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn published_names() {
        assert_eq!(file_name("Week 1 plan.pdf", "pdf"), "doc/Week_1_plan.pdf");
        assert_eq!(file_name("../../etc/passwd", "png"), "doc/passwd.png");
        assert_eq!(file_name("évé.jpg", "jpg"), "doc/_v_.jpg");
        assert_eq!(file_name("éé.jpg", "jpg"), "doc/document.jpg");
        assert_eq!(file_name("noext", "pdf"), "doc/noext.pdf");
        assert_eq!(
            file_name(&"x".repeat(200), "pdf").len(),
            "doc/".len() + 64 + 4
        );
    }
}
