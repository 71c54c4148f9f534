//! Existence probes: `create_room` answers the same `not_found` for an
//! asset id that does not exist, one that is not a video and a video the
//! caller may not see, so asset ids cannot be probed; ids that are not
//! asset-shaped still create membership-only rooms.

use chalktalk_protocol::client::{Client, ClientError};
use chalktalk_protocol::{ClientMsg, ErrorCode, Reply};
use chalktalk_services::accounts::Plan;

use super::world::World;

/// Asset-shaped ids (`a-` + 20 lowercase hex digits).
const THEIRS: &str = "a-0123456789abcdef0123";
const MISSING: &str = "a-fedcba9876543210fedc";

fn create(video: &str) -> ClientMsg {
    ClientMsg::CreateRoom {
        video_id: video.into(),
        aspect: None,
        fps: None,
    }
}

/// The answer with the video id masked, or "room" when a room was created.
async fn answer(c: &Client, video: &str) -> (Option<ErrorCode>, String) {
    match c.request(create(video)).await {
        Ok(Reply::RoomCreated { .. }) => (None, "room".into()),
        Ok(other) => panic!("unexpected reply {other:?}"),
        Err(ClientError::Server { code, msg }) => (Some(code), msg.replace(video, "<id>")),
        Err(e) => panic!("transport error {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_room_does_not_reveal_whether_an_asset_exists() {
    let mut w = World::start_empty().await;
    w.add("owner", Plan::CoachBasic).await;
    w.add("stranger", Plan::CoachPremium).await;
    w.video(THEIRS, "owner").await;
    let stranger = w.ws("stranger").await;

    let hidden = answer(&stranger, THEIRS).await;
    assert_eq!(hidden.0, Some(ErrorCode::NotFound), "{hidden:?}");
    // An asset id nobody uploaded: the very same answer, not a room.
    assert_eq!(answer(&stranger, MISSING).await, hidden);
    // Upper-case hex is not asset-shaped: a membership-only room.
    assert_eq!(
        answer(&stranger, &MISSING.to_uppercase()).await.1,
        "room",
        "non-asset ids stay membership-only"
    );
    assert_eq!(answer(&stranger, "lesson-1").await.1, "room");

    // The owner reviews their own video.
    let owner = w.ws("owner").await;
    assert_eq!(answer(&owner, THEIRS).await.1, "room");
    // ...but not an asset id that does not exist.
    assert_eq!(answer(&owner, MISSING).await, hidden);
}
