//! A response delivered in full is never a client disconnect (issue 10,
//! item 7), on real servers over loopback.
//!
//! hyper stops polling a response body whose end it already knows: after
//! the last byte of a `Content-Length` (from the header or the body's exact
//! size hint), and at once for the statuses and methods that carry no body
//! (HEAD, 204, 304, a 2xx answer to CONNECT). It then drops the body. The
//! request's context must end as a completed request (cause
//! `Error::Canceled`), not with `ClientDisconnected`. The negative controls
//! check that a client that really leaves mid-body still is one.
//!
//! Each handler hands the test its request's context and the sender of its
//! streaming body; the test feeds the body and waits for the context to end.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use ctx_runtime::http::{ClientDisconnected, CtxLayer};
use ctx_runtime::{Context, Error};
use http::{HeaderValue, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A streaming body fed by the test: it never ends by itself while its
/// sender lives, and knows its size only if told.
struct TestBody {
    chunks: mpsc::UnboundedReceiver<Bytes>,
    exact: Option<u64>,
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }

    fn size_hint(&self) -> SizeHint {
        self.exact
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// What a handler hands to the test.
struct Served {
    ctx: Context,
    body: mpsc::UnboundedSender<Bytes>,
}

type Handed = mpsc::UnboundedSender<Served>;

/// The handler's response: `status`, an optional `content-length` header,
/// and a [`TestBody`] whose sender goes to the test.
fn respond(
    handed: &Handed,
    ctx: Context,
    status: StatusCode,
    length_header: Option<u64>,
    exact: Option<u64>,
) -> Response {
    let (tx, rx) = mpsc::unbounded_channel();
    handed.send(Served { ctx, body: tx }).unwrap();
    let mut response = http::Response::new(TestBody { chunks: rx, exact });
    *response.status_mut() = status;
    if let Some(len) = length_header {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    response.into_response()
}

async fn length_header(State(h): State<Handed>, ctx: Context) -> Response {
    respond(&h, ctx, StatusCode::OK, Some(5), None)
}

async fn size_hint(State(h): State<Handed>, ctx: Context) -> Response {
    respond(&h, ctx, StatusCode::OK, None, Some(5))
}

async fn chunked(State(h): State<Handed>, ctx: Context) -> Response {
    respond(&h, ctx, StatusCode::OK, None, None)
}

async fn zero_length(State(h): State<Handed>, ctx: Context) -> Response {
    respond(&h, ctx, StatusCode::OK, Some(0), None)
}

async fn no_content(State(h): State<Handed>, ctx: Context) -> Response {
    respond(&h, ctx, StatusCode::NO_CONTENT, None, None)
}

async fn not_modified(State(h): State<Handed>, ctx: Context) -> Response {
    respond(&h, ctx, StatusCode::NOT_MODIFIED, None, None)
}

/// Any request the routes do not match, CONNECT included.
async fn tunnel(State(h): State<Handed>, ctx: Context) -> Response {
    respond(&h, ctx, StatusCode::OK, None, None)
}

/// A server with `CtxLayer` on 127.0.0.1 (HTTP/1.1 and HTTP/2), and the
/// receiver of what its handlers hand over.
async fn server() -> (SocketAddr, mpsc::UnboundedReceiver<Served>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/length-header", get(length_header))
        .route("/size-hint", get(size_hint))
        .route("/chunked", get(chunked))
        .route("/zero-length", get(zero_length))
        .route("/no-content", get(no_content))
        .route("/not-modified", get(not_modified))
        .fallback(tunnel)
        .with_state(tx)
        .layer(CtxLayer::new(Context::background()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

/// Fails the test instead of hanging it if `fut` never completes.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen"))
}

/// The request's context ended as a completed request.
async fn assert_completed(ctx: &Context, what: &str) {
    within("the end of the request's context", ctx.done()).await;
    let cause = ctx.cause().unwrap();
    assert!(
        !cause.is::<ClientDisconnected>(),
        "{what}: delivered in full, yet reported as a disconnect"
    );
    assert_eq!(ctx.err(), Some(Error::Canceled), "{what}");
    assert!(cause.is::<Error>(), "{what}: cause {cause}");
}

/// The request's context ended with `ClientDisconnected`.
async fn assert_disconnected(ctx: &Context, what: &str) {
    within("the end of the request's context", ctx.done()).await;
    let cause = ctx.cause().unwrap();
    assert!(cause.is::<ClientDisconnected>(), "{what}: cause {cause}");
}

/// An HTTP/1.1 connection from hyper's client.
async fn http1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    sender
}

/// An HTTP/2 connection from hyper's client.
async fn http2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

fn get_request(addr: SocketAddr, method: http::Method, path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap()
}

/// The body's bytes have all been sent, and hyper drops the body at once
/// (HTTP/1.1 never polls it again once the length is reached).
#[tokio::test]
async fn http1_the_last_byte_of_a_content_length_completes_the_request() {
    for path in ["/length-header", "/size-hint"] {
        let (addr, mut served) = server().await;
        let mut client = http1(addr).await;
        let response = client.send_request(get_request(addr, http::Method::GET, path));
        let response = tokio::spawn(response);
        let Served { ctx, body } = within("the handler", served.recv()).await.unwrap();
        body.send(Bytes::from_static(b"hello")).unwrap();
        let response = response.await.unwrap().unwrap();
        assert_eq!(response.headers()["content-length"], "5", "{path}");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "hello", "{path}");
        assert_completed(&ctx, path).await;
        drop(body); // the handler's stream is still open: it never ended by itself
    }
}

/// HTTP/2 polls a body until it ends; a client that read every declared
/// byte and resets the stream got the whole response all the same.
#[tokio::test]
async fn http2_a_client_that_read_the_whole_length_did_not_disconnect() {
    for path in ["/length-header", "/size-hint"] {
        let (addr, mut served) = server().await;
        let mut client = http2(addr).await;
        let response = client.send_request(get_request(addr, http::Method::GET, path));
        let response = tokio::spawn(response);
        let Served { ctx, body } = within("the handler", served.recv()).await.unwrap();
        body.send(Bytes::from_static(b"hello")).unwrap();
        let response = response.await.unwrap().unwrap();
        assert_eq!(response.headers()["content-length"], "5", "{path}");
        let mut incoming = response.into_body();
        let frame = incoming.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "hello", "{path}");
        drop(incoming); // all 5 bytes read: RST_STREAM(CANCEL)
        assert_completed(&ctx, path).await;
        drop(body);
    }
}

/// hyper sends no body for these (a `Content-Length: 0`, the statuses and
/// methods that carry none), and drops it without polling it.
#[tokio::test]
async fn http1_responses_without_a_body_complete_the_request() {
    for (method, path, status) in [
        (http::Method::GET, "/zero-length", 200),
        (http::Method::GET, "/no-content", 204),
        (http::Method::GET, "/not-modified", 304),
        (http::Method::HEAD, "/length-header", 200),
        (http::Method::HEAD, "/chunked", 200),
    ] {
        let what = format!("{method} {path}");
        let (addr, mut served) = server().await;
        let mut client = http1(addr).await;
        let response = client.send_request(get_request(addr, method, path));
        let response = tokio::spawn(response);
        let Served { ctx, body } = within("the handler", served.recv()).await.unwrap();
        let response = response.await.unwrap().unwrap();
        assert_eq!(response.status(), status, "{what}");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(bytes.is_empty(), "{what}");
        assert_completed(&ctx, &what).await;
        drop(body);
    }
}

/// A 2xx answer to CONNECT turns the connection into a tunnel: hyper sends
/// no body and drops it.
#[tokio::test]
async fn http1_a_successful_connect_completes_the_request() {
    let (addr, mut served) = server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n")
        .await
        .unwrap();
    let Served { ctx, body } = within("the handler", served.recv()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        within("the response head", stream.read_exact(&mut byte))
            .await
            .unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", head.escape_ascii());
    assert_completed(&ctx, "CONNECT").await;
    drop((body, stream));
}

/// Reads from `stream` until what was read ends with `tail`.
async fn read_until(stream: &mut TcpStream, tail: &[u8]) {
    let mut seen = Vec::new();
    while !seen.ends_with(tail) {
        let mut byte = [0];
        within("the body's first bytes", stream.read_exact(&mut byte))
            .await
            .unwrap();
        seen.push(byte[0]);
    }
}

/// The negative controls: a client that hangs up before the last declared
/// byte, or in the middle of a chunked body, did disconnect.
#[tokio::test]
async fn http1_a_client_that_leaves_before_the_end_disconnected() {
    for (path, first) in [("/length-header", &b"he"[..]), ("/chunked", &b"he"[..])] {
        let (addr, mut served) = server().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let Served { ctx, body } = within("the handler", served.recv()).await.unwrap();
        body.send(Bytes::copy_from_slice(first)).unwrap();
        read_until(&mut stream, first).await;
        drop(stream);
        assert!(!ctx.is_done(), "{path}: still streaming");
        // hyper notices the close when it next reads or writes: keep writing
        // until the body is dropped.
        let feed = async {
            while body.send(Bytes::from_static(b"x")).is_ok() {
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            _ = ctx.done() => {}
            () = feed => {}
        }
        assert_disconnected(&ctx, path).await;
    }
}

/// The same over HTTP/2: a stream reset before the last declared byte.
#[tokio::test]
async fn http2_a_reset_before_the_last_byte_is_a_disconnect() {
    let (addr, mut served) = server().await;
    let mut client = http2(addr).await;
    let response = client.send_request(get_request(addr, http::Method::GET, "/length-header"));
    let response = tokio::spawn(response);
    let Served { ctx, body } = within("the handler", served.recv()).await.unwrap();
    body.send(Bytes::from_static(b"he")).unwrap();
    let mut incoming = response.await.unwrap().unwrap().into_body();
    let frame = incoming.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "he");
    drop(incoming);
    assert_disconnected(&ctx, "a reset after 2 of 5 bytes").await;
    drop(body);
}
