//! A voice-over is commentary on its room's video: `media_link` of one
//! needs room membership AND the matrix's access to the video the room
//! shows, so a member who lost access to the video (relationship ended)
//! loses its voice-overs too.

use chalktalk_protocol::{ClientMsg, MediaKind, Reply};
use chalktalk_services::accounts::Plan;

use super::world::World;
use crate::ws;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_overs_follow_access_to_the_rooms_video() {
    let mut w = World::start_empty().await;
    w.add("coach", Plan::CoachPremium).await;
    let athlete = w.add("athlete", Plan::AthletePaid).await;
    w.add("other", Plan::CoachPremium).await;
    w.relate("coach", "athlete").await;
    w.video("v-x", "athlete").await;
    let c = w.ws("coach").await;
    let Reply::RoomCreated { room } = c
        .request(ClientMsg::CreateRoom {
            video_id: "v-x".into(),
            aspect: None,
            fps: None,
        })
        .await
        .expect("room")
    else {
        panic!("room_created expected")
    };
    // A ready voice-over by another coach, attached to the room.
    let mut vo = chalktalk_adapters::conformance::media::asset("vo-1");
    vo.kind = MediaKind::VoiceOver;
    vo.owner = w.id("other");
    vo.room = Some(room.clone());
    vo.at_ms = Some(0.0);
    let media = w.app.media.as_ref().expect("media");
    media.store.put_asset(&vo).await.expect("put voice-over");
    let link = ClientMsg::MediaLink {
        asset: "vo-1".into(),
    };
    assert_eq!(
        ws(&c, link.clone()).await,
        "ok",
        "member who sees the video"
    );

    w.app
        .perms
        .facts
        .end(&w.id("coach"), &athlete)
        .await
        .expect("end");
    let video = ClientMsg::MediaLink {
        asset: "v-x".into(),
    };
    assert_eq!(ws(&c, video).await, "not_found");
    assert_eq!(
        ws(&c, link).await,
        "not_found",
        "still a member, but no longer sees the video"
    );
}
