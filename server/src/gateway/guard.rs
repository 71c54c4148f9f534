//! The permission matrix on the WebSocket: each frame whose row in
//! `super::dispatch::route` names a [`Check`] (`create_room`, `join_room`,
//! an `invite` op, `create_thread`, `send`; `media_link` and
//! `cancel_media` through [`media_grant`]) is checked here, through
//! `chalktalk_services::permissions`, before it reaches its answerer.
//!
//! Rooms whose `video_id` is not a video asset stay governed by room
//! membership only; a `video_id` of asset shape ([`is_asset_id`]) is always
//! an asset. Refusals: `not_found` when `create_room` names a video the
//! caller may not see or an asset id that does not exist (the same answer,
//! so asset ids cannot be probed), `forbidden` for joins, invitations and
//! messaging the matrix does not allow.

use std::collections::HashMap;
use std::sync::Arc;

use chalktalk_protocol::{ClientMsg, ErrorCode, MediaKind, RoomOp, ThreadKind};

use super::dispatch::Check;
use chalktalk_services::accounts::Plan;
use chalktalk_services::media::MediaGrant;
use chalktalk_services::permissions::{Permissions, Subject};

type Fail = (ErrorCode, String);

fn internal(e: impl std::fmt::Display) -> Fail {
    (ErrorCode::Internal, format!("storage: {e}"))
}

/// Does `id` have the shape of a media asset id (`a-` + 20 lowercase hex
/// digits, `chalktalk_actors::new_id("a")`)? Such a `video_id` is always
/// treated as an asset: `create_room` needs a video asset the caller may
/// see, whether or not one exists.
pub fn is_asset_id(id: &str) -> bool {
    id.strip_prefix("a-").is_some_and(|h| {
        h.len() == 20
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Threads remembered per connection (members never change).
const THREAD_CACHE: usize = 256;

/// One connection's permission checks.
pub struct Guard {
    perms: Arc<Permissions>,
    user: String,
    /// The plan of the hello token (used when the user has no account).
    token_plan: Plan,
    /// The plan the current check decides with ([`live_plan`]).
    plan: Plan,
    threads: HashMap<String, (ThreadKind, Vec<String>)>,
}

impl Guard {
    pub fn new(perms: Arc<Permissions>, user: String, plan: Plan) -> Guard {
        Guard {
            perms,
            user,
            token_plan: plan,
            plan,
            threads: HashMap::new(),
        }
    }

    fn me(&self) -> Subject<'_> {
        Subject {
            user: &self.user,
            plan: self.plan,
        }
    }

    /// Does `check` do anything here? `MediaVideo` does not: the media
    /// task asks the matrix itself ([`media_grant`]), off the reader.
    pub fn needed(check: Check) -> bool {
        !matches!(check, Check::None | Check::MediaVideo)
    }

    /// Runs `check` (the frame's row in `super::dispatch::route`) on `m`;
    /// `Ok` lets the frame through to its answerer. Checks other than
    /// [`Check::None`] decide with the account's current plan.
    pub async fn check(&mut self, check: Check, m: &ClientMsg) -> Result<(), Fail> {
        if !Guard::needed(check) {
            return Ok(());
        }
        self.plan = live_plan(&self.perms, &self.user, self.token_plan).await;
        match (check, m) {
            (Check::CreateRoom, ClientMsg::CreateRoom { video_id, .. }) => {
                // One answer for "no such asset", "not a video" and "not
                // yours to see": an asset id's existence cannot be probed.
                let hidden = || {
                    (
                        ErrorCode::NotFound,
                        format!("no video {video_id} you can see"),
                    )
                };
                let Some(a) = self.perms.video_asset(video_id).await.map_err(internal)? else {
                    if is_asset_id(video_id) {
                        return Err(hidden());
                    }
                    // Not an asset: the room is governed by membership.
                    return Ok(());
                };
                let d = self
                    .perms
                    .video(self.me(), &a.owner, &a.id)
                    .await
                    .map_err(internal)?;
                if !d.allowed() {
                    return Err(hidden());
                }
                Ok(())
            }
            (Check::JoinRoom, ClientMsg::JoinRoom { room, .. }) => {
                self.room_video(room, None).await
            }
            (
                Check::Invite,
                ClientMsg::Op {
                    room,
                    op: RoomOp::Invite { user },
                    ..
                },
            ) => self.room_video(room, Some(user)).await,
            (Check::CreateThread, ClientMsg::CreateThread { kind, members, .. }) => {
                self.may_message(*kind, members).await
            }
            (Check::Send, ClientMsg::Send { thread, .. }) => self.send(thread).await,
            (check, _) => Err((
                ErrorCode::Internal,
                format!("check {check:?} does not apply to this message"),
            )),
        }
    }

    /// Joining (`invitee` None) or inviting to a room showing a video
    /// asset: the joiner, or the invitee under their account's plan, must
    /// see the video. Invitees without an account (dev identities) are
    /// checked when they join.
    async fn room_video(&self, room: &str, invitee: Option<&String>) -> Result<(), Fail> {
        if room.is_empty() || room.len() > 128 {
            // The session answers invalid.
            return Ok(());
        }
        let Some(meta) = self.perms.store.room(room).await.map_err(internal)? else {
            return Ok(());
        };
        let Some(a) = self
            .perms
            .video_asset(&meta.video_id)
            .await
            .map_err(internal)?
        else {
            return Ok(());
        };
        let (who, plan) = match invitee {
            None => (self.user.as_str(), self.plan),
            Some(u) => match self.perms.plan_of(u).await {
                Some(p) => (u.as_str(), p),
                None => return Ok(()),
            },
        };
        let d = self
            .perms
            .video(Subject { user: who, plan }, &a.owner, &a.id)
            .await
            .map_err(internal)?;
        if d.allowed() {
            return Ok(());
        }
        let msg = match invitee {
            None => format!(
                "you may not see the video of room {room}: {}",
                d.why().message()
            ),
            Some(u) => format!(
                "{u} may not see the video of room {room}: {}",
                d.why().message()
            ),
        };
        Err((ErrorCode::Forbidden, msg))
    }

    async fn send(&mut self, thread: &str) -> Result<(), Fail> {
        if !self.threads.contains_key(thread) {
            if thread.is_empty() || thread.len() > 128 {
                return Ok(());
            }
            let Some(meta) = self.perms.store.thread(thread).await.map_err(internal)? else {
                // The session answers not_found.
                return Ok(());
            };
            if self.threads.len() >= THREAD_CACHE {
                self.threads.clear();
            }
            self.threads
                .insert(thread.to_string(), (meta.kind, meta.members));
        }
        let Some((kind, members)) = self.threads.get(thread) else {
            return Ok(());
        };
        if *kind == ThreadKind::Room {
            // Its members follow the room's: the thread checks membership
            // with the stored ones (not this cache's).
            return self.may_message(ThreadKind::Room, &[]).await;
        }
        if !members.contains(&self.user) {
            // The thread answers not_member.
            return Ok(());
        }
        self.may_message(*kind, members).await
    }

    /// `forbidden` with the matrix's reason unless the caller may message
    /// `members` in a thread of `kind`.
    async fn may_message(&self, kind: ThreadKind, members: &[String]) -> Result<(), Fail> {
        let d = self
            .perms
            .message(self.me(), kind, members)
            .await
            .map_err(internal)?;
        if d.allowed() {
            Ok(())
        } else {
            Err((ErrorCode::Forbidden, d.why().message().into()))
        }
    }
}

/// The plan a WebSocket check decides with: the account's current plan, so
/// an admin's change (a downgrade above all) applies to open connections at
/// their next guarded frame, not only after the client reconnects with a
/// refreshed token (a connection outlives its token); the hello token's
/// plan for users without an account (dev identities) or when the account
/// cannot be read.
pub async fn live_plan(perms: &Permissions, user: &str, token_plan: Plan) -> Plan {
    perms.plan_of(user).await.unwrap_or(token_plan)
}

/// For `media_link` / `cancel_media` of a caller with `plan` (their
/// [`live_plan`]): what the media service decides with
/// ([`MediaGrant`]). `video`: the matrix's answer for the video behind the
/// asset: a video asset itself, or, for a voice-over, the video asset its
/// room shows (commentary on a video is only for those who may see the
/// video); `None` for unknown assets and voice-overs whose room shows no
/// asset, which the media service decides by ownership and room
/// membership. `review`: a voice-over whose room a training program the
/// caller holds shows as a review. `attachment`: a document a training
/// program the caller holds attaches.
pub async fn media_grant(
    perms: &chalktalk_services::permissions::Permissions,
    user: &str,
    plan: chalktalk_services::accounts::Plan,
    m: &ClientMsg,
) -> MediaGrant {
    let (ClientMsg::MediaLink { asset } | ClientMsg::CancelMedia { asset }) = m else {
        return MediaGrant::default();
    };
    let Some(media) = perms.media.as_ref() else {
        return MediaGrant::default();
    };
    if !chalktalk_protocol::valid_id(asset) {
        return MediaGrant::default();
    }
    let Some(a) = media.asset(asset).await.ok().flatten() else {
        return MediaGrant::default();
    };
    // A storage failure denies.
    let (video, review, attachment) = match (a.kind, a.room.as_deref()) {
        (MediaKind::Video, _) => (Some(a), false, false),
        (MediaKind::Document, _) => {
            let held = match &perms.programs {
                Some(p) => p
                    .entitled_to_attachment(user, &a.owner, &a.id)
                    .await
                    .unwrap_or(false),
                None => false,
            };
            (None, false, held)
        }
        (MediaKind::VoiceOver, Some(room)) => {
            let video = match perms.store.room(room).await.ok().flatten() {
                Some(meta) => perms.video_asset(&meta.video_id).await.ok().flatten(),
                None => None,
            };
            let review = match &perms.programs {
                Some(p) => p.entitled_to_review_room(user, room).await.unwrap_or(false),
                None => false,
            };
            (video, review, false)
        }
        (MediaKind::VoiceOver, None) => (None, false, false),
    };
    let who = chalktalk_services::permissions::Subject { user, plan };
    let video = match video {
        // A storage failure denies.
        Some(v) => Some(
            perms
                .video(who, &v.owner, &v.id)
                .await
                .is_ok_and(|d| d.allowed()),
        ),
        None => None,
    };
    MediaGrant {
        video,
        review,
        attachment,
    }
}
