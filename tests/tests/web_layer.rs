//! `CtxLayer`'s rules, one by one, on a tower service called directly (no
//! sockets, so time can be paused): where the deadline comes from, what the
//! layer answers, and when the request's context ends.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use ctx_runtime::http::{ClientDisconnected, CtxLayer};
use ctx_runtime::{Context, Error};
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty};
use tokio::sync::{mpsc, oneshot};
use tower_layer::Layer;
use tower_service::Service;

/// A tower service from a closure.
#[derive(Clone)]
struct Handler<F>(F);

impl<F, Fut, B> Service<Request<()>> for Handler<F>
where
    F: FnMut(Request<()>) -> Fut,
    Fut: Future<Output = Result<Response<B>, Infallible>>,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = Fut;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Fut {
        (self.0)(req)
    }
}

/// A handler that hands its request's context to the test, then answers
/// with `body`, or never.
fn capturing<B: Send + 'static>(
    answer: impl Fn() -> Option<B> + Clone + Send + 'static,
) -> (
    impl Service<Request<()>, Response = Response<B>, Error = Infallible, Future: Send>,
    mpsc::UnboundedReceiver<Context>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = Handler(move |req: Request<()>| {
        let ctx = req
            .extensions()
            .get::<Context>()
            .cloned()
            .expect("CtxLayer inserts it");
        tx.send(ctx).unwrap();
        let answer = answer.clone();
        async move {
            match answer() {
                Some(body) => Ok(Response::new(body)),
                None => std::future::pending().await,
            }
        }
    });
    (handler, rx)
}

fn request(headers: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::builder();
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_earliest_of_max_grpc_timeout_and_request_timeout_wins() {
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Headers<'_>, Option<Duration>)] = &[
        (&[], Some(Duration::from_secs(10))),
        (&[("grpc-timeout", "5S")], Some(Duration::from_secs(5))),
        (
            &[("x-request-timeout", "3000")],
            Some(Duration::from_secs(3)),
        ),
        (&[("x-request-timeout", "2s")], Some(Duration::from_secs(2))),
        (
            &[("x-request-timeout", "1.5s")],
            Some(Duration::from_millis(1500)),
        ),
        (
            &[("x-request-timeout", "250ms")],
            Some(Duration::from_millis(250)),
        ),
        (
            &[("x-request-timeout", "0.5ms")],
            Some(Duration::from_micros(500)),
        ),
        (
            &[("grpc-timeout", "1S"), ("x-request-timeout", "3000")],
            Some(Duration::from_secs(1)),
        ),
        (
            &[("grpc-timeout", "4S"), ("x-request-timeout", "250")],
            Some(Duration::from_millis(250)),
        ),
        (
            &[("x-request-timeout", "60000")],
            Some(Duration::from_secs(10)),
        ),
        (&[("grpc-timeout", "1H")], Some(Duration::from_secs(10))),
    ];
    for (headers, expected) in cases {
        let (handler, mut contexts) = capturing(|| Some(Empty::<Bytes>::new()));
        let mut service = CtxLayer::new(Context::background())
            .max_timeout(Duration::from_secs(10))
            .layer(handler);
        let response = service.call(request(headers)).await.unwrap();
        let ctx = contexts.recv().await.unwrap();
        assert_eq!(ctx.remaining(), *expected, "{headers:?}");
        drop(response);
    }

    // No maximum and no header: no deadline.
    let (handler, mut contexts) = capturing(|| Some(Empty::<Bytes>::new()));
    let mut service = CtxLayer::new(Context::background()).layer(handler);
    let _response = service.call(request(&[])).await.unwrap();
    assert_eq!(contexts.recv().await.unwrap().deadline(), None);

    // A header of our own choosing, and the default one no longer read.
    let (handler, mut contexts) = capturing(|| Some(Empty::<Bytes>::new()));
    let mut service = CtxLayer::new(Context::background())
        .timeout_header(http::HeaderName::from_static("x-budget"))
        .layer(handler);
    let _response = service
        .call(request(&[("x-budget", "700"), ("x-request-timeout", "5")]))
        .await
        .unwrap();
    assert_eq!(
        contexts.recv().await.unwrap().remaining(),
        Some(Duration::from_millis(700))
    );
}

async fn text(response: Response<impl Body<Error: std::fmt::Debug>>) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn malformed_timeouts_are_refused_before_the_handler_runs() {
    const MS_OR_S: &str =
        "expected milliseconds (250), or a number with the unit ms or s (250ms, 5s, 1.5s)";
    const GRPC: &str = "expected 1 to 8 digits and one unit of H M S m u n (250m, 5S)";
    for (header, value, expected) in [
        (
            "x-request-timeout",
            "soon",
            format!(r#"malformed x-request-timeout header "soon": unknown unit; {MS_OR_S}"#),
        ),
        (
            "x-request-timeout",
            "-5",
            format!(
                r#"malformed x-request-timeout header "-5": not a plain decimal number; {MS_OR_S}"#
            ),
        ),
        // gRPC's units are not ours: never minutes, nor anything else.
        (
            "x-request-timeout",
            "250M",
            format!(
                r#"malformed x-request-timeout header "250M": unknown unit; {MS_OR_S}; this is the gRPC format, which belongs in the grpc-timeout header"#
            ),
        ),
        (
            "x-request-timeout",
            "250m",
            format!(
                r#"malformed x-request-timeout header "250m": unknown unit; {MS_OR_S}; this is the gRPC format, which belongs in the grpc-timeout header"#
            ),
        ),
        (
            "x-request-timeout",
            "2S",
            format!(
                r#"malformed x-request-timeout header "2S": unknown unit; {MS_OR_S}; this is the gRPC format, which belongs in the grpc-timeout header"#
            ),
        ),
        (
            "grpc-timeout",
            "5s",
            format!(r#"malformed grpc-timeout header "5s": unknown unit; {GRPC}"#),
        ),
        (
            "grpc-timeout",
            "123456789m",
            format!(r#"malformed grpc-timeout header "123456789m": more than 8 digits; {GRPC}"#),
        ),
    ] {
        let (handler, mut contexts) = capturing(|| Some(Empty::<Bytes>::new()));
        let mut service = CtxLayer::new(Context::background()).layer(handler);
        let response = service.call(request(&[(header, value)])).await.unwrap();
        assert_eq!(response.status(), 400, "{header}: {value}");
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            response.headers()["content-length"],
            expected.len().to_string().as_str()
        );
        assert_eq!(text(response).await, expected);

        // gRPC: INTERNAL, as grpc-go answers, with the same words.
        let grpc = request(&[("content-type", "application/grpc"), (header, value)]);
        let response = service.call(grpc).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["grpc-status"], "13");
        assert_eq!(response.headers()["grpc-message"], expected.as_str());
        assert_eq!(text(response).await, "", "trailers-only");

        drop(service);
        assert!(contexts.recv().await.is_none(), "the handler never ran");
    }
}

#[tokio::test(start_paused = true)]
async fn a_bad_value_is_quoted_back_escaped_and_cut_short() {
    let (handler, _contexts) = capturing(|| Some(Empty::<Bytes>::new()));
    let mut service = CtxLayer::new(Context::background()).layer(handler);
    let value = http::HeaderValue::from_bytes(b"\"100%\xff").unwrap();
    let mut req = request(&[]);
    req.headers_mut().insert("x-request-timeout", value);
    req.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    let response = service.call(req).await.unwrap();
    // Printable ASCII in the message, and `%` percent-encoded for gRPC.
    assert_eq!(
        response.headers()["grpc-message"],
        r#"malformed x-request-timeout header "\"100%25\xff": not a plain decimal number; expected milliseconds (250), or a number with the unit ms or s (250ms, 5s, 1.5s)"#
    );

    let long = "9".repeat(100) + "x";
    let response = service
        .call(request(&[("x-request-timeout", &long)]))
        .await
        .unwrap();
    let body = text(response).await;
    assert!(
        body.starts_with(&format!(
            r#"malformed x-request-timeout header "{}...": "#,
            "9".repeat(40)
        )),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_passes_gives_504_or_deadline_exceeded() {
    // HTTP: 504, and why.
    let (handler, mut contexts) = capturing(|| None::<Empty<Bytes>>);
    let mut service = CtxLayer::new(Context::background()).layer(handler);
    let response = service
        .call(request(&[("x-request-timeout", "100")]))
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(response.headers()["content-length"], "25");
    assert_eq!(text(response).await, "request deadline exceeded");
    let ctx = contexts.recv().await.unwrap();
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));

    // gRPC: HTTP 200, content-type application/grpc, grpc-status 4.
    let response = service
        .call(request(&[
            ("content-type", "application/grpc+proto"),
            ("grpc-timeout", "100m"),
        ]))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "4");
    assert_eq!(
        response.headers()["grpc-message"],
        "request deadline exceeded"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty(), "a trailers-only response");
    assert_eq!(
        contexts.recv().await.unwrap().err(),
        Some(Error::DeadlineExceeded)
    );

    // Already expired: answered without polling the handler.
    let response = service
        .call(request(&[("grpc-timeout", "0n")]))
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_root_answers_503_or_unavailable() {
    let (root, shutdown) = Context::background().with_cancel();
    let (handler, mut contexts) = capturing(|| None::<Empty<Bytes>>);
    let mut service = CtxLayer::new(root).layer(handler);
    let http = tokio::spawn(service.call(request(&[])));
    let grpc = tokio::spawn(service.call(request(&[("content-type", "application/grpc")])));
    let (a, b) = (
        contexts.recv().await.unwrap(),
        contexts.recv().await.unwrap(),
    );
    shutdown.cancel_with_cause("maintenance");
    let http = http.await.unwrap().unwrap();
    assert_eq!(http.status(), 503);
    assert_eq!(text(http).await, "server shutting down");
    let grpc = grpc.await.unwrap().unwrap();
    assert_eq!(grpc.headers()["grpc-status"], "14");
    assert_eq!(grpc.headers()["grpc-message"], "server shutting down");
    for ctx in [a, b] {
        assert_eq!(ctx.cause().unwrap().to_string(), "maintenance");
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_response_future_is_a_client_disconnect() {
    let (handler, mut contexts) = capturing(|| None::<Empty<Bytes>>);
    let mut service = CtxLayer::new(Context::background()).layer(handler);
    let call = tokio::spawn(service.call(request(&[])));
    let ctx = contexts.recv().await.unwrap();
    assert!(!ctx.is_done());
    call.abort(); // what hyper does when the client goes away
    ctx.done().await;
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx.cause().unwrap().is::<ClientDisconnected>());
}

#[tokio::test(start_paused = true)]
async fn an_answered_request_is_cancelled_plainly() {
    let (handler, mut contexts) = capturing(|| Some(Empty::<Bytes>::new()));
    let mut service = CtxLayer::new(Context::background()).layer(handler);
    let response = service.call(request(&[])).await.unwrap();
    drop(response); // an empty body: the response is complete
    let ctx = contexts.recv().await.unwrap();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx.cause().unwrap().is::<Error>(), "not a disconnect");
}

#[tokio::test(start_paused = true)]
async fn a_head_response_dropped_unread_is_not_a_disconnect() {
    // hyper never sends (nor polls) the body of a response to HEAD.
    let (handler, mut contexts) = capturing(|| Some(String::from("a body HEAD never sends")));
    let mut service = CtxLayer::new(Context::background()).layer(handler);
    let mut head = request(&[]);
    *head.method_mut() = http::Method::HEAD;
    let response = service.call(head).await.unwrap();
    let ctx = contexts.recv().await.unwrap();
    assert_eq!(
        ctx.err(),
        Some(Error::Canceled),
        "answered: the request is over"
    );
    drop(response.into_body());
    assert!(
        ctx.cause().unwrap().is::<Error>(),
        "completed, not disconnected"
    );
}

/// A body fed by a channel: a streaming response.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// A handler answering with a streaming body whose sender goes to the test.
#[allow(clippy::type_complexity)]
fn streaming() -> (
    impl Service<Request<()>, Response = Response<ChannelBody>, Error = Infallible>,
    Arc<Mutex<Option<oneshot::Sender<(Context, mpsc::Sender<Bytes>)>>>>,
) {
    let slot: Arc<Mutex<Option<oneshot::Sender<_>>>> = Arc::new(Mutex::new(None));
    let handler = Handler({
        let slot = Arc::clone(&slot);
        move |req: Request<()>| {
            let ctx = req.extensions().get::<Context>().cloned().unwrap();
            let (tx, rx) = mpsc::channel(1);
            let give = slot.lock().unwrap().take().unwrap();
            give.send((ctx, tx)).unwrap();
            async move { Ok(Response::new(ChannelBody(rx))) }
        }
    });
    (handler, slot)
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_keeps_the_context_alive_until_it_ends() {
    let (handler, slot) = streaming();
    let mut service = CtxLayer::new(Context::background()).layer(handler);
    let (give, take) = oneshot::channel();
    *slot.lock().unwrap() = Some(give);
    let response = service.call(request(&[])).await.unwrap();
    let (ctx, chunks) = take.await.unwrap();
    let mut body = response.into_body();

    assert!(
        !ctx.is_done(),
        "the handler returned, but the body is still streaming"
    );
    chunks.send(Bytes::from_static(b"part 1")).await.unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "part 1");
    assert!(!ctx.is_done());

    drop(chunks); // the stream ends
    assert!(body.frame().await.is_none());
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(
        ctx.cause().unwrap().is::<Error>(),
        "completed, not disconnected"
    );
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_dropped_midway_is_a_client_disconnect() {
    let (handler, slot) = streaming();
    let mut service = CtxLayer::new(Context::background()).layer(handler);
    let (give, take) = oneshot::channel();
    *slot.lock().unwrap() = Some(give);
    let response = service.call(request(&[])).await.unwrap();
    let (ctx, chunks) = take.await.unwrap();
    let mut body = response.into_body();
    chunks.send(Bytes::from_static(b"part 1")).await.unwrap();
    body.frame().await.unwrap().unwrap();

    drop(body); // hyper drops the body when the client goes away mid-stream
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx.cause().unwrap().is::<ClientDisconnected>());
}

#[tokio::test(start_paused = true)]
async fn requests_are_children_of_the_root_and_counted_by_the_tracker() {
    struct Tenant(&'static str);
    let (root, _shutdown) = Context::background()
        .with_value(Tenant("acme"))
        .with_cancel();
    let tracker = ctx_runtime::TaskTracker::new();
    let (handler, mut contexts) = capturing(|| Some(String::from("a body to send")));
    let mut service = CtxLayer::new(root).tracker(tracker.clone()).layer(handler);
    let response = service.call(request(&[])).await.unwrap();
    let ctx = contexts.recv().await.unwrap();
    assert_eq!(ctx.value::<Tenant>().map(|t| t.0), Some("acme"));
    assert_eq!(tracker.len(), 1, "counted until the body is done");
    drop(response);
    assert!(tracker.is_empty());
}

mod axum_extractors {
    use super::*;
    use axum::Router;
    use axum::body::Body as AxumBody;
    use axum::routing::get;

    async fn required(ctx: Context) -> String {
        format!("deadline: {:?}", ctx.remaining())
    }

    async fn optional(ctx: Option<Context>) -> &'static str {
        if ctx.is_some() { "some" } else { "none" }
    }

    fn router() -> Router {
        Router::new()
            .route("/required", get(required))
            .route("/optional", get(optional))
    }

    async fn get_text(router: &mut Router, path: &str) -> (u16, String) {
        let request = Request::get(path)
            .header("x-request-timeout", "1000")
            .body(AxumBody::empty())
            .unwrap();
        let response = router.call(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn with_the_layer() {
        let mut app = router().layer(CtxLayer::new(Context::background()));
        let (status, body) = get_text(&mut app, "/required").await;
        assert_eq!((status, body.as_str()), (200, "deadline: Some(1s)"));
        assert_eq!(get_text(&mut app, "/optional").await, (200, "some".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn without_the_layer() {
        let mut app = router();
        let (status, body) = get_text(&mut app, "/required").await;
        assert_eq!(status, 500);
        assert!(body.contains("CtxLayer"), "{body}");
        assert_eq!(get_text(&mut app, "/optional").await, (200, "none".into()));
    }
}
