//! Bad input over a real socket: malformed MessagePack, unknown types, bad
//! fields, oversized frames, too many points, invalid coordinates, bad or
//! missing tokens, wrong versions, text frames and floods. Each gets its
//! documented error or close code; the server keeps serving everyone else
//! and nothing acked is lost.

mod common;

use std::time::Duration;

use bytes::Bytes;
use chalktalk_protocol::client::ClientError;
use chalktalk_protocol::{
    ClientFrame, ClientMsg, CloseCode, ErrorCode, JoinMode, LiveStroke, Point, Reply, Role,
    ServerFrame, Shape, StrokeIn, Style, decode_server, encode,
};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn err_with(c: &mut chalktalk_protocol::client::Client) -> (u32, ErrorCode) {
    c.wait_for(WAIT, |f| match f {
        ServerFrame::Err { id, code, .. } => Some((*id, *code)),
        _ => None,
    })
    .await
    .expect("an error frame")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_errors_and_the_connection_survives() {
    let s = TestServer::start().await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    let (kept, _) = ack(&coach, add(&room, "before", line("kept", 0))).await;
    assert_eq!(next_event(&mut athlete).await.seq, kept);

    let mut bad = s.connect("coach", Role::Coach, "fuzz").await;
    bad.send_raw(vec![0xc1, 0xff, 0x00]).unwrap();
    assert_eq!(err_with(&mut bad).await, (0, ErrorCode::BadFrame));
    bad.send_raw(encode(&serde_json_like::unknown(7))).unwrap();
    assert_eq!(err_with(&mut bad).await, (7, ErrorCode::UnknownType));
    bad.send_raw(encode(&serde_json_like::bad_field(8)))
        .unwrap();
    assert_eq!(err_with(&mut bad).await, (8, ErrorCode::Invalid));
    bad.send_text("{\"t\":\"ping\"}").unwrap();
    assert_eq!(err_with(&mut bad).await, (0, ErrorCode::BadFrame));

    // Too many points in a live batch, and a NaN coordinate.
    join(&bad, &room, None).await;
    let many = ClientMsg::Points(StrokeIn {
        room: room.clone(),
        live: LiveStroke {
            stroke: "s".into(),
            batch: 0,
            t_ms: 0,
            style: Style::default(),
            points: vec![Point(0.5, 0.5); 300],
        },
    });
    bad.send_frame(&ClientFrame { id: 9, m: many }).unwrap();
    assert_eq!(err_with(&mut bad).await, (9, ErrorCode::TooManyPoints));
    let mut nan = line("nan", 0);
    nan.shape = Shape::Line {
        a: Point(f32::NAN, 0.1),
        b: Point(0.2, 0.2),
    };
    let e = bad.request(add(&room, "n", nan)).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::InvalidCoordinates,
                ..
            }
        ),
        "{e:?}"
    );
    let mut outside = line("out", 0);
    outside.shape = Shape::Rect {
        a: Point(-0.1, 0.1),
        b: Point(1.2, 0.2),
    };
    let e = bad.request(add(&room, "o", outside)).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::InvalidCoordinates,
                ..
            }
        ),
        "{e:?}"
    );
    let e = bad
        .request(add(&room, "bad id with spaces", line("x", 0)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::Invalid,
                ..
            }
        ),
        "{e:?}"
    );
    // A second hello is refused without closing.
    let e = bad
        .request(ClientMsg::Hello {
            v: vec![1],
            token: None,
            device: "x".into(),
            inbox_since: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Server {
                code: ErrorCode::HelloRequired,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        matches!(bad.request(ClientMsg::Ping).await, Ok(Reply::Pong { .. })),
        "still connected"
    );

    // An oversized frame closes that connection with 1009 ...
    bad.send_raw(vec![0x90; 70 * 1024]).unwrap();
    let closed = bad.closed(WAIT).await.expect("closed");
    assert_eq!(closed.0, Some(CloseCode::TOO_BIG), "{closed:?}");

    // ... and nobody else noticed: the athlete still gets events, the
    // acked op is still there.
    let (seq, _) = ack(&coach, add(&room, "after", line("after", 0))).await;
    let ev = next_event(&mut athlete).await;
    assert_eq!(ev.seq, seq);
    let late = s.connect("coach", Role::Coach, "check").await;
    let Reply::Joined {
        mode: JoinMode::Snapshot { snapshot },
        ..
    } = join(&late, &room, None).await
    else {
        panic!()
    };
    assert!(snapshot.annotations.iter().any(|a| a.id == "kept"));
    assert!(snapshot.seq > kept);
}

/// Handcrafted frames that the typed API cannot produce.
mod serde_json_like {
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct Frame<M> {
        id: u32,
        m: M,
    }

    #[derive(Serialize)]
    pub struct Unknown {
        t: &'static str,
    }

    #[derive(Serialize)]
    pub struct BadField {
        t: &'static str,
        room: u32,
    }

    pub fn unknown(id: u32) -> Frame<Unknown> {
        Frame {
            id,
            m: Unknown { t: "teleport" },
        }
    }

    pub fn bad_field(id: u32) -> Frame<BadField> {
        Frame {
            id,
            m: BadField {
                t: "join_room",
                room: 5,
            },
        }
    }
}

/// Opens a raw socket, optionally with extra headers, sends `first` and
/// returns the first server frame and the close code.
async fn raw_first(
    url: &str,
    headers: &[(&'static str, String)],
    first: Option<Message>,
) -> (Option<ServerFrame>, Option<u16>) {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    if let Some(m) = first {
        ws.send(m).await.unwrap();
    }
    let mut frame = None;
    let mut code = None;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(12), ws.next()).await {
        match m {
            Message::Binary(b) => {
                let f = decode_server(&b).unwrap();
                if frame.is_none() {
                    frame = Some(f);
                }
                if matches!(frame, Some(ServerFrame::Welcome(_))) {
                    break;
                }
            }
            Message::Close(c) => {
                code = c.map(|c| u16::from(c.code));
                break;
            }
            _ => {}
        }
    }
    (frame, code)
}

fn hello(token: Option<String>, v: Vec<u16>) -> Message {
    Message::Binary(Bytes::from(encode(&ClientFrame {
        id: 1,
        m: ClientMsg::Hello {
            v,
            token,
            device: "dev".into(),
            inbox_since: None,
        },
    })))
}

fn code_of(f: &Option<ServerFrame>) -> Option<ErrorCode> {
    match f {
        Some(ServerFrame::Err { code, .. }) => Some(*code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refusals_use_documented_codes() {
    let s = TestServer::start().await;
    let good = s.token("coach", Role::Coach);

    let forged = {
        let other = chalktalk_services::auth::Auth::new(b"not-the-server-secret-not-the-server");
        other.mint("coach", Role::Admin, 600).unwrap()
    };
    let (f, c) = raw_first(&s.url, &[], Some(hello(Some(forged), vec![1]))).await;
    assert_eq!(
        (code_of(&f), c),
        (Some(ErrorCode::Unauthorized), Some(CloseCode::UNAUTHORIZED))
    );

    let expired = {
        let claims = chalktalk_services::auth::Claims {
            sub: "coach".into(),
            role: Role::Coach,
            exp: 1_000_000,
            iat: 999_000,
            iss: "chalktalk".into(),
            aud: "chalktalk".into(),
            sid: None,
            plan: None,
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let (f, c) = raw_first(&s.url, &[], Some(hello(Some(expired), vec![1]))).await;
    assert_eq!(
        (code_of(&f), c),
        (
            Some(ErrorCode::TokenExpired),
            Some(CloseCode::TOKEN_EXPIRED)
        )
    );

    let (f, c) = raw_first(&s.url, &[], Some(hello(None, vec![1]))).await;
    assert_eq!(
        (code_of(&f), c),
        (Some(ErrorCode::Unauthorized), Some(CloseCode::UNAUTHORIZED))
    );

    let (f, c) = raw_first(&s.url, &[], Some(hello(Some(good.clone()), vec![9, 10]))).await;
    assert_eq!(
        (code_of(&f), c),
        (
            Some(ErrorCode::UnsupportedVersion),
            Some(CloseCode::UNSUPPORTED_VERSION)
        )
    );

    let ping = Message::Binary(Bytes::from(encode(&ClientFrame {
        id: 3,
        m: ClientMsg::Ping,
    })));
    let (f, c) = raw_first(&s.url, &[], Some(ping)).await;
    assert_eq!(
        (code_of(&f), c),
        (
            Some(ErrorCode::HelloRequired),
            Some(CloseCode::HELLO_REQUIRED)
        )
    );

    let (f, c) = raw_first(&s.url, &[], Some(Message::Text("hello".into()))).await;
    assert_eq!(
        (code_of(&f), c),
        (
            Some(ErrorCode::HelloRequired),
            Some(CloseCode::HELLO_REQUIRED)
        )
    );

    // The token may come as a header or as a subprotocol instead.
    let (f, _) = raw_first(
        &s.url,
        &[("authorization", format!("Bearer {good}"))],
        Some(hello(None, vec![1])),
    )
    .await;
    assert!(
        matches!(f, Some(ServerFrame::Welcome(ref w)) if w.user == "coach"),
        "{f:?}"
    );
    let proto = format!("chalktalk.v1, bearer.{good}");
    let (f, _) = raw_first(
        &s.url,
        &[("sec-websocket-protocol", proto)],
        Some(hello(None, vec![1, 2])),
    )
    .await;
    assert!(
        matches!(f, Some(ServerFrame::Welcome(ref w)) if w.v == 1),
        "{f:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_then_closed_without_hurting_others() {
    let s = TestServer::start().await;
    let (coach, mut athlete, room) = coach_and_athlete(&s).await;
    let mut flooder = s.connect("athlete", Role::Athlete, "bot").await;
    let burst = flooder.welcome.limits.frame_burst;
    for _ in 0..(burst + 50) {
        flooder
            .send_frame(&ClientFrame {
                id: 42,
                m: ClientMsg::Ping,
            })
            .unwrap();
    }
    assert_eq!(err_with(&mut flooder).await, (42, ErrorCode::RateLimited));
    // Keep flooding: the connection is closed with 4009.
    for _ in 0..2000 {
        if flooder
            .send_frame(&ClientFrame {
                id: 0,
                m: ClientMsg::Ping,
            })
            .is_err()
        {
            break;
        }
    }
    let closed = flooder.closed(WAIT).await.expect("closed");
    assert_eq!(closed.0, Some(CloseCode::FLOOD));
    let (seq, _) = ack(&coach, add(&room, "x", line("x", 0))).await;
    assert_eq!(next_event(&mut athlete).await.seq, seq);
}

/// A burst far past the limit gets every documented answer, in order: a
/// pong per token, `rate_limited` for the next 199, then the 4009 close
/// (not "the outbound queue is full" with the answers lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_burst_gets_its_answers_then_4009() {
    // A slow refill, so the burst is refused in one run of 200.
    let s = TestServer::start_with(|c| c.core.limits.frames_per_sec = 1).await;
    let (coach, _athlete, room) = coach_and_athlete(&s).await;
    // A room whose (inline) snapshot is ~160 KB, in 350 ops (within the
    // coach's own burst of 400 frames).
    let adds = (0..350).map(|i| {
        let ann = chalktalk_protocol::Annotation {
            shape: Shape::Stroke {
                points: vec![Point(0.5, 0.5); 40],
            },
            ..line(&format!("s{i}"), 0)
        };
        coach.request(add(&room, &format!("o{i}"), ann))
    });
    for r in futures_util::future::join_all(adds).await {
        assert!(matches!(r, Ok(Reply::Ack { .. })), "{r:?}");
    }
    // A small receive buffer and no reading: the first answers (20 joins,
    // ~3.2 MB) fill the socket, so the answers to the flood that follows
    // wait in the server's queue, as for a client on a slow link.
    let mut opts =
        chalktalk_protocol::client::ClientOptions::new(s.token("athlete", Role::Athlete), "bot");
    opts.recv_buffer = Some(4096);
    let mut flooder = chalktalk_protocol::client::Client::connect(&s.url, opts)
        .await
        .unwrap();
    let burst = flooder.welcome.limits.frame_burst;
    flooder.pause_reading();
    let mut id = 10_000;
    for _ in 0..20 {
        id += 1;
        let m = ClientMsg::JoinRoom {
            room: room.clone(),
            since: None,
        };
        flooder.send_frame(&ClientFrame { id, m }).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3000 {
        id += 1;
        if flooder
            .send_frame(&ClientFrame {
                id,
                m: ClientMsg::Ping,
            })
            .is_err()
        {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    flooder.resume_reading();
    // Every answer reaches the client before the close frame: the client
    // reads them all, in order, and then the close.
    let (mut joined, mut pongs, mut limited) = (0u32, 0u32, 0u32);
    let mut last_id = 0;
    while let Some(f) = flooder.next_push(Duration::from_millis(800)).await {
        let id = match f {
            ServerFrame::Ok {
                id,
                r: Reply::Joined { .. },
            } => {
                joined += 1;
                id
            }
            ServerFrame::Ok {
                id,
                r: Reply::Pong { .. },
            } => {
                pongs += 1;
                // A refilled token answers and resets the count of refusals.
                limited = 0;
                id
            }
            ServerFrame::Err {
                id,
                code: ErrorCode::RateLimited,
                ..
            } => {
                limited += 1;
                id
            }
            ServerFrame::Live { .. } => continue,
            other => panic!("unexpected {other:?}"),
        };
        assert!(id > last_id, "answers in order");
        last_id = id;
    }
    let closed = flooder.closed(WAIT).await.expect("closed");
    assert_eq!(
        closed,
        (
            Some(CloseCode::FLOOD),
            "sustained flood above the frame rate limit".to_string()
        )
    );
    assert_eq!(joined, 20);
    assert!(
        pongs + joined >= burst,
        "{pongs} pongs for a burst of {burst}"
    );
    assert_eq!(
        limited, 199,
        "the 200th refused frame closes without an err"
    );
}

/// `bad_frame` errors echo the id whenever it can be read (§4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_ids_are_echoed_on_bad_frames() {
    let s = TestServer::start().await;
    let mut c = s.connect("athlete", Role::Athlete, "fuzz").await;
    #[derive(serde::Serialize)]
    struct F<M> {
        id: u32,
        m: M,
    }
    #[derive(serde::Serialize)]
    struct X {
        x: u8,
    }
    c.send_raw(encode(&F {
        id: 32,
        m: X { x: 1 },
    }))
    .unwrap();
    assert_eq!(err_with(&mut c).await, (32, ErrorCode::BadFrame));
    c.send_raw(encode(&F { id: 33, m: 7u8 })).unwrap();
    assert_eq!(err_with(&mut c).await, (33, ErrorCode::BadFrame));
    let mut bomb = encode(&F { id: 34, m: () });
    bomb.pop();
    bomb.extend_from_slice(&[0xdf, 0xff, 0xff, 0xff, 0xff]);
    c.send_raw(bomb).unwrap();
    assert_eq!(err_with(&mut c).await, (34, ErrorCode::BadFrame));
    // Still usable.
    assert!(matches!(
        c.request(ClientMsg::Ping).await,
        Ok(Reply::Pong { .. })
    ));
}
