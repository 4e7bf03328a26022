//! `#[cancellable]` races `join!` and `try_join!` (tokio's and futures') as
//! one await: a cancellation drops every joined future and returns from the
//! fn, while the arguments are still evaluated in the fn's own control flow.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use ctx_runtime::{Context, Error, cancellable};
use tokio::sync::oneshot;
use tokio::time::Instant;

const HOUR: Duration = Duration::from_secs(3600);

/// Pending forever once polled (it says so), and counts its drops.
struct Park {
    reached: Option<oneshot::Sender<()>>,
    dropped: Arc<AtomicUsize>,
}

impl Future for Park {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<u32> {
        if let Some(reached) = self.reached.take() {
            let _ = reached.send(());
        }
        Poll::Pending
    }
}

impl Drop for Park {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn parks(dropped: &Arc<AtomicUsize>) -> (Park, Park, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let first = Park {
        reached: Some(tx),
        dropped: Arc::clone(dropped),
    };
    let second = Park {
        reached: None,
        dropped: Arc::clone(dropped),
    };
    (first, second, rx)
}

#[cancellable]
async fn tokio_join(ctx: &Context, a: Park, b: Park) -> Result<u32, Error> {
    let (x, y) = tokio::join!(a, b);
    Ok(x + y)
}

#[cancellable]
async fn futures_join(ctx: &Context, a: Park, b: Park) -> Result<u32, Error> {
    let (x, y) = futures::join!(a, b);
    Ok(x + y)
}

#[cancellable]
async fn tokio_try_join(ctx: &Context, a: Park, b: Park) -> Result<u32, Error> {
    let (x, y) = tokio::try_join!(async { Ok::<_, Error>(a.await) }, async { Ok(b.await) })?;
    Ok(x + y)
}

#[cancellable]
async fn futures_try_join(ctx: &Context, a: Park, b: Park) -> Result<u32, Error> {
    let (x, y) = futures::try_join!(async { Ok::<_, Error>(a.await) }, async { Ok(b.await) })?;
    Ok(x + y)
}

/// Cancels `ctx` once the join has polled its first future, and checks the
/// fn returned `Canceled` at once with both futures dropped.
async fn cancel_mid_join<F, Fut>(f: F)
where
    F: FnOnce(Context, Park, Park) -> Fut,
    Fut: Future<Output = Result<u32, Error>> + Send + 'static,
{
    let (ctx, cancel) = Context::background().with_cancel();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (a, b, reached) = parks(&dropped);
    let task = tokio::spawn(f(ctx, a, b));
    reached.await.unwrap();
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("the join ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
    assert_eq!(Instant::now(), cancelled_at, "returned without waiting");
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "both joined futures dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tokio_join_cancelled_mid_wait_returns_canceled_and_drops_both() {
    cancel_mid_join(|ctx, a, b| async move { tokio_join(&ctx, a, b).await }).await;
}

#[tokio::test(start_paused = true)]
async fn a_futures_join_cancelled_mid_wait_returns_canceled_and_drops_both() {
    cancel_mid_join(|ctx, a, b| async move { futures_join(&ctx, a, b).await }).await;
}

#[tokio::test(start_paused = true)]
async fn a_tokio_try_join_cancelled_mid_wait_returns_canceled() {
    cancel_mid_join(|ctx, a, b| async move { tokio_try_join(&ctx, a, b).await }).await;
}

#[tokio::test(start_paused = true)]
async fn a_futures_try_join_cancelled_mid_wait_returns_canceled() {
    cancel_mid_join(|ctx, a, b| async move { futures_try_join(&ctx, a, b).await }).await;
}

#[derive(Debug, PartialEq)]
enum Failure {
    Ctx(Error),
    NoFuture,
    Joined(&'static str),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure::Ctx(err)
    }
}

fn maybe_future(ok: bool) -> Result<std::future::Ready<u32>, Failure> {
    if ok {
        Ok(std::future::ready(1))
    } else {
        Err(Failure::NoFuture)
    }
}

/// A `?` in an argument leaves the fn before anything is joined; an await
/// in an argument is raced on its own, before the join.
#[cancellable]
async fn question_mark_in_an_argument(
    ctx: &Context,
    ok: bool,
    polled: &AtomicUsize,
) -> Result<u32, Failure> {
    let counted = std::future::poll_fn(|_| {
        polled.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(10)
    });
    let (a, b, c) = tokio::join!(maybe_future(ok)?, counted, std::future::ready(100u32));
    let (d,) = futures::join!(std::future::ready(tokio::task::yield_now().await));
    let () = d;
    Ok(a + b + c)
}

#[tokio::test(start_paused = true)]
async fn a_question_mark_in_an_argument_still_leaves_the_fn() {
    let polled = AtomicUsize::new(0);
    let ctx = Context::background();
    assert_eq!(
        question_mark_in_an_argument(&ctx, true, &polled).await,
        Ok(111)
    );
    assert_eq!(polled.load(Ordering::SeqCst), 1);
    assert_eq!(
        question_mark_in_an_argument(&ctx, false, &polled).await,
        Err(Failure::NoFuture)
    );
    assert_eq!(polled.load(Ordering::SeqCst), 1, "nothing was joined");
}

#[cancellable]
async fn try_join_error(ctx: &Context) -> Result<u32, Failure> {
    let (a, b) = tokio::try_join!(async { Ok::<u32, Failure>(1) }, async {
        Err::<u32, Failure>(Failure::Joined("second"))
    },)?;
    Ok(a + b)
}

#[tokio::test(start_paused = true)]
async fn try_join_still_returns_the_first_error() {
    assert_eq!(
        try_join_error(&Context::background()).await,
        Err(Failure::Joined("second"))
    );
}

#[cancellable]
async fn join_biased(ctx: &Context, log: &std::sync::Mutex<Vec<u32>>) -> Result<(), Error> {
    let step = |n| async move {
        log.lock().unwrap().push(n);
    };
    tokio::join!(biased; step(1), step(2), step(3));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_biased_join_keeps_its_order() {
    let log = std::sync::Mutex::new(Vec::new());
    assert_eq!(join_biased(&Context::background(), &log).await, Ok(()));
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
}

#[test]
fn a_raced_join_keeps_the_fn_send() {
    fn assert_send<T: Send>(_: &T) {}
    let ctx = Context::background();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (a, b, _reached) = parks(&dropped);
    assert_send(&tokio_join(&ctx, a, b));
}
