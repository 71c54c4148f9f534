//! Review rooms as program items: a coach puts one of their review rooms
//! (their own video with the annotations and voice-overs drawn on it) in a
//! program ([`ProgramService::own_review`] checks it), and whoever may
//! open the program reads it ([`ProgramService::review`]) as the room's
//! committed state, without joining the room: enrolled athletes are not
//! its members and cannot write in it. The voice-overs attached to such a
//! room open for them too ([`ProgramService::entitled_to_review_room`],
//! asked by the gateway's `media_link`).

use chalktalk_adapters::programs::ProgramItem;
use chalktalk_protocol::Annotation;
use serde::Serialize;

use super::{ProgramError, ProgramService};

/// A review item as the program's readers see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewView {
    pub program: String,
    pub item: String,
    pub title: String,
    pub room: String,
    /// The video asset the annotations are drawn on (open it with
    /// `media_link` or `GET /api/v1/videos/{id}`).
    pub video: String,
    /// Video width / height and frame rate, as the room records them.
    pub aspect: f32,
    pub fps: f32,
    /// The room's committed sequence number this view was read at.
    pub seq: u64,
    /// Every annotation in video-time order (then by id), in the protocol's
    /// shape (PROTOCOL.md §5). Voice-overs are those of shape
    /// `voice_over`: their `asset` opens with `media_link`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub annotations: Vec<Annotation>,
}

impl ProgramService {
    /// Checks that `room` is a review room of `coach` showing a video of
    /// `coach`; its video asset id. Someone else's footage is never put in
    /// a program (an athlete's reviewed video stays between them and their
    /// coach).
    pub(crate) async fn own_review(&self, coach: &str, room: &str) -> Result<String, ProgramError> {
        const FIELD: &str = "items.room";
        if !chalktalk_protocol::valid_id(room) {
            return Err(ProgramError::invalid(FIELD, "a room id"));
        }
        let Some(rooms) = &self.rooms else {
            return Err(ProgramError::invalid(
                FIELD,
                "this node keeps no review rooms",
            ));
        };
        let meta = match rooms.room(room).await? {
            Some(m) if m.owner == coach => m,
            _ => {
                return Err(ProgramError::invalid(
                    FIELD,
                    format!("{room} is not a review room you own"),
                ));
            }
        };
        if let Some(m) = &self.media {
            match m.asset(&meta.video_id).await? {
                Some(a) if a.owner == coach => {}
                _ => {
                    return Err(ProgramError::invalid(
                        FIELD,
                        format!(
                            "{room} shows a video you did not upload: only reviews of your own videos go in a program"
                        ),
                    ));
                }
            }
        }
        Ok(meta.video_id)
    }

    /// Review item `item` of program `id` for `user`: its coach, or a user
    /// holding an entitlement in force.
    #[tracing::instrument(skip(self))]
    pub async fn review(
        &self,
        user: &str,
        id: &str,
        item: &str,
    ) -> Result<ReviewView, ProgramError> {
        let p = self.visible(user, id).await?;
        let (title, room) = match p.items.iter().find(|i| i.id() == item) {
            Some(ProgramItem::Review { title, room, .. }) => (title.clone(), room.clone()),
            Some(_) => return Err(ProgramError::NotAReview(item.to_owned())),
            None => return Err(ProgramError::NoSuchItem(item.to_owned())),
        };
        if p.coach != user && self.active(user, id).await?.is_none() {
            return Err(ProgramError::NotEntitled);
        }
        let rooms = self
            .rooms
            .as_ref()
            .ok_or_else(|| ProgramError::Unavailable("this node keeps no review rooms".into()))?;
        // A room is never deleted; a missing one is a store out of step.
        let meta = rooms
            .room(&room)
            .await?
            .ok_or_else(|| ProgramError::Unavailable(format!("review room {room} is missing")))?;
        let state = chalktalk_actors::room::committed(&**rooms, meta).await?;
        let mut annotations: Vec<Annotation> = state.annotations.into_values().collect();
        annotations.sort_by(|a, b| (a.t_ms, &a.id).cmp(&(b.t_ms, &b.id)));
        Ok(ReviewView {
            program: p.id,
            item: item.to_owned(),
            title,
            room,
            video: state.meta.video_id,
            aspect: state.meta.aspect,
            fps: state.meta.fps,
            seq: state.seq,
            annotations,
        })
    }

    /// Does `user` hold an entitlement in force to a program showing
    /// review room `room`? (Its voice-overs then open for them.)
    pub async fn entitled_to_review_room(
        &self,
        user: &str,
        room: &str,
    ) -> Result<bool, chalktalk_actors::store::StoreError> {
        self.holds_program(user, |p| p.review_rooms().any(|r| r == room))
            .await
    }
}
