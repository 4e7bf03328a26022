//! Deadlines across three tonic services, A -> B -> C (`ctx_examples::hop`):
//! each hop's server has `CtxLayer`, each hop's client sends what its
//! context has left as `grpc-timeout`.

use std::time::Duration;

use bytes::Bytes;
use ctx_examples::hop::{self, Log};
use ctx_runtime::{Context, grpc_timeout};
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
async fn the_server_layer_answers_deadline_exceeded_itself() {
    // A raw HTTP/2 client (tonic's client would apply the timeout itself and
    // never let the request reach the server): an already-expired
    // grpc-timeout makes CtxLayer answer at once, trailers-only.
    let c = hop::start("C", None, Log::quiet()).await.unwrap();
    let io = TokioIo::new(TcpStream::connect(c).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{c}/demo.Hop/Call"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "0n")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
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
