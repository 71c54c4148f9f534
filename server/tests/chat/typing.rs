//! The server-side typing timeout: an indicator not renewed within
//! `typing_timeout` is ended by the server (`typing {on: false}` to the
//! other viewers); renewing it keeps it on; closing the thread while
//! typing ends it too.

use std::time::Instant;

use crate::*;

fn typing(thread: &str, on: bool) -> ClientMsg {
    ClientMsg::Typing {
        thread: thread.into(),
        on,
    }
}

fn shown(user: &str, on: bool) -> ThreadLive {
    ThreadLive::Typing {
        user: user.into(),
        on,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_ends_when_not_renewed_or_when_the_thread_is_closed() {
    let timeout = Duration::from_millis(400);
    let s = TestServer::start_with(move |c| c.core.typing_timeout = timeout).await;
    let (mut coach, athlete, t) = direct(&s).await;
    open(&coach, &t, None).await;
    open(&athlete, &t, None).await;

    // Not renewed: the server ends it after the timeout.
    let started = Instant::now();
    athlete.send(typing(&t, true)).unwrap();
    assert_eq!(next_live(&mut coach, &t).await, shown("athlete", true));
    assert_eq!(next_live(&mut coach, &t).await, shown("athlete", false));
    let took = started.elapsed();
    assert!(
        took >= timeout && took < timeout * 3,
        "ended after {took:?}"
    );

    // Renewed every 200 ms: stays on (each renewal is relayed), then ends
    // one timeout after the last renewal.
    athlete.send(typing(&t, true)).unwrap();
    assert_eq!(next_live(&mut coach, &t).await, shown("athlete", true));
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        athlete.send(typing(&t, true)).unwrap();
        assert_eq!(next_live(&mut coach, &t).await, shown("athlete", true));
    }
    let last = Instant::now();
    assert_eq!(next_live(&mut coach, &t).await, shown("athlete", false));
    assert!(last.elapsed() >= timeout - Duration::from_millis(50));

    // Ended by the client: no second `off` from the server later.
    athlete.send(typing(&t, true)).unwrap();
    assert_eq!(next_live(&mut coach, &t).await, shown("athlete", true));
    athlete.send(typing(&t, false)).unwrap();
    assert_eq!(next_live(&mut coach, &t).await, shown("athlete", false));
    assert_eq!(coach.wait_for(timeout * 2, pick_live(&t)).await, None);

    // Closing the thread (or dropping the connection) while typing ends it.
    athlete.send(typing(&t, true)).unwrap();
    assert_eq!(next_live(&mut coach, &t).await, shown("athlete", true));
    let r = athlete
        .request(ClientMsg::CloseThread { thread: t.clone() })
        .await
        .expect("close_thread");
    assert_eq!(r, Reply::Done);
    let started = Instant::now();
    assert_eq!(next_live(&mut coach, &t).await, shown("athlete", false));
    assert!(
        started.elapsed() < timeout,
        "ended by the close, not the timer"
    );
    assert_eq!(coach.wait_for(timeout * 2, pick_live(&t)).await, None);
}
