//! The video pipeline end to end on a real node: HTTP uploads of files the
//! tests generate, validation and transcoding in real `chalktalk
//! transcode-worker` processes, progress over real WebSockets to the
//! uploader and to a room showing the video, signed links serving HLS with
//! ranges, bad files refused with their codes, a worker killed mid-job,
//! a full queue, cancellation, and a voice-over seen live by another member.

mod common;
/// The suite's other files, in tests/media/.
mod media {
    pub mod library;
}

use std::time::Duration;

use chalktalk_media::hls;
use chalktalk_media::sample::{AudioCodec, SampleSpec, VideoCodec};
use chalktalk_protocol::client::ClientError;
use chalktalk_protocol::{
    ClientMsg, ErrorCode, InboxEvent, MediaStage, Notice, Reply, Role, RoomOp, ServerFrame, Shape,
};
use common::media::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_ready_with_progress_links_and_hls() {
    let s = TestServer::start().await;
    let d = tempfile::tempdir().unwrap();
    let mut coach = s.connect("coach", Role::Coach, "laptop").await;
    let mut athlete = s.connect("athlete", Role::Athlete, "phone").await;
    // A first upload keeps the single encoder busy, so the second one's
    // progress is all seen by the room created for it.
    let first = clip(
        d.path(),
        "first.mp4",
        SampleSpec {
            noise: 6,
            ..SampleSpec::small(8.0, 1280, 720)
        },
    );
    let r1 = upload(
        &s,
        "coach",
        Role::Coach,
        "first.mp4",
        &first,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r1.status, 200, "{:?}", String::from_utf8_lossy(&r1.body));
    let video = clip(
        d.path(),
        "drill.mp4",
        SampleSpec {
            noise: 6,
            ..SampleSpec::small(6.0, 1280, 720)
        },
    );
    let r = upload(
        &s,
        "coach",
        Role::Coach,
        "drill.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let asset = r.json();
    let id = asset["id"].as_str().unwrap().to_string();
    assert_eq!(asset["stage"], "queued");
    assert_eq!(asset["owner"], "coach");

    let room = create_room(&coach, &id).await;
    ack(
        &coach,
        op(
            &room,
            "inv",
            RoomOp::Invite {
                user: "athlete".into(),
            },
        ),
    )
    .await;
    // Athletes see their own and purchased videos only (the permission
    // matrix): the coach's video is granted to this athlete.
    grant(&s, "athlete", &id).await;
    join(&athlete, &room, None).await;

    // The uploader and the room both see progress, playable early, then ready.
    let playable = media_frame(&mut athlete, &id, LONG, |p| {
        p.playable && p.stage != MediaStage::Ready
    })
    .await;
    let early = playable.info.expect("playable carries info");
    assert_eq!(
        early.renditions.len(),
        1,
        "the mobile rendition comes first"
    );
    assert_eq!(early.renditions[0].name, "480p");
    let ready = media_frame(&mut athlete, &id, LONG, |p| p.stage == MediaStage::Ready).await;
    let info = ready.info.expect("ready carries info");
    assert_eq!(
        info.renditions
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        vec!["720p", "480p"]
    );
    assert!(
        info.renditions[0].copied,
        "a fitting H.264 source is packaged, not re-encoded"
    );
    media_frame(&mut coach, &id, LONG, |p| p.stage == MediaStage::Ready).await;
    let notice = coach
        .wait_for(LONG, |f| match f {
            ServerFrame::Inbox(InboxEvent {
                notice: Notice::Media { asset, stage, .. },
                ..
            }) if *asset == id => Some(*stage),
            _ => None,
        })
        .await;
    assert_eq!(notice, Some(MediaStage::Ready));

    // Links: members and the owner get one, others learn nothing.
    let Reply::MediaLink { base, asset, .. } = athlete
        .request(ClientMsg::MediaLink { asset: id.clone() })
        .await
        .expect("link")
    else {
        panic!("not a media link")
    };
    assert_eq!(asset.stage, MediaStage::Ready);
    let base = base.expect("a published asset has a base URL");
    let outsider = s.connect("stranger", Role::Athlete, "x").await;
    let err = outsider
        .request(ClientMsg::MediaLink { asset: id.clone() })
        .await
        .expect_err("stranger");
    assert!(
        matches!(
            err,
            ClientError::Server {
                code: ErrorCode::NotFound,
                ..
            }
        ),
        "{err:?}"
    );

    let master = get(&s, &format!("{base}hls/master.m3u8"), None).await;
    assert_eq!(master.status, 200);
    assert_eq!(
        master.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    let variants = hls::parse_master(&String::from_utf8_lossy(&master.body)).unwrap();
    assert_eq!(variants.len(), 2);
    let pl = get(&s, &format!("{base}hls/{}", variants[1].uri), None).await;
    let pl = hls::parse_media(&String::from_utf8_lossy(&pl.body)).unwrap();
    assert!(pl.ended && (pl.duration() - 6.0).abs() < 0.3, "{pl:?}");
    let seg = get(&s, &format!("{base}hls/480p/{}", pl.segments[0].1), None).await;
    assert_eq!(seg.status, 200);
    assert_eq!(seg.body[0], 0x47, "MPEG-TS sync byte");
    let part = get(
        &s,
        &format!("{base}{}", info.renditions[0].mp4),
        Some("bytes=0-99"),
    )
    .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 100);
    assert_eq!(&part.body[4..8], b"ftyp");
    let tampered = base.replacen("/media/1", "/media/2", 1);
    let bad = get(&s, &format!("{tampered}poster.jpg"), None).await;
    assert_eq!(bad.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_refused_with_their_codes() {
    let scanner = tempfile::tempdir().unwrap();
    let script = scanner.path().join("scan.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nif grep -q EICAR \"$1\"; then exit 1; fi\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script_path = script.display().to_string();
    let s = TestServer::start_with(move |c| c.media.scan_command = Some(vec![script_path])).await;
    let d = tempfile::tempdir().unwrap();
    let good = clip(d.path(), "g.mp4", SampleSpec::small(4.0, 320, 240));
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "notes.mp4",
            b"just some text, not a video\n".repeat(100),
            "not_media",
        ),
        (
            "voice.mp4",
            clip(
                d.path(),
                "a.m4a",
                SampleSpec {
                    video: VideoCodec::None,
                    ..SampleSpec::small(2.0, 0, 0)
                },
            ),
            "audio_only",
        ),
        (
            "lossless.mkv",
            clip(
                d.path(),
                "f.mkv",
                SampleSpec {
                    video: VideoCodec::Ffv1,
                    audio: AudioCodec::None,
                    ..SampleSpec::small(1.0, 160, 120)
                },
            ),
            "unsupported_codec",
        ),
        (
            "eicar.mp4",
            [good.clone(), b"EICAR-TEST".to_vec()].concat(),
            "infected",
        ),
    ];
    cases.push((
        "cut.mp4",
        good[..good.len() / 2].to_vec(),
        "corrupt|truncated",
    ));
    let mut coach = s.connect("coach", Role::Coach, "laptop").await;
    for (name, bytes, want) in cases {
        let r = upload(
            &s,
            "coach",
            Role::Coach,
            name,
            &bytes,
            serde_json::json!({}),
        )
        .await;
        assert_eq!(
            r.status,
            422,
            "{name}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        let code = r.json()["error"].as_str().unwrap_or("").to_string();
        assert!(
            want.split('|').any(|w| w == code),
            "{name}: got {code}, want {want}"
        );
        assert!(!r.json()["message"].as_str().unwrap_or("").is_empty());
    }
    // Nothing was queued and the node is fine.
    assert!(
        coach
            .wait_for(Duration::from_millis(300), |f| matches!(
                f,
                ServerFrame::Media(_)
            )
            .then_some(()))
            .await
            .is_none()
    );
    assert!(matches!(
        coach.request(ClientMsg::Ping).await,
        Ok(Reply::Pong { .. })
    ));
    // A voice-over needs its room and time.
    let r = upload(
        &s,
        "coach",
        Role::Coach,
        "v.wav",
        &good,
        serde_json::json!({"kind": "voice_over"}),
    )
    .await;
    assert_eq!(r.status, 422, "{:?}", String::from_utf8_lossy(&r.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_replaced_and_the_job_retried() {
    let s = TestServer::start().await;
    let d = tempfile::tempdir().unwrap();
    let mut coach = s.connect("coach", Role::Coach, "laptop").await;
    let video = clip(
        d.path(),
        "long.mp4",
        SampleSpec {
            noise: 10,
            ..SampleSpec::small(20.0, 1280, 720)
        },
    );
    let r = upload(
        &s,
        "coach",
        Role::Coach,
        "long.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    media_frame(&mut coach, &id, LONG, |p| {
        p.stage == MediaStage::Transcoding && p.percent >= 5.0
    })
    .await;
    let media = s.app().media.clone().expect("media");
    let pid = media
        .workers
        .lock()
        .unwrap()
        .get(&id)
        .copied()
        .expect("a worker runs the job");
    // SAFETY: signalling a child process of this test's server.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    // Back to the queue, then done by a new worker.
    media_frame(&mut coach, &id, LONG, |p| p.stage == MediaStage::Queued).await;
    let ready = media_frame(&mut coach, &id, LONG, |p| p.stage.is_final()).await;
    assert_eq!(ready.stage, MediaStage::Ready, "{ready:?}");
    let new_pid = media.workers.lock().unwrap().get(&id).copied();
    assert_ne!(new_pid, Some(pid));
    assert_eq!(media.pool().unwrap().stats().retried, 1);
    assert!(matches!(
        coach.request(ClientMsg::Ping).await,
        Ok(Reply::Pong { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_and_jobs_can_be_cancelled() {
    let s = TestServer::start_with(|c| c.media.pool.queue_capacity = 1).await;
    let d = tempfile::tempdir().unwrap();
    let mut coach = s.connect("coach", Role::Coach, "laptop").await;
    let video = clip(
        d.path(),
        "v.mp4",
        SampleSpec {
            noise: 10,
            ..SampleSpec::small(15.0, 1280, 720)
        },
    );
    let a = upload(
        &s,
        "coach",
        Role::Coach,
        "a.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(a.status, 200);
    let a = a.json()["id"].as_str().unwrap().to_string();
    media_frame(&mut coach, &a, LONG, |p| p.stage == MediaStage::Transcoding).await;
    let b = upload(
        &s,
        "coach",
        Role::Coach,
        "b.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(b.status, 200, "one may wait");
    let b = b.json()["id"].as_str().unwrap().to_string();
    let c = upload(
        &s,
        "coach",
        Role::Coach,
        "c.mp4",
        &video,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(c.status, 503, "{:?}", String::from_utf8_lossy(&c.body));
    assert_eq!(c.json()["error"], "busy");
    let retry: u64 = c
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Only the uploader may cancel; cancelling the running job frees it.
    let other = s.connect("intruder", Role::Coach, "x").await;
    assert!(
        other
            .request(ClientMsg::CancelMedia { asset: a.clone() })
            .await
            .is_err()
    );
    assert_eq!(
        coach
            .request(ClientMsg::CancelMedia { asset: a.clone() })
            .await
            .expect("cancel"),
        Reply::Done
    );
    assert_eq!(
        media_frame(&mut coach, &a, LONG, |p| p.stage.is_final())
            .await
            .stage,
        MediaStage::Cancelled
    );
    assert_eq!(
        coach
            .request(ClientMsg::CancelMedia { asset: b.clone() })
            .await
            .expect("cancel queued"),
        Reply::Done
    );
    let err = coach
        .request(ClientMsg::CancelMedia { asset: a.clone() })
        .await
        .expect_err("already cancelled");
    assert!(
        matches!(
            err,
            ClientError::Server {
                code: ErrorCode::Conflict,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_over_is_attached_and_seen_live_by_another_member() {
    let s = TestServer::start().await;
    let (_coach, mut athlete, room) = coach_and_athlete(&s).await;
    let d = tempfile::tempdir().unwrap();
    let wav = clip(
        d.path(),
        "vo.wav",
        SampleSpec {
            video: VideoCodec::None,
            audio: AudioCodec::Pcm,
            volume_db: -30.0,
            ..SampleSpec::small(3.0, 0, 0)
        },
    );
    // Outsiders cannot attach to the room.
    let r = upload(
        &s,
        "stranger",
        Role::Coach,
        "vo.wav",
        &wav,
        serde_json::json!({"kind": "voice_over", "room": room, "at_ms": 1500.0}),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", String::from_utf8_lossy(&r.body));
    let r = upload(
        &s,
        "coach",
        Role::Coach,
        "vo.wav",
        &wav,
        serde_json::json!({"kind": "voice_over", "room": room, "at_ms": 1500.0}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let ann = athlete
        .wait_for(LONG, |f| match f {
            ServerFrame::Room { ev, .. } => match &ev.op {
                RoomOp::Add { ann } if matches!(&ann.shape, Shape::VoiceOver { asset } if *asset == id) => Some(ann.clone()),
                _ => None,
            },
            _ => None,
        })
        .await
        .expect("the athlete sees the voice-over op");
    assert_eq!((ann.author.as_str(), ann.t_ms), ("coach", 1500));
    assert!(
        (2900..=3200).contains(&ann.dur_ms.unwrap_or(0)),
        "{:?}",
        ann.dur_ms
    );
    let Reply::MediaLink { asset, base, .. } = athlete
        .request(ClientMsg::MediaLink { asset: id.clone() })
        .await
        .expect("member link")
    else {
        panic!()
    };
    let info = asset.info.expect("ready");
    let lufs = info.loudness_lufs.expect("measured");
    assert!((lufs + 16.0).abs() < 2.0, "{lufs}");
    let audio = get(&s, &format!("{}audio.m4a", base.unwrap()), None).await;
    assert_eq!(
        (audio.status, audio.header("content-type")),
        (200, Some("audio/mp4"))
    );
    // Clients cannot forge one.
    let forged = _coach
        .request(add(
            &room,
            "f1",
            chalktalk_protocol::Annotation {
                shape: Shape::VoiceOver { asset: id.clone() },
                ..line("f1", 0)
            },
        ))
        .await;
    assert!(
        matches!(
            forged,
            Err(ClientError::Server {
                code: ErrorCode::Forbidden,
                ..
            })
        ),
        "{forged:?}"
    );
}
