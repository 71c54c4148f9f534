//! WebSocket requests about media, answered by the gateway: `media_link`
//! (the asset and a signed, expiring base URL; for its owner, admins,
//! whoever the permission matrix lets see a video, and the members of the
//! room a voice-over is attached to) and
//! `cancel_media` (owner or admin). Others get `not_found`, so asset ids do
//! not leak whether they exist. The gateway passes what it found out
//! ([`MediaGrant`]): for videos the permission matrix's answer, which then
//! decides alone; for a voice-over, the answer for the video its room
//! shows, which must allow besides room membership or a training program
//! showing the room as a review; a document opens to its owner, admins and
//! the holders of a training program that attaches it.

use chalktalk_actors::store::MembershipKind;
use chalktalk_protocol::{Asset, ClientMsg, ErrorCode, MediaKind, Reply, Role};

use super::MediaService;

type Fail = (ErrorCode, String);

/// What the gateway found out about a media request's asset for its
/// caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaGrant {
    /// The permission matrix's answer for a video asset, or for the video
    /// of a voice-over's room (`None`: room membership decides).
    pub video: Option<bool>,
    /// A voice-over whose room a training program the caller holds shows
    /// as a review (in place of room membership).
    pub review: bool,
    /// A document a training program the caller holds attaches.
    pub attachment: bool,
}

impl MediaService {
    async fn may_view(&self, user: &str, role: Role, a: &Asset, grant: MediaGrant) -> bool {
        let video = grant.video;
        if role == Role::Admin || a.owner == user {
            return true;
        }
        if let (MediaKind::Video, Some(allowed)) = (a.kind, video) {
            return allowed;
        }
        if video == Some(false) {
            // A voice-over on a video the caller may not see.
            return false;
        }
        match a.kind {
            // Not in rooms: its owner, admins and the programs' holders.
            MediaKind::Document => grant.attachment,
            MediaKind::VoiceOver if grant.review => true,
            // A storage failure denies.
            MediaKind::VoiceOver => match &a.room {
                Some(r) => self.is_room_member(user, r).await.unwrap_or(false),
                None => false,
            },
            MediaKind::Video => {
                let store = &self.directory.deps.store;
                let Ok(rooms) = store.memberships(user, MembershipKind::Room).await else {
                    return false;
                };
                for r in rooms {
                    if let Ok(Some(meta)) = store.room(&r).await
                        && meta.video_id == a.id
                    {
                        return true;
                    }
                }
                false
            }
        }
    }

    /// Answers a media request of `user`, with what the gateway found out
    /// about its asset (`grant`).
    pub async fn request(
        &self,
        user: &str,
        role: Role,
        msg: &ClientMsg,
        grant: MediaGrant,
    ) -> Result<Reply, Fail> {
        let (id, cancel) = match msg {
            ClientMsg::MediaLink { asset } => (asset, false),
            ClientMsg::CancelMedia { asset } => (asset, true),
            _ => return Err((ErrorCode::Internal, "not a media request".into())),
        };
        let not_found = || (ErrorCode::NotFound, format!("no asset {id} you can see"));
        let asset = self
            .store
            .asset(id)
            .await
            .map_err(|e| (ErrorCode::Internal, format!("store: {e}")))?
            .ok_or_else(not_found)?;
        if !self.may_view(user, role, &asset, grant).await {
            return Err(not_found());
        }
        if cancel {
            if asset.owner != user && role != Role::Admin {
                return Err((
                    ErrorCode::Forbidden,
                    "only the uploader can cancel processing".into(),
                ));
            }
            let pool = self.pool().ok_or_else(|| {
                (
                    ErrorCode::Internal,
                    "the encoder pool is not running".into(),
                )
            })?;
            return match pool.cancel(id).await {
                Ok(true) => Ok(Reply::Done),
                Ok(false) => Err((
                    ErrorCode::Conflict,
                    format!("asset {id} is already {:?}", asset.stage).to_lowercase(),
                )),
                Err(e) => Err((ErrorCode::Internal, e.to_string())),
            };
        }
        let ttl = self.config.link_ttl;
        let expires_ms = chalktalk_actors::now_ms() + ttl.as_millis() as u64;
        let base = asset.info.as_ref().map(|_| self.signer.link(id, "", ttl));
        Ok(Reply::MediaLink {
            asset: Box::new(asset),
            base,
            expires_ms,
        })
    }
}
