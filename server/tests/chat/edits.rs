//! Editing and deleting one's own message (`edit_message`,
//! `delete_message`): seen live, idempotent by msg id, in history and in
//! the catch-up of a resumed thread, with their refusals.

use chalktalk_protocol::MsgEdit;

use crate::*;

pub fn edit(thread: &str, msg_id: &str, of: u64, text: &str) -> ClientMsg {
    ClientMsg::EditMessage {
        thread: thread.into(),
        msg_id: msg_id.into(),
        of,
        text: text.into(),
    }
}

fn delete(thread: &str, msg_id: &str, of: u64) -> ClientMsg {
    ClientMsg::DeleteMessage {
        thread: thread.into(),
        msg_id: msg_id.into(),
        of,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_messages_are_edited_and_deleted_live_durably_and_once() {
    let s = TestServer::start().await;
    let (coach, mut athlete, t) = direct(&s).await;
    open(&athlete, &t, None).await;
    assert_eq!(ack(&coach, send(&t, "m1", "left knee")).await, (1, false));
    assert_eq!(ack(&athlete, send(&t, "m2", "ok")).await, (2, false));
    next_msgs(&mut athlete, &t, 2).await;

    // Edit: seen live by the other member, as a message of the stream.
    assert_eq!(
        ack(&coach, edit(&t, "e1", 1, "right knee")).await,
        (3, false)
    );
    let m = next_msg(&mut athlete, &t).await;
    assert_eq!(
        (m.seq, m.from.as_str(), m.text.as_str(), m.edit),
        (3, "coach", "right knee", Some(MsgEdit::Edit { of: 1 }))
    );
    // A resend with the same msg id is a duplicate, not a second edit.
    assert_eq!(
        ack(&coach, edit(&t, "e1", 1, "right knee")).await,
        (3, true)
    );

    // Refusals: someone else's message, an unknown one, an edit itself.
    let r = athlete.request(edit(&t, "x1", 1, "mine now")).await;
    assert_eq!(err_code(r), ErrorCode::Forbidden);
    let r = athlete.request(delete(&t, "x2", 1)).await;
    assert_eq!(err_code(r), ErrorCode::Forbidden);
    let r = coach.request(edit(&t, "x3", 99, "nothing there")).await;
    assert_eq!(err_code(r), ErrorCode::NotFound);
    let r = coach.request(delete(&t, "x4", 0)).await;
    assert_eq!(err_code(r), ErrorCode::NotFound);
    let r = coach.request(edit(&t, "x5", 3, "edit of an edit")).await;
    assert_eq!(err_code(r), ErrorCode::NotFound);
    let r = coach.request(edit(&t, "x6", 1, "  ")).await;
    assert_eq!(err_code(r), ErrorCode::Invalid);
    let long = "x".repeat(4001);
    let r = coach.request(edit(&t, "x7", 1, &long)).await;
    assert_eq!(err_code(r), ErrorCode::TextTooLong);
    let stranger = s.connect("stranger", Role::Athlete, "phone").await;
    let r = stranger.request(delete(&t, "x8", 1)).await;
    assert_eq!(err_code(r), ErrorCode::NotMember);

    // Delete: live, idempotent; then the message cannot be edited again.
    assert_eq!(ack(&coach, delete(&t, "d1", 1)).await, (4, false));
    let m = next_msg(&mut athlete, &t).await;
    assert_eq!(
        (m.seq, m.text.as_str(), m.edit),
        (4, "", Some(MsgEdit::Delete { of: 1 }))
    );
    assert_eq!(ack(&coach, delete(&t, "d1", 1)).await, (4, true));
    let r = coach.request(delete(&t, "d2", 1)).await;
    assert_eq!(err_code(r), ErrorCode::Conflict);
    let r = coach.request(edit(&t, "e2", 1, "back again")).await;
    assert_eq!(err_code(r), ErrorCode::Conflict);
    // Nothing else was sequenced by the refusals.
    sync(&athlete).await;
    assert!(
        athlete
            .wait_for(QUIET, |f| matches!(f, ServerFrame::Msg { .. })
                .then_some(()))
            .await
            .is_none()
    );

    // History pages carry the ops after (above) their targets.
    match athlete
        .request(history(&t, None, 10))
        .await
        .expect("history")
    {
        Reply::History { messages, more } => {
            assert!(!more);
            assert_eq!(seqs(&messages), vec![1, 2, 3, 4]);
            assert_eq!(messages[0].text, "left knee");
            assert_eq!(messages[2].edit, Some(MsgEdit::Edit { of: 1 }));
            assert_eq!(messages[3].edit, Some(MsgEdit::Delete { of: 1 }));
        }
        other => panic!("expected history, got {other:?}"),
    }

    // After a restart of the node, a resumed viewer replays the ops and the
    // deletion is still known.
    drop((coach, athlete));
    let mut s = s;
    s.restart().await;
    let coach = s.connect("coach", Role::Coach, "laptop").await;
    let mut athlete = s.connect("athlete", Role::Athlete, "phone").await;
    let (_, since, _) = open(&athlete, &t, Some(2)).await;
    assert_eq!(since, 2);
    let ops = next_msgs(&mut athlete, &t, 2).await;
    assert_eq!(seqs(&ops), vec![3, 4]);
    assert_eq!(ops[1].edit, Some(MsgEdit::Delete { of: 1 }));
    let r = coach.request(edit(&t, "e3", 1, "after restart")).await;
    assert_eq!(err_code(r), ErrorCode::Conflict);
    assert_eq!(ack(&coach, delete(&t, "d1", 1)).await, (4, true));
}
