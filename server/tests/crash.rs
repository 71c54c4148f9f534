//! Durability under `kill -9`: clients stream durable ops into several rooms
//! of a real `chalktalk serve` process, the process is SIGKILLed mid-load,
//! restarted on the same data dir, and every op any client saw acked must be
//! served by the restarted node under the seq it was acked with.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chalktalk_protocol::{Reply, Role};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_under_load_loses_no_acked_op() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::builder()
        .child()
        .in_dir(dir.path())
        .start()
        .await;
    let auth = chalktalk_services::auth::Auth::new(SECRET.as_bytes());
    let coach = connect(
        &server.url,
        auth.mint("coach", Role::Coach, 600).unwrap(),
        "d",
    )
    .await;
    let mut rooms = Vec::new();
    for r in 0..4 {
        rooms.push(create_room(&coach, &format!("v{r}")).await);
    }
    // Acked ops: (room, op id) -> seq.
    let acked: Arc<Mutex<BTreeMap<(String, String), u64>>> = Arc::default();
    let mut writers = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        for w in 0..4 {
            let c = connect(
                &server.url,
                auth.mint("coach", Role::Coach, 600).unwrap(),
                &format!("w{r}{w}"),
            )
            .await;
            let (room, acked) = (room.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let id = format!("w{w}-{n}");
                    match c.request(add(&room, &id, line(&id, n))).await {
                        Ok(Reply::Ack { seq, .. }) => {
                            acked.lock().unwrap().insert((room.clone(), id), seq);
                        }
                        _ => break,
                    }
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "load was too light to mean anything: {}",
        acked.len()
    );

    server.restart().await;
    let c = connect(
        &server.url,
        auth.mint("coach", Role::Coach, 600).unwrap(),
        "after",
    )
    .await;
    let mut checker = connect(
        &server.url,
        auth.mint("coach", Role::Coach, 600).unwrap(),
        "check",
    )
    .await;
    let mut checked = 0u64;
    for room in &rooms {
        let snapshot = common::snapshot(&c, room).await;
        let have: BTreeMap<&str, &chalktalk_protocol::Annotation> = snapshot
            .annotations
            .iter()
            .map(|a| (a.id.as_str(), a))
            .collect();
        let mut max_acked = 0;
        for ((r, id), seq) in &acked {
            if r == room {
                assert!(
                    have.contains_key(id.as_str()),
                    "acked op {id} (seq {seq}) lost in {room}"
                );
                max_acked = max_acked.max(*seq);
            }
        }
        assert!(snapshot.seq >= max_acked);
        // Every acked op is still the event with the seq it was acked under:
        // resending it is recognised as a duplicate of that seq.
        // (A fresh connection every 300 requests stays inside the frame burst.)
        for ((r, id), seq) in acked.iter().filter(|((r, _), _)| r == room) {
            checked += 1;
            if checked.is_multiple_of(300) {
                checker = connect(
                    &server.url,
                    auth.mint("coach", Role::Coach, 600).unwrap(),
                    "check",
                )
                .await;
            }
            let Reply::Ack { seq: again, dup } =
                checker.request(add(r, id, line(id, 0))).await.unwrap()
            else {
                panic!()
            };
            // The duplicate check is per user: these ops were all by "coach".
            assert_eq!((again, dup), (*seq, true), "{id}");
        }
        // And the room still takes new ops after the restart.
        let Reply::Ack { seq, dup: false } = c
            .request(add(room, "fresh", line("fresh", 0)))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(seq, snapshot.seq + 1);
    }
}

/// Kill -9 of a server while it transcodes: its worker dies with it, and
/// the restarted server re-queues the stored job and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_transcode_requeues_the_job() {
    use chalktalk_media::sample::SampleSpec;
    use chalktalk_protocol::MediaStage;
    use common::media::*;

    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let mut server = TestServer::builder()
        .child()
        .in_dir(dir.path())
        .start()
        .await;
    let auth = chalktalk_services::auth::Auth::new(SECRET.as_bytes());
    let token = auth.mint("coach", Role::Coach, 600).unwrap();
    let mut coach = connect(&server.url, token.clone(), "d").await;
    let video = clip(
        clips.path(),
        "long.mp4",
        SampleSpec {
            noise: 10,
            ..SampleSpec::small(20.0, 1280, 720)
        },
    );
    let addr = server.addr();
    let r = upload_to(addr, &token, "long.mp4", &video, serde_json::json!({})).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    media_frame(&mut coach, &id, LONG, |p| {
        p.stage == MediaStage::Transcoding && p.percent >= 5.0
    })
    .await;
    let server_pid = server.pid();
    let workers: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(server_pid)
        })
        .collect();
    assert!(!workers.is_empty(), "the server runs a worker process");
    server.kill9();
    // The workers die with their server.
    for _ in 0..100 {
        if workers.iter().all(|p| {
            !std::path::Path::new(&format!("/proc/{p}")).exists()
                || std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for p in &workers {
        let alive =
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "worker {p} outlived its server");
    }
    server.restart().await;
    let mut coach = connect(&server.url, token, "d").await;
    let done = media_frame(&mut coach, &id, LONG, |p| p.stage.is_final()).await;
    assert_eq!(done.stage, MediaStage::Ready, "{done:?}");
}
