//! Canonical example frames. `protocol/vectors.json` holds their encoded
//! bytes (hex) next to their meaning (JSON); the crate's tests check that
//! this build still encodes and decodes each one byte for byte, and a client
//! in another language can check itself against the same file.

use crate::{
    Annotation, ClientFrame, ClientMsg, ErrorCode, JoinMode, LiveEvent, LiveStroke, Point, Reply,
    RoomEvent, RoomOp, ServerFrame, Shape, StrokeBy, StrokeIn, Style, ThreadKind, Welcome,
    room::{Effect, PlaybackState, Role},
};

/// Named client frames.
pub fn client_vectors() -> Vec<(&'static str, ClientFrame)> {
    let ann = Annotation {
        id: "s-1".into(),
        author: String::new(),
        t_ms: 12_500,
        dur_ms: Some(3000),
        style: Style {
            color: 0xff3b30ff,
            width: 0.005,
        },
        shape: Shape::Stroke {
            points: vec![Point(0.25, 0.5), Point(0.375, 0.625)],
        },
    };
    vec![
        (
            "hello",
            ClientFrame {
                id: 1,
                m: ClientMsg::Hello {
                    v: vec![1],
                    token: Some("eyJ.e30.sig".into()),
                    device: "ipad-7".into(),
                    inbox_since: Some(3),
                },
            },
        ),
        (
            "join_room_resume",
            ClientFrame {
                id: 2,
                m: ClientMsg::JoinRoom {
                    room: "r-abc".into(),
                    since: Some(41),
                },
            },
        ),
        (
            "snapshot_page",
            ClientFrame {
                id: 3,
                m: ClientMsg::SnapshotPage {
                    room: "r-abc".into(),
                    seq: 9000,
                    page: 1,
                },
            },
        ),
        (
            "points_ephemeral",
            ClientFrame {
                id: 0,
                m: ClientMsg::Points(StrokeIn {
                    room: "r-abc".into(),
                    live: LiveStroke {
                        stroke: "s-1".into(),
                        batch: 0,
                        t_ms: 12_500,
                        style: Style::default(),
                        points: vec![Point(0.25, 0.5)],
                    },
                }),
            },
        ),
        (
            "op_add_stroke",
            ClientFrame {
                id: 3,
                m: ClientMsg::Op {
                    room: "r-abc".into(),
                    op_id: "dev7-op-17".into(),
                    op: RoomOp::Add { ann },
                },
            },
        ),
        (
            "op_slow_motion",
            ClientFrame {
                id: 4,
                m: ClientMsg::Op {
                    room: "r-abc".into(),
                    op_id: "dev7-op-18".into(),
                    op: RoomOp::Rate { rate: 0.25 },
                },
            },
        ),
        (
            "op_remove_member",
            ClientFrame {
                id: 13,
                m: ClientMsg::Op {
                    room: "r-abc".into(),
                    op_id: "dev7-op-19".into(),
                    op: RoomOp::Remove {
                        user: "athlete-1".into(),
                    },
                },
            },
        ),
        (
            "op_leave",
            ClientFrame {
                id: 14,
                m: ClientMsg::Op {
                    room: "r-abc".into(),
                    op_id: "dev9-op-3".into(),
                    op: RoomOp::Leave,
                },
            },
        ),
        (
            "send_message",
            ClientFrame {
                id: 5,
                m: ClientMsg::Send {
                    thread: "t-9".into(),
                    msg_id: "m-1".into(),
                    text: "Watch your left knee at 0:12".into(),
                    attachments: vec![],
                    reply_to: None,
                },
            },
        ),
        (
            "edit_message",
            ClientFrame {
                id: 11,
                m: ClientMsg::EditMessage {
                    thread: "t-9".into(),
                    msg_id: "m-2".into(),
                    of: 7,
                    text: "Watch your right knee at 0:12".into(),
                },
            },
        ),
        (
            "delete_message",
            ClientFrame {
                id: 12,
                m: ClientMsg::DeleteMessage {
                    thread: "t-9".into(),
                    msg_id: "m-3".into(),
                    of: 7,
                },
            },
        ),
        (
            "create_thread",
            ClientFrame {
                id: 6,
                m: ClientMsg::CreateThread {
                    kind: ThreadKind::Direct,
                    members: vec!["athlete-1".into()],
                    title: None,
                },
            },
        ),
        (
            "media_link",
            ClientFrame {
                id: 7,
                m: ClientMsg::MediaLink {
                    asset: "a-1f2e".into(),
                },
            },
        ),
        (
            "room_thread",
            ClientFrame {
                id: 8,
                m: ClientMsg::RoomThread {
                    room: "r-7c1d".into(),
                },
            },
        ),
    ]
}

/// Named server frames.
pub fn server_vectors() -> Vec<(&'static str, ServerFrame)> {
    vec![
        (
            "welcome",
            ServerFrame::Welcome(Welcome {
                v: 1,
                session: "s-00ff".into(),
                user: "coach-1".into(),
                role: Role::Coach,
                heartbeat_ms: 15_000,
                server_ms: 1_700_000_000_000,
                limits: crate::Limits::default(),
            }),
        ),
        (
            "ack",
            ServerFrame::Ok {
                id: 3,
                r: Reply::Ack {
                    seq: 42,
                    dup: false,
                },
            },
        ),
        (
            "joined_replay",
            ServerFrame::Ok {
                id: 2,
                r: Reply::Joined {
                    room: "r-abc".into(),
                    mode: JoinMode::Replay {
                        since: 41,
                        head: 42,
                    },
                    presence: vec![],
                },
            },
        ),
        (
            "joined_paged",
            ServerFrame::Ok {
                id: 2,
                r: Reply::Joined {
                    room: "r-abc".into(),
                    mode: JoinMode::Paged {
                        snapshot: crate::RoomSnapshot {
                            seq: 9000,
                            video_id: "v-1".into(),
                            owner: "coach-1".into(),
                            aspect: 1.5,
                            fps: 30.0,
                            members: vec!["coach-1".into(), "ana".into()],
                            annotations: vec![],
                            playback: PlaybackState {
                                playing: false,
                                position_ms: 0.0,
                                rate: 1.0,
                                at_server_ms: 1_700_000_000_000,
                                leader: "coach-1".into(),
                            },
                        },
                        annotations: 2500,
                        pages: 17,
                    },
                    presence: vec![],
                },
            },
        ),
        (
            "snapshot_page",
            ServerFrame::Ok {
                id: 3,
                r: Reply::SnapshotPage {
                    room: "r-abc".into(),
                    seq: 9000,
                    page: 1,
                    pages: 17,
                    annotations: vec![Annotation {
                        id: "s-1".into(),
                        author: "coach-1".into(),
                        t_ms: 12_500,
                        dur_ms: None,
                        style: Style::default(),
                        shape: Shape::Stroke {
                            points: vec![Point(0.25, 0.5), Point(0.375, 0.625)],
                        },
                    }],
                },
            },
        ),
        (
            "error_not_member",
            ServerFrame::Err {
                id: 2,
                code: ErrorCode::NotMember,
                msg: "you are not a member of room r-abc".into(),
            },
        ),
        (
            "room_event_playback",
            ServerFrame::Room {
                room: "r-abc".into(),
                ev: RoomEvent {
                    seq: 43,
                    by: "coach-1".into(),
                    op_id: "dev7-op-18".into(),
                    at_ms: 1_700_000_000_500,
                    op: RoomOp::Rate { rate: 0.25 },
                    target: None,
                    effects: vec![Effect::Playback {
                        state: PlaybackState {
                            playing: true,
                            position_ms: 12_500.0,
                            rate: 0.25,
                            at_server_ms: 1_700_000_000_500,
                            leader: "coach-1".into(),
                        },
                    }],
                },
            },
        ),
        (
            "room_event_removed",
            ServerFrame::Room {
                room: "r-abc".into(),
                ev: RoomEvent {
                    seq: 44,
                    by: "coach-1".into(),
                    op_id: "dev7-op-19".into(),
                    at_ms: 1_700_000_000_900,
                    op: RoomOp::Remove {
                        user: "athlete-1".into(),
                    },
                    target: None,
                    effects: vec![Effect::Unmember {
                        user: "athlete-1".into(),
                    }],
                },
            },
        ),
        (
            "inbox_removed",
            ServerFrame::Inbox(crate::InboxEvent {
                seq: 7,
                at_ms: 1_700_000_000_901,
                notice: crate::Notice::Removed {
                    room: "r-abc".into(),
                    by: "coach-1".into(),
                },
            }),
        ),
        (
            "live_points",
            ServerFrame::Live {
                room: "r-abc".into(),
                ev: LiveEvent::Points(StrokeBy {
                    user: "coach-1".into(),
                    live: LiveStroke {
                        stroke: "s-1".into(),
                        batch: 0,
                        t_ms: 12_500,
                        style: Style::default(),
                        points: vec![Point(0.25, 0.5)],
                    },
                }),
            },
        ),
        (
            "media_progress",
            ServerFrame::Media(crate::MediaProgress {
                asset: "a-1f2e".into(),
                kind: crate::MediaKind::Video,
                stage: crate::MediaStage::Transcoding,
                percent: 42.0,
                playable: true,
                info: Some(crate::MediaInfo {
                    duration_ms: 60_000,
                    width: 1920,
                    height: 1080,
                    fps: 30.0,
                    renditions: vec![crate::Rendition {
                        name: "480p".into(),
                        width: 854,
                        height: 480,
                        video_kbps: 0,
                        mp4: String::new(),
                        playlist: "hls/480p/index.m3u8".into(),
                        copied: false,
                    }],
                    master: Some("hls/master.m3u8".into()),
                    ..crate::MediaInfo::default()
                }),
                error: None,
            }),
        ),
        (
            "msg_edit",
            ServerFrame::Msg {
                thread: "t-9".into(),
                msg: crate::Message {
                    seq: 8,
                    id: "m-2".into(),
                    from: "coach-1".into(),
                    at_ms: 1_733_000_000_000,
                    text: "Watch your right knee at 0:12".into(),
                    attachments: vec![],
                    reply_to: None,
                    edit: Some(crate::MsgEdit::Edit { of: 7 }),
                },
            },
        ),
        (
            "room_thread_created",
            ServerFrame::Ok {
                id: 8,
                r: Reply::ThreadCreated {
                    thread: crate::ThreadInfo {
                        id: "rt-r-7c1d".into(),
                        kind: ThreadKind::Room,
                        title: None,
                        created_by: "coach-1".into(),
                        members: vec!["athlete-1".into(), "athlete-2".into(), "coach-1".into()],
                        head: 4,
                        room: Some("r-7c1d".into()),
                    },
                },
            },
        ),
    ]
}
