//! Chat history on a PostgreSQL store: messages sent through one node are
//! paged back (`history`, newest first pages) by a new node with an empty
//! data dir on the same database, and a resent message id is still a
//! duplicate of its seq there.

mod pg_common;

use chalktalk::config::{Config, StoreConfig};
use chalktalk_adapters::postgres::test_server::TestServer;
use chalktalk_protocol::{ClientMsg, Reply, ThreadKind};

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
    let pg = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.store = StoreConfig::Postgres {
        url: pg.fresh_db().await,
    };
    let node = chalktalk::server::start(&config).await.unwrap();
    // The coach and the athlete work together (relationship facts, also in
    // PostgreSQL): the matrix lets them message each other.
    let facts = &node.app.perms.facts;
    facts.invite("coach", "athlete").await.expect("invite");
    facts
        .respond("coach", "athlete", true)
        .await
        .expect("accept");
    let c = pg_common::connect(&format!("ws://{}/ws", node.addr), "d").await;
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
    node.shutdown().await;

    let empty = tempfile::tempdir().unwrap();
    let mut config2 = Config::for_tests(empty.path());
    config2.store = config.store.clone();
    let node = chalktalk::server::start(&config2).await.unwrap();
    let c = pg_common::connect(&format!("ws://{}/ws", node.addr), "again").await;
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
    node.shutdown().await;
}
