//! A request that sets its own deadline gets 504 when it passes, and the
//! work it started stops without writing: on the demo's real parts (see
//! `web_disconnect.rs`), over real connections.

use ctx_examples::demo::{CLIENT_HEADER, Event, Fixture, Mode};
use ctx_runtime::Error;
use std::time::Duration;

async fn deadline_header_gives_504_and_no_row(header: &str, value: &str) {
    let who = format!("{header}: {value}");
    let mut f = Fixture::start(Mode::WithCtxLayer).await;
    let response = reqwest::Client::new()
        .get(f.url("/report"))
        .header(CLIENT_HEADER, &who)
        .header(header, value)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);

    let started = f
        .events
        .wait_for(&who, "the handler", |e| {
            matches!(e, Event::HandlerStarted { .. })
        })
        .await;
    match started {
        Event::HandlerStarted {
            deadline: Some(left),
            ..
        } => assert!(left <= Duration::from_millis(200), "{left:?}"),
        other => panic!("no deadline: {other:?}"),
    }
    let end = f.events.task_end(&who).await;
    assert!(
        matches!(
            end,
            Event::TaskStopped {
                err: Error::DeadlineExceeded,
                ..
            }
        ),
        "{end:?}"
    );
    let upstream = f.events.upstream_end(&who).await;
    assert!(
        matches!(upstream, Event::UpstreamDropped { .. }),
        "{upstream:?}"
    );
    f.gate.open();
    f.server.shutdown().await.unwrap();
    assert_eq!(f.app.rows(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_timeout_in_milliseconds() {
    deadline_header_gives_504_and_no_row("x-request-timeout", "200").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_timeout_in_the_grpc_format() {
    deadline_header_gives_504_and_no_row("x-request-timeout", "150m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_on_a_plain_http_request() {
    deadline_header_gives_504_and_no_row("grpc-timeout", "100000u").await;
}
