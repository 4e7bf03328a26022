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
async fn x_request_timeout_in_seconds_with_decimals() {
    deadline_header_gives_504_and_no_row("x-request-timeout", "0.15s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_timeout_with_the_unit_ms() {
    deadline_header_gives_504_and_no_row("x-request-timeout", "150ms").await;
}

/// `150m` is 150 ms in grpc-timeout, and 150 minutes to anyone who reads
/// `m` that way: x-request-timeout refuses it, and says what it accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_timeout_in_the_grpc_format_is_refused_with_why() {
    let who = "grpc format";
    let mut f = Fixture::start(Mode::WithCtxLayer).await;
    let response = reqwest::Client::new()
        .get(f.url("/report"))
        .header(CLIENT_HEADER, who)
        .header("x-request-timeout", "150m")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    for part in [
        "x-request-timeout",
        "\"150m\"",
        "250ms, 5s, 1.5s",
        "grpc-timeout",
    ] {
        assert!(body.contains(part), "{part:?} not in {body:?}");
    }
    f.server.shutdown().await.unwrap();
    assert!(
        !f.events
            .seen()
            .iter()
            .any(|e| matches!(e, Event::HandlerStarted { .. })),
        "the handler ran: {:#?}",
        f.events.seen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_on_a_plain_http_request() {
    deadline_header_gives_504_and_no_row("grpc-timeout", "100000u").await;
}
