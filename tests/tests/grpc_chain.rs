//! Deadlines and cancellation across three tonic services, A -> B -> C
//! (`ctx_examples::hop`): each hop's server has `CtxLayer`, each hop's client
//! sends what its context has left as `grpc-timeout`, and drops its call
//! (the HTTP/2 stream is reset) when its context ends.

use std::time::Duration;

use bytes::Bytes;
use ctx_examples::hop::{self, Events, HopRequest, Log};
use ctx_runtime::http::ClientDisconnected;
use ctx_runtime::{Context, Error, grpc_timeout};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tonic::Code;

fn parse(value: &str) -> Duration {
    grpc_timeout::parse(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hop_sends_at_most_what_it_received_minus_what_it_spent() {
    let first = hop::start_chain(Log::quiet()).await.unwrap();
    let budget = Duration::from_secs(5);
    let (ctx, _cancel) = Context::background().with_timeout(budget);
    let work = Duration::from_millis(20);
    let reply = hop::call_chain(&ctx, first, work.as_millis() as u32)
        .await
        .unwrap();

    let names: Vec<_> = reply.hops.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert!(parse(&reply.hops[0].received) <= budget);
    for pair in reply.hops.windows(2) {
        let (this, next) = (&pair[0], &pair[1]);
        assert_eq!(
            this.sent, next.received,
            "what {} sent is what {} got",
            this.name, next.name
        );
        let received = parse(&this.received);
        let sent = parse(&this.sent);
        let spent = Duration::from_micros(this.spent_us);
        assert!(
            spent >= work,
            "{} worked {work:?}, spent {spent:?}",
            this.name
        );
        assert!(
            sent <= received - spent,
            "{}: sent {sent:?} > received {received:?} - spent {spent:?}",
            this.name
        );
    }
    assert!(reply.hops[2].sent.is_empty(), "the last hop calls nobody");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_too_small_for_three_hops_fails_as_deadline_exceeded() {
    let first = hop::start_chain(Log::quiet()).await.unwrap();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(100));
    let status = hop::call_chain(&ctx, first, 40).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_is_not_sent_at_all() {
    let first = hop::start_chain(Log::quiet()).await.unwrap();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::ZERO);
    let status = hop::call_chain(&ctx, first, 0).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hop_starts_with_less_than_its_parent_had() {
    let (log, mut events) = Events::new();
    let first = hop::start_chain(log).await.unwrap();
    let budget = Duration::from_secs(10);
    let (ctx, _cancel) = Context::background().with_timeout(budget);
    hop::call_chain(&ctx, first, 20).await.unwrap();
    let mut parent = budget;
    for name in ["A", "B", "C"] {
        let (received, remaining) = events.started(name).await;
        let received = parse(&received.unwrap());
        let remaining = remaining.unwrap();
        assert!(received < parent, "{name}: {received:?} >= {parent:?}");
        assert!(
            remaining <= received,
            "{name}: {remaining:?} > {received:?}"
        );
        assert!(
            remaining > received.saturating_sub(Duration::from_secs(5)),
            "{name}: {remaining:?} of {received:?}"
        );
        parent = received;
    }
}

/// The caller gives up while C holds: every hop's handler stops, each
/// cancelled because its own client (the hop before) reset the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_client_leaves_every_hop_stops() {
    let (log, mut events) = Events::new();
    let first = hop::start_chain(log).await.unwrap();
    let (ctx, leave) = Context::background().with_cancel();
    let request = HopRequest {
        work_ms: 0,
        hold_last: true,
    };
    let call = tokio::spawn(async move { hop::call_chain_with(&ctx, first, request).await });
    for name in ["A", "B", "C"] {
        let (received, _) = events.started(name).await;
        assert_eq!(received, None, "{name}: no deadline anywhere");
    }

    leave.cancel_with_cause("the user closed the tab");
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Cancelled);
    assert_eq!(status.message(), "the user closed the tab");

    let mut stopped = Vec::new();
    while stopped.len() < 3 {
        let (name, err, cause) = events.stopped().await;
        assert_eq!(err, Error::Canceled, "{name}");
        assert!(
            cause.as_ref().is_some_and(|c| c.is::<ClientDisconnected>()),
            "{name}: {cause:?}"
        );
        stopped.push(name);
    }
    stopped.sort();
    assert_eq!(stopped, ["A", "B", "C"]);
}

/// An HTTP/2 connection to `addr` from hyper's client.
async fn raw_http2(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

fn raw_call(addr: std::net::SocketAddr, grpc_timeout: &str) -> http::Request<Empty<Bytes>> {
    http::Request::post(format!("http://{addr}/demo.Hop/Call"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", grpc_timeout)
        .body(Empty::<Bytes>::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_grpc_timeout_is_internal_with_why() {
    let c = hop::start("C", None, Log::quiet()).await.unwrap();
    let mut sender = raw_http2(c).await;
    let response = sender.send_request(raw_call(c, "5s")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "13", "INTERNAL");
    assert_eq!(
        response.headers()["grpc-message"],
        r#"malformed grpc-timeout header "5s": unknown unit; expected 1 to 8 digits and one unit of H M S m u n (250m, 5S)"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_layer_answers_deadline_exceeded_itself() {
    // A raw HTTP/2 client (tonic's client would apply the timeout itself and
    // never let the request reach the server): an already-expired
    // grpc-timeout makes CtxLayer answer at once, trailers-only.
    let c = hop::start("C", None, Log::quiet()).await.unwrap();
    let mut sender = raw_http2(c).await;
    let response = sender.send_request(raw_call(c, "0n")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "4", "DEADLINE_EXCEEDED");
    assert_eq!(
        response.headers()["grpc-message"],
        "request deadline exceeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_deadline_nothing_is_sent() {
    let first = hop::start_chain(Log::quiet()).await.unwrap();
    let reply = hop::call_chain(&Context::background(), first, 0)
        .await
        .unwrap();
    assert!(
        reply
            .hops
            .iter()
            .all(|h| h.received.is_empty() && h.sent.is_empty())
    );
}

/// `ctx_runtime::tonic::status` puts the cause in the message and keeps no
/// source that would print it a second time in a chain.
#[test]
fn a_status_prints_its_cause_once() {
    use std::error::Error as _;
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel_with_cause("the user closed the tab");
    let status = ctx_runtime::tonic::status(&ctx, Error::Canceled);
    assert_eq!(status.message(), "the user closed the tab");
    assert!(status.source().is_none());
    let status = ctx_runtime::tonic::request(&ctx, ()).unwrap_err();
    assert_eq!(status.message(), "the user closed the tab");
    assert!(status.source().is_none());
}
