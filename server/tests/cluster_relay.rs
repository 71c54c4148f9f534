//! A relay link broken under a room: three `chalktalk serve` processes on
//! one real PostgreSQL (started by the test). The room lives on n1; an
//! athlete is a member through n2, whose frames come down n1's relay link
//! to n2. The test destroys that TCP connection (`ss -K`, iproute2) while
//! the coach keeps writing, then the room falls quiet: the athlete's
//! connection is closed with 4008 (it missed frames), it reconnects and
//! resumes with `since`, and gets every acked op once, in order, with no
//! gap; the link is dialed again and later ops flow. Skipped with the
//! reason where sockets cannot be destroyed (a kernel without
//! `SOCK_DESTROY`).

mod common;

use std::process::Command;
use std::time::Duration;

use chalktalk_protocol::{JoinMode, Reply, Role, ServerFrame};
use common::cluster::{self, view};
use common::{add, line, postgres};

/// Destroys the TCP sockets of this machine whose peer port is `port`;
/// `Err` with why when the kernel does not allow it.
fn destroy_connections_to(port: u16) -> Result<String, String> {
    let out = Command::new("ss")
        .args([
            "-K",
            "-t",
            "dst",
            "127.0.0.1",
            "dport",
            "=",
            &port.to_string(),
        ])
        .output()
        .map_err(|e| format!("ss: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() || !text.contains(&format!(":{port}")) {
        return Err(format!(
            "ss -K found or destroyed nothing (status {}, stdout {text:?}, stderr {:?})",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_relay_link_closes_who_missed_frames_and_they_resume() {
    let (_pg, store) = postgres::start().await;
    let nodes = cluster::three(&store).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);

    let coach = n1.connect("coach", Role::Coach, "laptop").await;
    let room = common::create_room(&coach, "video-1").await;
    common::invite(&coach, &room, "athlete").await;
    common::join(&coach, &room, None).await;
    let mut athlete = n2.connect("athlete", Role::Athlete, "phone").await;
    common::join(&athlete, &room, None).await;
    let mut acked = Vec::new();
    for i in 0..5u64 {
        let id = format!("before-{i}");
        acked.push((
            common::ack(&coach, add(&room, &id, line(&id, i))).await.0,
            id,
        ));
    }
    let last_before = acked.last().map(|(s, _)| *s).unwrap_or(0);
    assert!(
        common::saw_event(&mut athlete, &room, last_before).await,
        "the link works before the break"
    );

    // Break n1's relay link to n2 (the socket dialed to n2's listener).
    let relay = view(n2).await["me"]["relay"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let port: u16 = relay
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("n2's relay address: {relay:?}"));
    if let Err(why) = destroy_connections_to(port) {
        eprintln!("SKIPPED: cannot break a TCP connection here: {why}");
        return;
    }
    // The coach keeps writing, then stops: some of these went down the
    // broken link.
    for i in 0..5u64 {
        let id = format!("after-{i}");
        acked.push((
            common::ack(&coach, add(&room, &id, line(&id, 10 + i)))
                .await
                .0,
            id,
        ));
    }
    let last = acked.last().map(|(s, _)| *s).unwrap_or(0);

    // The athlete gets every event, or is closed with 4008 and resumes:
    // either way it ends with every acked op, once, in order.
    let mut seqs: Vec<u64> = Vec::new();
    let got_all = athlete
        .wait_for(Duration::from_secs(5), |f| match f {
            ServerFrame::Room { ev, .. } => {
                seqs.push(ev.seq);
                (ev.seq == last).then_some(())
            }
            _ => None,
        })
        .await;
    if got_all.is_none() {
        let closed = athlete.closed(Duration::from_secs(5)).await;
        assert!(
            matches!(closed, Some((Some(4008), _))),
            "events {seqs:?} stopped short of {last} and the connection was not closed with 4008: {closed:?}"
        );
        println!("athlete closed: {closed:?}; events before the close: {seqs:?}");
        let resume_from = seqs.last().copied().unwrap_or(last_before);
        athlete = n2.connect("athlete", Role::Athlete, "phone").await;
        match common::join(&athlete, &room, Some(resume_from)).await {
            Reply::Joined {
                mode: JoinMode::Replay { .. },
                ..
            } => {
                let replayed = athlete
                    .wait_for(Duration::from_secs(5), |f| match f {
                        ServerFrame::Room { ev, .. } => {
                            seqs.push(ev.seq);
                            (ev.seq >= last).then_some(())
                        }
                        _ => None,
                    })
                    .await;
                assert!(
                    replayed.is_some(),
                    "the replay after {resume_from}: {seqs:?}"
                );
            }
            Reply::Joined {
                mode: JoinMode::Snapshot { snapshot },
                ..
            } => {
                let have: Vec<_> = snapshot.annotations.iter().map(|a| a.id.clone()).collect();
                for (_, id) in &acked {
                    assert!(have.contains(id), "{id} missing after the resume");
                }
                seqs.extend(resume_from + 1..=snapshot.seq);
            }
            other => panic!("resume: {other:?}"),
        }
    } else {
        println!("every event arrived without a close: {seqs:?}");
    }
    let want: Vec<u64> = (last_before + 1..=last).collect();
    let after: Vec<u64> = seqs.iter().copied().filter(|s| *s > last_before).collect();
    assert_eq!(after, want, "no gap and no duplicate across the break");

    // The link is dialed again: a new op reaches the athlete on n2.
    let (seq, _) = common::ack(&coach, add(&room, "later", line("later", 50))).await;
    assert!(
        common::saw_event(&mut athlete, &room, seq).await,
        "frames flow again after the break"
    );
    let metrics = n1.get("/metrics", None).await.text();
    println!(
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("chalktalk_relay"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
