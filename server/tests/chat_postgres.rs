//! Chat history on a PostgreSQL store: messages sent through one node are
//! paged back (`history`, newest first pages) by a new node with an empty
//! data dir on the same database, and a resent message id is still a
//! duplicate of its seq there.

mod common;

use chalktalk_protocol::{ClientMsg, Reply, Role, ThreadKind};
use common::{TestServer, postgres, relate};

fn send(thread: &str, n: u64) -> ClientMsg {
    ClientMsg::Send {
        thread: thread.into(),
        msg_id: format!("m{n}"),
        text: format!("message {n}"),
        attachments: vec![],
        reply_to: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_history_survives_on_postgres() {
    let (_pg, store) = postgres::start().await;
    let mut node = TestServer::builder().postgres(&store).start().await;
    // The coach and the athlete work together (relationship facts, also in
    // PostgreSQL): the matrix lets them message each other.
    relate(&node, "coach", "athlete").await;
    let c = node.connect("coach", Role::Coach, "d").await;
    let Reply::ThreadCreated { thread } = c
        .request(ClientMsg::CreateThread {
            kind: ThreadKind::Direct,
            members: vec!["athlete".into()],
            title: None,
        })
        .await
        .unwrap()
    else {
        panic!("thread not created")
    };
    for n in 1..=30 {
        let Reply::Ack { seq, dup: false } = c.request(send(&thread.id, n)).await.unwrap() else {
            panic!("message {n} not acked")
        };
        assert_eq!(seq, n);
    }
    drop(c);
    node.stop().await;

    // A new node with an empty data dir on the same database.
    let mut node = TestServer::builder().postgres(&store).start().await;
    let c = node.connect("coach", Role::Coach, "again").await;
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let Reply::History { messages, more } = c
            .request(ClientMsg::History {
                thread: thread.id.clone(),
                before,
                limit: 8,
            })
            .await
            .unwrap()
        else {
            panic!("history expected")
        };
        before = messages.first().map(|m| m.seq);
        seen.splice(0..0, messages);
        if !more {
            break;
        }
    }
    let texts: Vec<String> = seen.iter().map(|m| m.text.clone()).collect();
    let want: Vec<String> = (1..=30).map(|n| format!("message {n}")).collect();
    assert_eq!(texts, want);
    let Reply::Ack { seq, dup } = c.request(send(&thread.id, 7)).await.unwrap() else {
        panic!("resend not acked")
    };
    assert_eq!((seq, dup), (7, true));
    node.stop().await;
}
