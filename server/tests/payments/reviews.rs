//! A review room as a program item: the coach puts a room of their own
//! video, with its drawings and a voice-over, in a free program; an
//! athlete who enrolls reads it over REST (read-only, not a member of the
//! room) and opens its video and voice-over, and could not before. Later
//! drawings show; someone else's room or footage is refused.

use chalktalk_media::sample::{AudioCodec, SampleSpec, VideoCodec};
use chalktalk_protocol::{ClientMsg, Role};
use serde_json::{Value, json};

use super::flows::{ATHLETE, COACH, Node, media_link};
use crate::common::media::{clip, upload};
use crate::common::{self, ack, add, create_room, line};

fn review_program(room: &str) -> Value {
    json!({"title": "Snatch, annotated", "sport": "weightlifting", "price": {"kind": "free"}, "items": [
        {"kind": "drill", "id": "warmup", "title": "Warm-up", "text": "10 min easy"},
        {"kind": "review", "id": "third-rep", "title": "Your third rep", "room": room},
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_room_in_a_program_opens_read_only_to_enrolled_athletes() {
    let n = Node::start(None).await;
    let api = n.api();
    n.video("v-snatch").await;
    let coach = n.node.connect(COACH, Role::Coach, "laptop").await;
    let room = create_room(&coach, "v-snatch").await;
    ack(&coach, add(&room, "o1", line("hip", 1500))).await;
    ack(&coach, add(&room, "o2", line("bar", 400))).await;
    // A voice-over the coach records at 900 ms: uploaded, processed by the
    // node's worker and attached to the room by the server.
    let d = tempfile::tempdir().expect("tempdir");
    let wav = clip(
        d.path(),
        "vo.wav",
        SampleSpec {
            video: VideoCodec::None,
            audio: AudioCodec::Pcm,
            ..SampleSpec::small(1.0, 0, 0)
        },
    );
    let r = upload(
        &n.node,
        COACH,
        Role::Coach,
        "vo.wav",
        &wav,
        json!({"kind": "voice_over", "room": room, "at_ms": 900.0}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let vo = r.json()["id"].as_str().expect("id").to_string();

    let r = api
        .post("/api/v1/programs", Some(&n.coach), review_program(&room))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let program = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(
        r.json()["items"][1],
        json!({"kind": "review", "id": "third-rep", "title": "Your third rep", "room": room, "video": "v-snatch"})
    );
    let path = format!("/api/v1/programs/{program}/items/third-rep/review");
    // The coach reads it while it is a draft; the athlete cannot see it.
    let r = api.get(&path, Some(&n.coach)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(api.get(&path, Some(&n.athlete)).await.status, 404);
    n.publish(&program).await;

    // Published, not enrolled: the listing shows it, nothing opens.
    let athlete = n.node.connect(ATHLETE, Role::Athlete, "phone").await;
    let r = api.get(&path, Some(&n.athlete)).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("not_entitled"))
    );
    assert_eq!(media_link(&athlete, &vo).await, "not_found");
    n.wait_video("v-snatch", 404).await;

    n.enroll(&program).await;
    // The server attaches the voice-over once it is processed.
    let mut v = Value::Null;
    for _ in 0..600 {
        let r = api.get(&path, Some(&n.athlete)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        v = r.json();
        if v["annotations"].as_array().is_some_and(|a| a.len() == 3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        (
            &v["program"],
            &v["item"],
            &v["title"],
            &v["room"],
            &v["video"]
        ),
        (
            &json!(program),
            &json!("third-rep"),
            &json!("Your third rep"),
            &json!(room),
            &json!("v-snatch")
        )
    );
    let ids = |v: &Value| -> Vec<(String, u64)> {
        v["annotations"]
            .as_array()
            .expect("annotations")
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap_or("").to_string(),
                    a["t_ms"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    assert_eq!(
        ids(&v),
        [
            ("bar".into(), 400),
            (format!("vo-{vo}"), 900),
            ("hip".into(), 1500)
        ],
        "in video-time order: {v}"
    );
    let said = &v["annotations"][1];
    assert_eq!(said["author"], COACH);
    assert_eq!(
        said["shape"],
        json!({"k": "voice_over", "asset": vo}),
        "{said}"
    );
    // The video and the voice-over open; the room does not.
    n.wait_video("v-snatch", 200).await;
    assert_eq!(media_link(&athlete, &vo).await, "ok");
    assert_eq!(
        media_link(&athlete, "v-snatch").await,
        "ok",
        "the reviewed video over the WebSocket too"
    );
    let joined = athlete
        .request(ClientMsg::JoinRoom {
            room: room.clone(),
            since: None,
        })
        .await;
    assert!(joined.is_err(), "read-only: not a member ({joined:?})");

    // A later drawing shows at the next read.
    ack(&coach, add(&room, "o4", line("knee", 2000))).await;
    let v = api.get(&path, Some(&n.athlete)).await.json();
    assert_eq!(ids(&v).last(), Some(&("knee".into(), 2000)));

    // Other items are not reviews; unknown ones do not exist.
    let r = api
        .get(
            &format!("/api/v1/programs/{program}/items/warmup/review"),
            Some(&n.athlete),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("not_a_review"))
    );
    let r = api
        .get(
            &format!("/api/v1/programs/{program}/items/nope/review"),
            Some(&n.athlete),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("no_such_item"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_reviews_of_the_coachs_own_rooms_and_videos_go_in_a_program() {
    let n = Node::start(None).await;
    let api = n.api();
    // Another coach's room on their own video.
    n.video("v-mine").await;
    let other = n.node.connect("coach-2", Role::Coach, "laptop").await;
    let mut theirs = chalktalk_adapters::conformance::media::asset("v-theirs");
    theirs.owner = "coach-2".into();
    let media = n.node.app().media.as_ref().expect("media");
    media.store.put_asset(&theirs).await.expect("put asset");
    let their_room = create_room(&other, "v-theirs").await;
    // The coach's own room on an athlete's video they may see.
    let mut footage = chalktalk_adapters::conformance::media::asset("v-athlete");
    footage.owner = ATHLETE.into();
    media.store.put_asset(&footage).await.expect("put asset");
    common::relate(&n.node, COACH, ATHLETE).await;
    let coach = n.node.connect(COACH, Role::Coach, "laptop").await;
    let athletes_room = create_room(&coach, "v-athlete").await;

    for (room, problem) in [
        (their_room.as_str(), "is not a review room you own"),
        ("r-nowhere", "is not a review room you own"),
        (athletes_room.as_str(), "shows a video you did not upload"),
        ("bad id!", "a room id"),
    ] {
        let r = api
            .post("/api/v1/programs", Some(&n.coach), review_program(room))
            .await;
        assert_eq!(r.status, 422, "{room}: {}", r.text());
        let body = r.json();
        assert_eq!(body["error"], "validation_failed", "{body}");
        assert!(
            body["fields"]["items.room"]
                .as_str()
                .unwrap_or("")
                .contains(problem),
            "{room}: {body}"
        );
    }
    let mut no_room = review_program("x");
    no_room["items"][1]
        .as_object_mut()
        .expect("item")
        .remove("room");
    let r = api.post("/api/v1/programs", Some(&n.coach), no_room).await;
    assert_eq!(r.status, 422, "{}", r.text());
}
