//! Graceful shutdown: cancelling the server's root context cancels every
//! request in flight and every task under one, and the tracker's `wait`
//! returns once they have all finished.

use ctx_examples::demo::{CLIENT_HEADER, Event, Fixture, Mode};
use ctx_runtime::Error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_in_flight_requests_and_waits_for_them() {
    let mut f = Fixture::start(Mode::WithCtxLayer).await;
    let client = reqwest::Client::new();
    let requests: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|who| {
            tokio::spawn(
                client
                    .get(f.url("/report"))
                    .header(CLIENT_HEADER, who)
                    .send(),
            )
        })
        .collect();
    for who in ["a", "b"] {
        f.events
            .wait_for(who, "the upstream request", |e| {
                matches!(e, Event::UpstreamReceived { .. })
            })
            .await;
    }
    assert_eq!(
        f.app.tracker().len(),
        4,
        "two requests and two tasks are counted"
    );

    // Cancel the root, close the tracker, wait for it: returns only once
    // every request and task has finished.
    f.server.shutdown().await.unwrap();
    assert!(f.app.tracker().is_empty());

    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), 503, "the layer answers for the handler");
    }
    for who in ["a", "b"] {
        let end = f.events.task_end(who).await;
        match end {
            Event::TaskStopped { err, cause, .. } => {
                assert_eq!(err, Error::Canceled);
                assert_eq!(cause.unwrap().to_string(), "server shutting down");
            }
            other => panic!("{other:?}"),
        }
        let upstream = f.events.upstream_end(who).await;
        assert!(
            matches!(upstream, Event::UpstreamDropped { .. }),
            "{upstream:?}"
        );
    }
    f.gate.open();
    assert_eq!(f.app.rows(), 0);
}
