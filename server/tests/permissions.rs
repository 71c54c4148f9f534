//! The permission matrix end to end (issue 4): every plan × every REST
//! endpoint and WebSocket operation × own/other's resource, against one
//! real node with real accounts, checked against tables written here in
//! the terms (a changed cell fails a named case). Plus the
//! relationship lifecycle (invite → accept → end removes access at once),
//! the HTTP send seen live over WebSocket, 404-not-403 for other users'
//! resources, and the review room's own chat thread (room_chat.rs).

mod common;
/// The suite's other files, in tests/permissions/ (its fixture in world.rs).
mod permissions {
    pub mod downgrade;
    pub mod lifecycle;
    pub mod probe;
    pub mod room_chat;
    pub mod voice_over;
    pub mod world;
}

use chalktalk_actors::store::{MembershipKind, ThreadMeta};
use chalktalk_protocol::client::{Client, ClientError};
use chalktalk_protocol::{ClientMsg, Reply, RoomOp, ThreadKind};
use serde_json::{Value, json};

use permissions::world::{PLAN_USERS, World};

const T: bool = true;
const F: bool = false;

/// "ok" or the error code of a WebSocket request.
async fn ws(c: &Client, m: ClientMsg) -> String {
    match c.request(m).await {
        Ok(_) => "ok".into(),
        Err(ClientError::Server { code, .. }) => code.as_str().into(),
        Err(e) => panic!("transport error {e:?}"),
    }
}

fn send_msg(thread: &str, id: &str) -> ClientMsg {
    ClientMsg::Send {
        thread: thread.into(),
        msg_id: id.into(),
        text: "hello".into(),
        attachments: vec![],
        reply_to: None,
    }
}

/// Video access: (case, video id and owner ("" = the caller's own),
/// allowed per plan in the order Admin, CoachPremium, CoachBasic,
/// AthletePaid, AthleteFree).
const VIDEOS: [(&str, &str, &str, [bool; 5]); 5] = [
    ("own video", "", "", [T, T, T, T, T]),
    ("stranger's video", "v-sx", "sx", [T, F, F, F, F]),
    ("active athlete's video", "v-ar", "ar", [T, T, T, F, F]),
    (
        "4th active athlete's video",
        "v-zlate",
        "zlate",
        [T, T, F, F, F],
    ),
    ("granted video", "v-granted", "sx2", [T, F, F, T, F]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_access_by_plan_on_every_endpoint() {
    let w = World::start().await;
    w.facts().await;
    let admin = w.ws("admin").await;
    for (pi, name) in PLAN_USERS.iter().enumerate() {
        let tok = w.token(name);
        let me = w.ws(name).await;
        let coach_or_admin = pi < 3;
        let listed = async |q: &str| -> Vec<String> {
            let list = w.node.get(&format!("/api/v1/videos{q}"), Some(&tok)).await;
            assert_eq!(list.status, 200, "{name} GET /videos{q}");
            list.json()["videos"]
                .as_array()
                .expect("videos")
                .iter()
                .map(|v| v["id"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        let all = listed("").await;
        for (case, vid, owner, allowed) in VIDEOS {
            let owner = w.id(if owner.is_empty() { name } else { owner });
            let vid = if vid.is_empty() {
                format!("v-own-{name}")
            } else {
                vid.to_string()
            };
            let ok = allowed[pi];
            let at = format!("{name} / {case}");
            let r = w
                .node
                .get(&format!("/api/v1/videos/{vid}"), Some(&tok))
                .await;
            assert_eq!(r.status, if ok { 200 } else { 404 }, "GET /videos/id: {at}");
            if !ok {
                assert_eq!(r.json()["error"], "not_found", "{at}");
            }
            let r = w
                .node
                .get(&format!("/api/v1/videos/{vid}/reviews"), Some(&tok))
                .await;
            assert_eq!(r.status, if ok { 200 } else { 404 }, "GET reviews: {at}");
            // Admins list one owner's videos at a time.
            if *name != "admin" {
                assert_eq!(all.contains(&vid), ok, "GET /videos lists it: {at}");
            }
            let by_owner = listed(&format!("?owner={owner}")).await;
            assert_eq!(
                by_owner.contains(&vid),
                ok,
                "GET /videos?owner= lists it: {at}"
            );
            let link = ws(&me, ClientMsg::MediaLink { asset: vid.clone() }).await;
            assert_eq!(
                link,
                if ok { "ok" } else { "not_found" },
                "WS media_link: {at}"
            );
            // Cancelling: owner or admin (the asset is ready: conflict).
            let cancel = ws(&me, ClientMsg::CancelMedia { asset: vid.clone() }).await;
            let want = match (ok, owner == w.id(name) || *name == "admin") {
                (false, _) => "not_found",
                (true, true) => "conflict",
                (true, false) => "forbidden",
            };
            assert_eq!(cancel, want, "WS cancel_media: {at}");
            let create = ws(
                &me,
                ClientMsg::CreateRoom {
                    video_id: vid.clone(),
                    aspect: None,
                    fps: None,
                },
            )
            .await;
            let want = match (ok, coach_or_admin) {
                (true, true) => "ok",
                (true, false) => "forbidden", // athletes never create rooms
                (false, _) => "not_found",
            };
            assert_eq!(create, want, "WS create_room: {at}");
            // An admin's room on the video: inviting the user, then joining.
            let Reply::RoomCreated { room } = admin
                .request(ClientMsg::CreateRoom {
                    video_id: vid.clone(),
                    aspect: None,
                    fps: None,
                })
                .await
                .expect("admin creates")
            else {
                panic!("room")
            };
            let invite = if *name == "admin" {
                "ok".to_string() // the owner is a member already
            } else {
                ws(
                    &admin,
                    ClientMsg::Op {
                        room: room.clone(),
                        op_id: format!("inv-{name}"),
                        op: RoomOp::Invite { user: w.id(name) },
                    },
                )
                .await
            };
            assert_eq!(
                invite,
                if ok { "ok" } else { "forbidden" },
                "WS invite: {at}"
            );
            let join = ws(
                &me,
                ClientMsg::JoinRoom {
                    room: room.clone(),
                    since: None,
                },
            )
            .await;
            assert_eq!(
                join,
                if ok { "ok" } else { "forbidden" },
                "WS join_room: {at}"
            );
            if ok {
                // The membership index is written right after the invite
                // commits (asynchronously): poll until listed.
                let deadline = std::time::Instant::now() + common::WAIT;
                loop {
                    let r = w
                        .node
                        .get(&format!("/api/v1/videos/{vid}/reviews"), Some(&tok))
                        .await;
                    let body = r.json();
                    let listed = body["reviews"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x["room"] == room.as_str()));
                    if listed {
                        break;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "joined review listed: {at}"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// Messaging: (case, thread kind, other members, allowed per plan).
/// `ar`, `zlate`: active athletes of both coaches; `c3`: active coach of
/// `ap` and `af`; `sx`: a stranger athlete.
const MESSAGING: [(&str, ThreadKind, &[&str], [bool; 5]); 5] = [
    (
        "direct to an athlete",
        ThreadKind::Direct,
        &["ar"],
        [T, T, T, F, F],
    ),
    (
        "direct to a coach",
        ThreadKind::Direct,
        &["c3"],
        [T, T, F, T, F],
    ),
    (
        "direct to a stranger",
        ThreadKind::Direct,
        &["sx"],
        [T, T, F, F, F],
    ),
    (
        "group of active athletes",
        ThreadKind::Group,
        &["ar", "zlate"],
        [T, T, T, F, F],
    ),
    (
        "group with a stranger",
        ThreadKind::Group,
        &["ar", "sx"],
        [T, T, F, F, F],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messaging_by_plan_on_every_endpoint() {
    let w = World::start().await;
    w.facts().await;
    let store = w.app.perms.store.clone();
    // Someone else's thread.
    let others = ThreadMeta {
        id: "t-others".into(),
        kind: ThreadKind::Group,
        title: None,
        created_by: w.id("sx"),
        members: vec![w.id("sx"), w.id("sx2")],
        created_ms: 1,
    };
    store.create_thread(&others).await.expect("thread");
    for (pi, name) in PLAN_USERS.iter().enumerate() {
        let tok = w.token(name);
        let me = w.ws(name).await;
        for (ci, (case, kind, with, allowed)) in MESSAGING.iter().enumerate() {
            let ok = allowed[pi];
            let at = format!("{name} / {case}");
            let mut members: Vec<String> = with.iter().map(|u| w.id(u)).collect();
            let create = ws(
                &me,
                ClientMsg::CreateThread {
                    kind: *kind,
                    members: members.clone(),
                    title: None,
                },
            )
            .await;
            assert_eq!(
                create,
                if ok { "ok" } else { "forbidden" },
                "WS create_thread: {at}"
            );
            // The same thread as a stored fact, to send in.
            members.push(w.id(name));
            let id = format!("t-{ci}-{name}");
            let meta = ThreadMeta {
                id: id.clone(),
                kind: *kind,
                title: None,
                created_by: w.id(name),
                members: members.clone(),
                created_ms: 1,
            };
            store.create_thread(&meta).await.expect("thread");
            for m in &members {
                store
                    .add_membership(m, MembershipKind::Thread, &id)
                    .await
                    .expect("member");
            }
            let sent = ws(&me, send_msg(&id, "m1")).await;
            assert_eq!(sent, if ok { "ok" } else { "forbidden" }, "WS send: {at}");
            let path = format!("/api/v1/threads/{id}/messages");
            let r = w
                .node
                .post(&path, Some(&tok), json!({"msg_id": "m2", "text": "hi"}))
                .await;
            assert_eq!(r.status, if ok { 201 } else { 403 }, "POST messages: {at}");
            let r = w.node.get(&path, Some(&tok)).await;
            assert_eq!(r.status, 200, "GET messages of my thread: {at}");
            let n = r.json()["messages"].as_array().map(Vec::len);
            assert_eq!(n, Some(if ok { 2 } else { 0 }), "history: {at}");
        }
        // Another user's thread: never a member.
        let at = format!("{name} / other's thread");
        assert_eq!(
            ws(&me, send_msg("t-others", "x")).await,
            "not_member",
            "WS send: {at}"
        );
        let path = "/api/v1/threads/t-others/messages";
        let admin = *name == "admin";
        let r = w.node.get(path, Some(&tok)).await;
        assert_eq!(r.status, if admin { 200 } else { 404 }, "GET: {at}");
        let r = w
            .node
            .post(path, Some(&tok), json!({"msg_id": "x", "text": "x"}))
            .await;
        assert_eq!(r.status, if admin { 403 } else { 404 }, "POST: {at}");
    }
}

/// (plan user, analytics status, count keys, admin tools, c3's coach
/// profile visible, ar's profile visible, sx's profile visible).
type PlanCase = (
    &'static str,
    u16,
    &'static [&'static str],
    bool,
    bool,
    bool,
    bool,
);

/// Per plan: analytics status (and counts it shows), admin tools,
/// profiles and relationships.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_admin_profiles_relationships_by_plan() {
    let mut w = World::start().await;
    w.facts().await;
    let fresh = w
        .add("fresh", chalktalk_services::accounts::Plan::AthleteFree)
        .await;
    let n = &w.node;
    let put = |tok: String, body: Value| async move {
        n.req(
            "PUT",
            "/api/v1/profiles/me",
            Some(&tok),
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
    };
    let coach_profile = json!({"sports": ["squash"], "bio": "b", "experience_years": 3});
    let athlete_profile = json!({"sports": ["rowing"], "level": "elite"});
    assert_eq!(put(w.token("c3"), coach_profile.clone()).await.status, 200);
    assert_eq!(
        put(w.token("ar"), athlete_profile.clone()).await.status,
        200
    );
    assert_eq!(
        put(w.token("sx"), athlete_profile.clone()).await.status,
        200
    );
    // (plan user, analytics status, count keys, admin tools,
    //  c3's coach profile, ar's profile (active athlete of cp, cb), sx's)
    let expect: [PlanCase; 5] = [
        (
            "admin",
            200,
            &[
                "athlete_videos",
                "athletes",
                "messages",
                "reviews",
                "threads",
                "videos",
            ],
            T,
            T,
            T,
            T,
        ),
        (
            "cp",
            200,
            &[
                "athlete_videos",
                "athletes",
                "messages",
                "reviews",
                "threads",
                "videos",
            ],
            F,
            T,
            T,
            F,
        ),
        ("cb", 200, &["athletes", "reviews", "videos"], F, T, T, F),
        (
            "ap",
            200,
            &["coaches", "messages", "reviews", "threads", "videos"],
            F,
            T,
            F,
            F,
        ),
        ("af", 403, &[], F, T, F, F),
    ];
    for (name, status, keys, admin, c3, ar, sx) in expect {
        let tok = w.token(name);
        let r = n.get("/api/v1/analytics/me", Some(&tok)).await;
        assert_eq!(r.status, status, "{name} analytics");
        if status == 200 {
            let got: Vec<String> = r.json()["counts"]
                .as_object()
                .expect("counts")
                .keys()
                .cloned()
                .collect();
            assert_eq!(got, keys.to_vec(), "{name} analytics keys");
            assert_eq!(r.json()["counts"]["videos"], 1, "{name} own video counted");
        }
        let other = n
            .get(
                &format!("/api/v1/analytics/me?user={}", w.id("sx")),
                Some(&tok),
            )
            .await;
        assert_eq!(
            other.status,
            if admin {
                200
            } else if status == 403 {
                403
            } else {
                404
            },
            "{name} analytics of sx"
        );
        // Admin tools.
        let body = json!({"role": "athlete", "tier": "paid"})
            .to_string()
            .into_bytes();
        let r = n
            .req(
                "PUT",
                &format!("/api/v1/admin/users/{fresh}/plan"),
                Some(&tok),
                &[],
                Some(body),
            )
            .await;
        assert_eq!(r.status, if admin { 200 } else { 403 }, "{name} set plan");
        let r = n
            .post(
                "/api/v1/admin/grants",
                Some(&tok),
                json!({"athlete": fresh, "video": "v-sx"}),
            )
            .await;
        assert_eq!(r.status, if admin { 201 } else { 403 }, "{name} grant");
        let r = n
            .delete(&format!("/api/v1/admin/grants/{fresh}/v-sx"), Some(&tok))
            .await;
        assert_eq!(
            r.status,
            if admin { 204 } else { 403 },
            "{name} revoke grant"
        );
        // Profiles.
        for (who, ok) in [("c3", c3), ("ar", ar), ("sx", sx)] {
            let r = n
                .get(&format!("/api/v1/profiles/{}", w.id(who)), Some(&tok))
                .await;
            assert_eq!(
                r.status,
                if ok { 200 } else { 404 },
                "{name} GET profile of {who}"
            );
        }
        let mine = if name.starts_with('c') {
            coach_profile.clone()
        } else {
            athlete_profile.clone()
        };
        let r = put(tok.clone(), mine).await;
        assert_eq!(
            r.status,
            if admin { 403 } else { 200 },
            "{name} PUT own profile"
        );
        // Relationships: coaches invite, others may not.
        let r = n.get("/api/v1/relationships", Some(&tok)).await;
        assert_eq!(r.status, 200, "{name} list relationships");
        let r = n
            .post(
                "/api/v1/relationships",
                Some(&tok),
                json!({"athlete": w.id("sx2")}),
            )
            .await;
        let coach = name.starts_with('c');
        assert_eq!(r.status, if coach { 201 } else { 403 }, "{name} invite");
        // Someone else's relationship: 404 whatever the action.
        for action in ["accept", "decline", "end"] {
            let p = format!(
                "/api/v1/relationships/{}/{}/{action}",
                w.id("c3"),
                w.id("ap")
            );
            let r = n.post(&p, Some(&tok), json!({})).await;
            let mine = name == "ap";
            if !mine {
                assert_eq!(r.status, 404, "{name} {action} of c3–ap");
            }
        }
    }
    // Validation: 422 with fields.
    let r = put(
        w.token("cp"),
        json!({"sports": [], "experience_years": 200}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"], "validation_failed");
    assert!(
        r.json()["fields"]["sports"].is_string()
            && r.json()["fields"]["experience_years"].is_string()
    );
}
