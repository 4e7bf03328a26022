//! With ctx-runtime's `tracing` feature, a `#[cancellable]` fn that returns
//! early on cancellation emits one `debug` event naming the fn and the
//! error; and `#[cancellable]` composes with `#[tracing::instrument]` in
//! either order, with different race points:
//!
//! * `#[cancellable]` above `#[instrument]`: every await of the body is
//!   raced, inside the fn's span (the event is recorded in it);
//! * `#[instrument]` above `#[cancellable]`: the instrumented body is one
//!   future, raced as a whole where instrument awaits it, outside the span.
//!
//! No `.await` here is left unraced without a word: a warning would be an
//! error (`deny(deprecated)`).
//!
//! Runs with this crate's `tracing` feature (`--all-features`), which turns
//! on ctx-runtime's.
#![cfg(feature = "tracing")]
#![deny(deprecated)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctx_runtime::{Context, Error, cancellable};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

const HOUR: Duration = Duration::from_secs(3600);

/// One event as the subscriber saw it.
#[derive(Debug)]
struct Captured {
    level: Level,
    target: String,
    fields: BTreeMap<String, String>,
    /// The name of the span the event happened in.
    span: Option<&'static str>,
}

/// A subscriber that keeps every event, and the span each happened in.
#[derive(Default)]
struct Capture {
    events: Mutex<Vec<Captured>>,
    names: Mutex<BTreeMap<u64, &'static str>>,
    entered: Mutex<Vec<u64>>,
    next: AtomicU64,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        self.names
            .lock()
            .unwrap()
            .insert(id, attrs.metadata().name());
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let span = self
            .entered
            .lock()
            .unwrap()
            .last()
            .and_then(|id| self.names.lock().unwrap().get(id).copied());
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
            span,
        });
    }

    fn enter(&self, span: &Id) {
        self.entered.lock().unwrap().push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut entered = self.entered.lock().unwrap();
        if let Some(at) = entered.iter().rposition(|id| *id == span.into_u64()) {
            entered.remove(at);
        }
    }
}

impl Capture {
    /// The events of `ctx_runtime::cancellable`.
    fn cancellations(&self) -> Vec<Captured> {
        let mut events = self.events.lock().unwrap();
        events
            .drain(..)
            .filter(|event| event.target == "ctx_runtime::cancellable")
            .collect()
    }
}

#[cancellable]
async fn fetch(ctx: &Context, reached: oneshot::Sender<()>) -> Result<u32, Error> {
    let _ = reached.send(());
    tokio::time::sleep(HOUR).await;
    Ok(1)
}

#[cancellable]
#[tracing::instrument(skip_all)]
async fn cancellable_above(ctx: &Context, reached: oneshot::Sender<()>) -> Result<u32, Error> {
    let _ = reached.send(());
    tokio::time::sleep(HOUR).await;
    Ok(2)
}

#[tracing::instrument(skip_all)]
#[cancellable]
async fn instrument_above(ctx: &Context, reached: oneshot::Sender<()>) -> Result<u32, Error> {
    let _ = reached.send(());
    tokio::time::sleep(HOUR).await;
    Ok(3)
}

/// Runs `f` under a fresh context, cancels it once `f` is waiting, checks
/// that it returned `Canceled` at once, and returns the events.
async fn cancelled<F, Fut>(capture: &Arc<Capture>, f: F) -> Vec<Captured>
where
    F: FnOnce(Context, oneshot::Sender<()>) -> Fut,
    Fut: Future<Output = Result<u32, Error>> + 'static,
{
    let (ctx, cancel) = Context::background().with_cancel();
    let (reached_tx, reached) = oneshot::channel();
    let local = tokio::task::LocalSet::new();
    let task = local.spawn_local(f(ctx, reached_tx));
    local
        .run_until(async move {
            reached.await.unwrap();
            let cancelled_at = Instant::now();
            cancel.cancel();
            assert_eq!(task.await.unwrap(), Err(Error::Canceled));
            assert_eq!(Instant::now(), cancelled_at, "returned at once");
        })
        .await;
    capture.cancellations()
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_emits_one_debug_event_with_its_name_and_error() {
    let capture = Arc::new(Capture::default());
    let _default = tracing::subscriber::set_default(Arc::clone(&capture));

    let events = cancelled(&capture, |ctx, reached| async move {
        fetch(&ctx, reached).await
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].level, Level::DEBUG);
    assert_eq!(events[0].fields["function"], "cancellable_tracing::fetch");
    assert_eq!(events[0].fields["error"], "context canceled");

    // A call that completes says nothing; one cancelled before it starts
    // (the entry check) does.
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(1));
    #[cancellable]
    async fn quick(ctx: &Context) -> Result<(), Error> {
        tokio::task::yield_now().await;
        Ok(())
    }
    assert_eq!(quick(&ctx).await, Ok(()));
    assert!(capture.cancellations().is_empty());
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(quick(&ctx).await, Err(Error::DeadlineExceeded));
    let events = capture.cancellations();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].fields["error"], "context deadline exceeded");
    assert!(
        events[0].fields["function"].ends_with("::quick"),
        "{events:?}"
    );
    drop(cancel);
}

#[tokio::test(start_paused = true)]
async fn methods_are_named_after_their_type() {
    struct Client;
    #[cancellable]
    impl Client {
        async fn get(&self, ctx: &Context) -> Result<(), Error> {
            tokio::task::yield_now().await;
            Ok(())
        }
    }
    let capture = Arc::new(Capture::default());
    let _default = tracing::subscriber::set_default(Arc::clone(&capture));
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(Client.get(&ctx).await, Err(Error::Canceled));
    let events = capture.cancellations();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].fields["function"].ends_with("::Client::get"),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn above_instrument_every_await_is_raced_inside_the_span() {
    let capture = Arc::new(Capture::default());
    let _default = tracing::subscriber::set_default(Arc::clone(&capture));
    let events = cancelled(&capture, |ctx, reached| async move {
        cancellable_above(&ctx, reached).await
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].span,
        Some("cancellable_above"),
        "returned from inside the span"
    );
}

#[tokio::test(start_paused = true)]
async fn below_instrument_the_instrumented_body_is_raced_as_a_whole() {
    let capture = Arc::new(Capture::default());
    let _default = tracing::subscriber::set_default(Arc::clone(&capture));
    let events = cancelled(&capture, |ctx, reached| async move {
        instrument_above(&ctx, reached).await
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].span, None,
        "returned where the span's future was awaited"
    );
}
