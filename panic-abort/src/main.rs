//! Runs the public API of ctx-runtime in a program built with
//! `panic = "abort"`: if anything inside the runtime panics, even a panic it
//! would catch again, this process dies with SIGABRT and the run fails.
//!
//! Each step prints its name, so a failure shows where it happened. The
//! edge cases are those where tokio itself panics: runtimes without timers,
//! deadlines at the end of time, runtimes shutting down mid-cancel; and user
//! code that re-enters (but does not panic: here that would abort, as the
//! user asked for).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

use ctx_runtime::http::CtxLayer;
use ctx_runtime::{
    CancelHandle, Cause, Context, Error, Group, Instant, SpawnExt, TaskTracker, cancellable,
};
use tokio::runtime::{Builder, Runtime};
use tower_layer::Layer;
use tower_service::Service;

fn step(name: &str) {
    println!("panic-abort: {name}");
}

/// The largest `Instant` this platform has.
fn instant_max() -> std::time::Instant {
    let mut at = std::time::Instant::now();
    let mut step = Duration::from_secs(u64::MAX);
    while !step.is_zero() {
        match at.checked_add(step) {
            Some(later) => at = later,
            None => step /= 2,
        }
    }
    at
}

fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current_thread without timers",
            Builder::new_current_thread().build().unwrap(),
        ),
        (
            "multi_thread without timers",
            Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        ),
        (
            "current_thread",
            Builder::new_current_thread().enable_all().build().unwrap(),
        ),
        (
            "current_thread, paused",
            Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap(),
        ),
        (
            "multi_thread",
            Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        ),
    ]
}

#[cancellable]
async fn slow(ctx: &Context, for_how_long: Duration) -> Result<&'static str, Error> {
    tokio::time::sleep(for_how_long).await;
    Ok("done")
}

#[cancellable(timeout = "20ms")]
async fn bounded(ctx: &Context) -> Result<(), Error> {
    std::future::pending::<()>().await;
    Ok(())
}

/// The whole API, inside one runtime.
async fn api(name: &str, timers: bool) {
    step(&format!("{name}: tree, values, causes"));
    struct Trace(&'static str);
    let root = Context::background().with_value(Trace("abc"));
    let (parent, cancel_parent) = root.with_cancel();
    let (child, _c) = parent.with_timeout_cause(Duration::from_secs(3600), "too slow");
    let detached = child.without_cancel();
    let todo = Context::todo();
    assert!(!todo.is_done() && todo.check().is_ok());
    assert_eq!(child.value::<Trace>().map(|t| t.0), Some("abc"));
    assert!(child.deadline().is_some() && child.remaining().is_some());
    assert!(format!("{child:?}").contains("with_deadline"));
    cancel_parent.cancel_with_cause(Cause::new(std::io::Error::other("client left")));
    assert_eq!(child.err(), Some(Error::Canceled));
    assert!(child.cause().unwrap().is::<std::io::Error>());
    assert!(!detached.is_done());
    assert!(cancel_parent.context().same(&parent));

    step(&format!("{name}: deadlines"));
    let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(10));
    assert_eq!(ctx.done().await, Error::DeadlineExceeded);
    let at = Instant::now() + Duration::from_millis(10);
    let (ctx, _c) = Context::background().with_deadline_cause(at, "budget");
    assert_eq!(ctx.done_owned().await, Error::DeadlineExceeded);
    assert_eq!(ctx.cause().unwrap().to_string(), "budget");
    let near_max = Instant::from_std(instant_max() - Duration::from_micros(500));
    let (ctx, _c) = Context::background().with_deadline(near_max);
    assert!(!ctx.is_done() && ctx.deadline().is_none_or(|d| d == near_max));
    let (ctx, _c) = Context::background().with_timeout(Duration::MAX);
    assert_eq!(ctx.deadline(), None);
    let (ctx, _c) = Context::background().with_deadline(Instant::now());
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));

    step(&format!("{name}: run, cancellable"));
    let (ctx, cancel) = Context::background().with_cancel();
    assert_eq!(ctx.run(async { 7 }).await, Ok(7));
    if timers {
        assert_eq!(slow(&ctx, Duration::from_millis(1)).await, Ok("done"));
    }
    assert_eq!(bounded(&ctx).await, Err(Error::DeadlineExceeded));
    let pending = ctx.run(std::future::pending::<()>());
    cancel.cancel();
    assert_eq!(pending.await, Err(Error::Canceled));
    assert_eq!(
        slow(&ctx, Duration::from_secs(60)).await,
        Err(Error::Canceled)
    );

    step(&format!("{name}: after_func"));
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let after = ctx.after_func(move || tx.send(()).unwrap());
    let stopped = ctx.after_func(|| unreachable!("stopped"));
    assert!(stopped.stop());
    cancel.cancel();
    rx.await.unwrap();
    assert!(!after.stop());

    step(&format!("{name}: spawn, Group, TaskTracker"));
    let (ctx, cancel) = Context::background().with_cancel();
    let tracker = TaskTracker::new();
    let task = tracker.spawn(&ctx, |ctx| async move { ctx.done().await });
    let other = ctx.spawn(|ctx| async move { ctx.run(std::future::pending::<()>()).await });
    let (group, group_ctx) = Group::<std::io::Error>::with_context(&ctx);
    group.spawn(|ctx| async move {
        ctx.run(std::future::pending::<()>()).await?;
        Ok(())
    });
    group.spawn(|_| async { Err(std::io::Error::other("primary is down")) });
    assert_eq!(
        group.wait().await.unwrap_err().to_string(),
        "primary is down"
    );
    assert!(group_ctx.is_done());
    cancel.cancel();
    assert_eq!(task.await.unwrap(), Error::Canceled);
    assert_eq!(other.await.unwrap(), Err(Error::Canceled));
    tracker.close();
    tracker.wait().await;

    step(&format!("{name}: tokio-util bridge"));
    let token = tokio_util::sync::CancellationToken::new();
    let (ctx, _c) = Context::background().with_cancellation_token(token.clone());
    let mine = ctx.cancellation_token();
    token.cancel();
    assert!(ctx.is_done() && mine.is_cancelled());

    step(&format!("{name}: CtxLayer"));
    let (server, shutdown) = Context::background().with_cancel();
    let mut service = CtxLayer::new(server)
        .max_timeout(Duration::from_secs(5))
        .layer(Echo);
    let response = service.call(http::Request::new(())).await.unwrap();
    assert_eq!(response.status(), 200);
    let bad = http::Request::builder()
        .header("grpc-timeout", "oops")
        .body(())
        .unwrap();
    assert_eq!(service.call(bad).await.unwrap().status(), 400);
    shutdown.cancel();
    assert_eq!(
        service.call(http::Request::new(())).await.unwrap().status(),
        503
    );
}

#[derive(Clone)]
struct Echo;

impl Service<http::Request<()>> for Echo {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<http::Response<String>, Infallible>>;
    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Ok(http::Response::new("hello".to_owned())))
    }
}

/// User code that re-enters from a waker's drop, a waker's wake and a
/// value's drop (without panicking).
fn reentrant_user_code() {
    step("re-entrant wakers and values");
    struct CancelsOnDrop(Mutex<Option<CancelHandle>>);
    impl Wake for CancelsOnDrop {
        fn wake(self: Arc<Self>) {
            drop(self.0.lock().unwrap().take());
        }
    }
    impl Drop for CancelsOnDrop {
        fn drop(&mut self) {
            drop(self.0.lock().unwrap().take());
        }
    }
    let (ctx, cancel) = Context::background().with_cancel();
    let mut done = Box::pin(ctx.done());
    let first = Waker::from(Arc::new(CancelsOnDrop(Mutex::new(Some(cancel)))));
    assert!(
        done.as_mut()
            .poll(&mut TaskContext::from_waker(&first))
            .is_pending()
    );
    drop(first);
    let woken = Arc::new(Counter::default());
    let second = Waker::from(Arc::clone(&woken));
    // Replaces (and so drops) the first waker, whose drop cancels `ctx`.
    let polled = Pin::new(&mut done).poll(&mut TaskContext::from_waker(&second));
    assert!(polled.is_ready() || woken.0.load(Ordering::SeqCst) == 1);
    assert!(ctx.is_done());
}

#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runtimes dropped while their tasks own handles with after_funcs: every
/// callback runs.
fn shutdown_mid_cancel() {
    step("runtimes shut down mid-cancel");
    let (ran, ran_rx) = mpsc::channel::<()>();
    for _ in 0..10 {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (ready, ready_rx) = mpsc::channel::<()>();
        for _ in 0..20 {
            let (ran, ready) = (ran.clone(), ready.clone());
            rt.spawn(async move {
                let (ctx, _cancel) = Context::background().with_cancel();
                let _after = ctx.after_func(move || ran.send(()).unwrap());
                let (_timed, _t) = Context::background().with_timeout(Duration::from_secs(60));
                ready.send(()).unwrap();
                std::future::pending::<()>().await;
            });
        }
        for _ in 0..20 {
            ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        drop(rt);
    }
    drop(ran);
    assert_eq!(ran_rx.iter().count(), 200);
}

fn main() {
    for (name, rt) in runtimes() {
        let timers = !name.contains("without timers");
        rt.block_on(api(name, timers));
        drop(rt);
    }
    step("outside a runtime");
    let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(10));
    assert!(ctx.wait_blocking(Some(Duration::from_secs(10))));
    assert!(!Context::background().wait_blocking(Some(Duration::from_millis(1))));
    reentrant_user_code();
    shutdown_mid_cancel();
    println!("panic-abort: the whole API ran without a panic");
}
