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
    ClientFrame, ClientMsg, CloseCode, ErrorCode, JoinMode, Point, Reply, Role, ServerFrame, Shape,
    Style, decode_server, encode,
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
    let many = ClientMsg::Points {
        room: room.clone(),
        stroke: "s".into(),
        batch: 0,
        t_ms: 0,
        style: Style::default(),
        points: vec![Point(0.5, 0.5); 300],
    };
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
        let other = chalktalk::auth::Auth::new(b"not-the-server-secret-not-the-server");
        other.mint("coach", Role::Admin, 600).unwrap()
    };
    let (f, c) = raw_first(&s.url, &[], Some(hello(Some(forged), vec![1]))).await;
    assert_eq!(
        (code_of(&f), c),
        (Some(ErrorCode::Unauthorized), Some(CloseCode::UNAUTHORIZED))
    );

    let expired = {
        let claims = chalktalk::auth::Claims {
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
