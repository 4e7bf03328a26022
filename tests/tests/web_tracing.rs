//! `CtxLayer`'s tracing (issue 12, item 4): per request a span with the
//! deadline the layer set; one event for a request that ends other than by
//! completing (client disconnected, deadline exceeded, shutting down), none
//! for one that completes; and nothing at all without the `tracing` feature.
//!
//! Real axum servers on loopback, in a current-thread runtime, so that the
//! capturing subscriber (set as the thread's default) sees the server's
//! events. Run with `--all-features` (or `--features tracing`) for the
//! events, without for their absence.

// Without the feature, the captured fields are only counted, not read.
#![cfg_attr(not(feature = "tracing"), allow(dead_code))]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use ctx_runtime::Context;
use ctx_runtime::http::CtxLayer;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// A field's name and value, as text.
type Fields = BTreeMap<String, String>;

#[derive(Clone, Debug)]
struct SpanSeen {
    name: &'static str,
    target: String,
    fields: Fields,
}

#[derive(Clone, Debug)]
struct EventSeen {
    target: String,
    level: Level,
    fields: Fields,
    /// The fields of the span the event belongs to.
    span: Option<SpanSeen>,
}

impl EventSeen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Seen {
    next_id: u64,
    spans: HashMap<u64, SpanSeen>,
    stack: Vec<u64>,
    events: Vec<EventSeen>,
}

/// A subscriber that keeps every span and event, with their fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::new();
        span.record(&mut Visitor(&mut fields));
        let mut seen = self.0.lock().unwrap();
        seen.next_id += 1;
        let id = seen.next_id;
        seen.spans.insert(
            id,
            SpanSeen {
                name: span.metadata().name(),
                target: span.metadata().target().to_owned(),
                fields,
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut seen = self.0.lock().unwrap();
        if let Some(span) = seen.spans.get_mut(&span.into_u64()) {
            values.record(&mut Visitor(&mut span.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let mut seen = self.0.lock().unwrap();
        let parent = match event.parent() {
            Some(id) => Some(id.into_u64()),
            None if event.is_contextual() => seen.stack.last().copied(),
            None => None,
        };
        let span = parent.and_then(|id| seen.spans.get(&id).cloned());
        seen.events.push(EventSeen {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
            span,
        });
    }

    fn enter(&self, span: &Id) {
        self.0.lock().unwrap().stack.push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut seen = self.0.lock().unwrap();
        if let Some(i) = seen.stack.iter().rposition(|id| *id == span.into_u64()) {
            seen.stack.remove(i);
        }
    }
}

impl Capture {
    /// The layer's events so far.
    fn events(&self) -> Vec<EventSeen> {
        let seen = self.0.lock().unwrap();
        seen.events
            .iter()
            .filter(|e| e.target.starts_with("ctx_runtime"))
            .cloned()
            .collect()
    }

    /// The layer's spans so far.
    fn spans(&self) -> Vec<SpanSeen> {
        let seen = self.0.lock().unwrap();
        let mut spans: Vec<_> = seen
            .spans
            .iter()
            .filter(|(_, s)| s.target.starts_with("ctx_runtime"))
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        spans.sort_by_key(|(id, _)| *id);
        spans.into_iter().map(|(_, s)| s).collect()
    }
}

/// What a handler hands to the test when it starts.
type Started = mpsc::UnboundedSender<Context>;

/// Waits until its request's context ends.
async fn wait(State(started): State<Started>, ctx: Context) -> &'static str {
    started.send(ctx.clone()).unwrap();
    ctx.done().await;
    "too late"
}

async fn fine(ctx: Context) -> &'static str {
    assert!(ctx.remaining().is_some());
    "fine"
}

struct Server {
    addr: SocketAddr,
    started: mpsc::UnboundedReceiver<Context>,
    shutdown: ctx_runtime::CancelHandle,
}

async fn server() -> Server {
    let (tx, started) = mpsc::unbounded_channel();
    let (root, shutdown) = Context::background().with_cancel();
    let app = Router::new()
        .route("/wait", get(wait))
        .route("/fine", get(fine))
        .with_state(tx)
        .layer(CtxLayer::new(root).max_timeout(Duration::from_secs(30)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        addr,
        started,
        shutdown,
    }
}

fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let guard = tracing::subscriber::set_default(capture.clone());
    (capture, guard)
}

/// A client leaves while its handler waits: the handler's context ends
/// with `ClientDisconnected`.
async fn disconnect(s: &mut Server) -> Context {
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /wait HTTP/1.1\r\nhost: t\r\nx-request-timeout: 5s\r\n\r\n")
        .await
        .unwrap();
    let ctx = s.started.recv().await.unwrap();
    drop(stream);
    ctx.done().await;
    ctx
}

/// A request whose 200 ms deadline passes while its handler waits: 504.
async fn deadline(s: &mut Server) -> Context {
    let response = reqwest::Client::new()
        .get(format!("http://{}/wait", s.addr))
        .header("x-request-timeout", "200")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    s.started.recv().await.unwrap()
}

/// The server's root is cancelled while a handler waits: 503.
async fn shutdown(s: &mut Server) -> Context {
    let request = reqwest::Client::new()
        .get(format!("http://{}/wait", s.addr))
        .send();
    let request = tokio::spawn(request);
    let ctx = s.started.recv().await.unwrap();
    s.shutdown.cancel_with_cause("maintenance");
    assert_eq!(request.await.unwrap().unwrap().status(), 503);
    ctx
}

/// A request that completes, with its body read in full.
async fn complete(s: &Server) {
    let response = reqwest::get(format!("http://{}/fine", s.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "fine");
}

/// A request with a malformed timeout header: 400.
async fn malformed(s: &Server) {
    let response = reqwest::Client::new()
        .get(format!("http://{}/fine", s.addr))
        .header("x-request-timeout", "250M")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[cfg(feature = "tracing")]
mod with_the_feature {
    use super::*;

    /// The one event of the layer, after checking there is exactly one.
    fn the_event(capture: &Capture) -> EventSeen {
        let events = capture.events();
        assert_eq!(events.len(), 1, "{events:#?}");
        events.into_iter().next().unwrap()
    }

    #[tokio::test]
    async fn a_client_that_leaves_gives_one_event_that_says_disconnect() {
        let (capture, _guard) = capture();
        let mut s = server().await;
        disconnect(&mut s).await;
        let event = the_event(&capture);
        assert_eq!(event.field("outcome"), Some("client disconnected"));
        assert_eq!(event.field("cause"), Some("client disconnected"));
        assert!(
            event.field("message").unwrap().contains("disconnect"),
            "{event:?}"
        );
        assert_eq!(event.level, Level::DEBUG);
        assert_eq!(event.field("timeout_ms"), Some("5000"));
        // The request's span: the deadline the layer set, and from where.
        let span = event.span.unwrap();
        assert_eq!(span.name, "request");
        assert_eq!(span.fields["timeout_ms"], "5000");
        assert_eq!(span.fields["timeout_from"], "request-timeout header");
        assert_eq!(span.fields["method"], "GET");
        assert_eq!(span.fields["path"], "/wait");
    }

    #[tokio::test]
    async fn a_deadline_gives_one_event_with_the_deadline() {
        let (capture, _guard) = capture();
        let mut s = server().await;
        deadline(&mut s).await;
        let event = the_event(&capture);
        assert_eq!(event.field("outcome"), Some("deadline exceeded"));
        assert_eq!(event.field("cause"), Some("context deadline exceeded"));
        assert_eq!(event.field("timeout_ms"), Some("200"));
        assert_eq!(event.level, Level::INFO);
        let elapsed: u64 = event.field("elapsed_ms").unwrap().parse().unwrap();
        assert!(elapsed >= 200, "{event:?}");
        assert_eq!(event.span.unwrap().fields["timeout_ms"], "200");
    }

    #[tokio::test]
    async fn a_shutdown_gives_one_event_with_the_roots_cause() {
        let (capture, _guard) = capture();
        let mut s = server().await;
        shutdown(&mut s).await;
        let event = the_event(&capture);
        assert_eq!(event.field("outcome"), Some("shutting down"));
        assert_eq!(event.field("cause"), Some("maintenance"));
        assert_eq!(event.level, Level::INFO);
        let span = event.span.unwrap();
        assert_eq!(span.fields["timeout_ms"], "30000");
        assert_eq!(span.fields["timeout_from"], "max_timeout");
    }

    #[tokio::test]
    async fn a_completed_request_has_a_span_and_no_event() {
        let (capture, _guard) = capture();
        let s = server().await;
        complete(&s).await;
        assert!(capture.events().is_empty(), "{:#?}", capture.events());
        let spans = capture.spans();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        assert_eq!(spans[0].fields["timeout_ms"], "30000");
    }

    #[tokio::test]
    async fn a_malformed_header_gives_one_event_that_quotes_it() {
        let (capture, _guard) = capture();
        let s = server().await;
        malformed(&s).await;
        let event = the_event(&capture);
        assert_eq!(event.field("outcome"), Some("malformed timeout header"));
        assert_eq!(event.field("header"), Some("x-request-timeout"));
        assert!(
            event.field("message").unwrap().contains("\"250M\""),
            "{event:?}"
        );
    }
}

/// Without the feature: the same requests, and not one span or event.
#[cfg(not(feature = "tracing"))]
#[tokio::test]
async fn without_the_feature_nothing_is_emitted() {
    let (capture, _guard) = capture();
    let mut s = server().await;
    disconnect(&mut s).await;
    deadline(&mut s).await;
    complete(&s).await;
    malformed(&s).await;
    shutdown(&mut s).await;
    assert!(capture.events().is_empty(), "{:#?}", capture.events());
    assert!(capture.spans().is_empty(), "{:#?}", capture.spans());
}
