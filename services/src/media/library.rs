//! A user's library: the assets they uploaded with the storage each one
//! takes in the blob store (its original and its published files),
//! deleting one (files, original, record), and the per-user storage quota
//! (the original sizes of the user's assets, `MediaConfig::quota_bytes`)
//! checked when an upload is created.

use chalktalk_protocol::{Asset, Role};
use serde::Serialize;

use super::publish::source_key;
use super::sign::asset_key;
use super::{MediaError, MediaService};

/// Most assets of one user listed or counted.
pub const MAX_ASSETS: usize = 10_000;

/// One asset of the library with what it takes in the blob store.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stored {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub asset: Asset,
    /// Published files (renditions, playlists, segments, poster, ...).
    pub files: usize,
    /// Bytes of the original and the published files.
    pub stored_bytes: u64,
}

/// What a user stores, against their quota.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Library {
    pub assets: Vec<Stored>,
    /// What counts against the quota: the original sizes of the assets.
    pub used_bytes: u64,
    /// `None`: no quota.
    pub quota_bytes: Option<u64>,
}

fn unavailable(e: impl std::fmt::Display) -> MediaError {
    MediaError::unavailable(format!("storage: {e}"))
}

impl MediaService {
    /// The assets `owner` uploaded, each with its published files counted
    /// and measured, newest first.
    pub async fn library(&self, owner: &str) -> Result<Library, MediaError> {
        let mut assets = self
            .store
            .assets_of(owner, MAX_ASSETS)
            .await
            .map_err(unavailable)?;
        assets.sort_by_key(|a| std::cmp::Reverse(a.created_ms));
        let used_bytes = assets.iter().map(|a| a.size).sum();
        let mut out = Vec::with_capacity(assets.len());
        for asset in assets {
            let keys = self
                .blobs
                .list(&asset_key(&asset.id, ""))
                .await
                .map_err(unavailable)?;
            let mut stored_bytes = 0;
            for k in keys.iter().chain([&source_key(&asset.id)]) {
                if let Some(info) = self.blobs.head(k).await.map_err(unavailable)? {
                    stored_bytes += info.size;
                }
            }
            out.push(Stored {
                asset,
                files: keys.len(),
                stored_bytes,
            });
        }
        Ok(Library {
            assets: out,
            used_bytes,
            quota_bytes: self.config.quota_bytes,
        })
    }

    /// Deletes asset `id` of `user` (admins: anyone's): its published
    /// files, its original, then its record. An asset still processing is
    /// refused (`conflict`: cancel it first); someone else's or an unknown
    /// one is `not_found`. Returns the asset as it was.
    pub async fn delete(&self, user: &str, role: Role, id: &str) -> Result<Asset, MediaError> {
        let hidden = || MediaError::NotFound(format!("no asset {id} of yours"));
        let asset = self
            .store
            .asset(id)
            .await
            .map_err(unavailable)?
            .ok_or_else(hidden)?;
        if asset.owner != user && role != Role::Admin {
            return Err(hidden());
        }
        if !asset.stage.is_final() {
            return Err(MediaError::Conflict(format!(
                "asset {id} is still being processed; cancel it (cancel_media) first"
            )));
        }
        let keys = self
            .blobs
            .list(&asset_key(id, ""))
            .await
            .map_err(unavailable)?;
        for k in keys.iter().chain([&source_key(id)]) {
            self.blobs.delete(k).await.map_err(unavailable)?;
        }
        self.store
            .delete_asset(id, &asset.owner)
            .await
            .map_err(unavailable)?;
        Ok(asset)
    }

    /// Refuses an upload of `size` bytes that would take `owner` above the
    /// quota (`quota_exceeded`, with what is used and the quota).
    pub async fn check_quota(&self, owner: &str, size: u64) -> Result<(), MediaError> {
        let Some(quota) = self.config.quota_bytes else {
            return Ok(());
        };
        let used: u64 = self
            .store
            .assets_of(owner, MAX_ASSETS)
            .await
            .map_err(unavailable)?
            .iter()
            .map(|a| a.size)
            .sum();
        if used.saturating_add(size) > quota {
            return Err(MediaError::QuotaExceeded {
                used,
                quota,
                message: format!(
                    "this upload of {size} bytes would take your storage to {} bytes, above your quota of {quota} bytes ({used} used); delete some assets first",
                    used.saturating_add(size)
                ),
            });
        }
        Ok(())
    }
}
