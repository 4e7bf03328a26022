//! Deadlines and cancellation across three HTTP services, A -> B -> C
//! (`ctx_examples::hop::http`), over HTTP/1.1 and over HTTP/2: each hop's
//! server has `CtxLayer`, each hop's client is `send_ctx`, which sends what
//! its context has left as `x-request-timeout`.
//!
//! Real servers on loopback: time cannot be paused across sockets, so the
//! budgets are checked as bounds (less than the parent's by at least the
//! work it did, more than zero), and cancellation by the hops' events, never
//! by timing.

use std::net::SocketAddr;
use std::time::Duration;

use ctx_examples::hop::http::{self, Protocol, Work};
use ctx_examples::hop::{Events, HopEvent};
use ctx_runtime::http::ClientDisconnected;
use ctx_runtime::reqwest::SendError;
use ctx_runtime::{Context, Error, request_timeout};

/// Waits until `hop` starts: the timeout it received (parsed), and what its
/// context had left (`Duration::MAX`: no deadline).
async fn started(events: &mut Events, hop: &str) -> (Option<Duration>, Duration) {
    let (received, remaining) = events.started(hop).await;
    let received =
        received.map(|r| request_timeout::parse(&r).unwrap_or_else(|e| panic!("{r:?}: {e}")));
    (received, remaining.unwrap_or(Duration::MAX))
}

async fn chain(protocol: Protocol) -> (SocketAddr, Events) {
    let (log, events) = Events::new();
    let first = http::start_chain(protocol, log).await.unwrap();
    (first, events)
}

const WORK: Duration = Duration::from_millis(20);

async fn the_budget_shrinks_hop_by_hop(protocol: Protocol) {
    let (first, mut events) = chain(protocol).await;
    let budget = Duration::from_secs(10);
    let (ctx, _cancel) = Context::background().with_timeout(budget);
    let work = Work {
        work_ms: WORK.as_millis() as u32,
        hold_last: false,
    };
    let (status, body) = http::call_chain(&ctx, &http::client(protocol), first, work)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.lines().count(), 3, "{body}");

    let mut parent = budget;
    for hop in ["A", "B", "C"] {
        let (received, remaining) = started(&mut events, hop).await;
        let received = received.unwrap_or_else(|| panic!("{hop} received no deadline"));
        // A's parent is the client, which did no work before sending.
        let worked = if hop == "A" { Duration::ZERO } else { WORK };
        assert!(
            received <= parent - worked,
            "{hop} received {received:?}, its parent had {parent:?} and worked {worked:?}"
        );
        assert!(received > Duration::ZERO, "{hop}");
        // Its context's deadline is the received timeout, from arrival.
        assert!(remaining <= received, "{hop}: {remaining:?} > {received:?}");
        assert!(
            remaining > received.saturating_sub(Duration::from_secs(5)),
            "{hop}: {remaining:?} left of {received:?}"
        );
        parent = received;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_the_budget_shrinks_hop_by_hop() {
    the_budget_shrinks_hop_by_hop(Protocol::Http1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_the_budget_shrinks_hop_by_hop() {
    the_budget_shrinks_hop_by_hop(Protocol::Http2).await;
}

async fn when_the_client_leaves_every_hop_stops(protocol: Protocol) {
    let (first, mut events) = chain(protocol).await;
    // No deadline: only the client's leaving can stop the chain.
    let (ctx, leave) = Context::background().with_cancel();
    let work = Work {
        work_ms: 0,
        hold_last: true,
    };
    let call = tokio::spawn({
        let client = http::client(protocol);
        async move { http::call_chain(&ctx, &client, first, work).await }
    });
    for hop in ["A", "B", "C"] {
        let (received, _) = started(&mut events, hop).await;
        assert_eq!(received, None, "{hop}: no deadline anywhere");
    }

    // The client gives up: send_ctx drops its request to A.
    leave.cancel_with_cause("the user closed the tab");
    let result = call.await.unwrap();
    assert!(
        matches!(result, Err(SendError::Context(Error::Canceled))),
        "{result:?}"
    );

    // Each hop's handler stops, its context cancelled because its own client
    // (the hop before it) went away.
    let mut stopped = Vec::new();
    while stopped.len() < 3 {
        let (hop, err, cause) = events.stopped().await;
        assert_eq!(err, Error::Canceled, "{hop}");
        assert!(
            cause.as_ref().is_some_and(|c| c.is::<ClientDisconnected>()),
            "{hop}: {cause:?}"
        );
        stopped.push(hop);
    }
    stopped.sort();
    assert_eq!(stopped, ["A", "B", "C"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_when_the_client_leaves_every_hop_stops() {
    when_the_client_leaves_every_hop_stops(Protocol::Http1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_when_the_client_leaves_every_hop_stops() {
    when_the_client_leaves_every_hop_stops(Protocol::Http2).await;
}

/// A budget the chain cannot meet: the hop whose deadline passes first
/// stops with `DeadlineExceeded` (which one depends on the machine's load),
/// and the caller gets a 504, never a hang. The caller sends the header
/// itself and has no deadline of its own, so that it is never the one that
/// gives up first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_too_small_for_three_hops_ends_in_504() {
    let (first, mut events) = chain(Protocol::Http1).await;
    let work = Work {
        work_ms: 120,
        hold_last: false,
    };
    let response = reqwest::Client::new()
        .get(format!(
            "http://{first}{}?work_ms={}",
            http::PATH,
            work.work_ms
        ))
        .header("x-request-timeout", "300")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    events
        .next("a hop stopped by its deadline", |e| {
            matches!(
                e,
                HopEvent::Stopped {
                    err: Error::DeadlineExceeded,
                    ..
                }
            )
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_deadline_nothing_is_sent() {
    let (first, mut events) = chain(Protocol::Http1).await;
    let (status, _) = http::call_chain(
        &Context::background(),
        &http::client(Protocol::Http1),
        first,
        Work::default(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    for hop in ["A", "B", "C"] {
        let (received, remaining) = started(&mut events, hop).await;
        assert_eq!(received, None, "{hop}");
        assert_eq!(remaining, Duration::MAX, "{hop}: no deadline");
    }
}
