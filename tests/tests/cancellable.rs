//! `#[cancellable]`: cancellation, deadlines, the entry check, `Send`, panics.
//!
//! Time is paused in every test (`start_paused`), so "promptly" is asserted
//! exactly: a cancelled call returns with no time passing, while the slow
//! futures it was blocked on would take an hour of (auto-advanced) time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use ctx_runtime::{CancelHandle, Context, Error, cancellable};
use tokio::sync::oneshot;
use tokio::time::Instant;

const HOUR: Duration = Duration::from_secs(3600);

/// A future that reports its first poll, then stays pending forever, and
/// records that it was dropped.
struct Park {
    reached: Option<oneshot::Sender<()>>,
    dropped: Arc<AtomicUsize>,
}

impl Future for Park {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
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

fn park() -> (Park, oneshot::Receiver<()>, Arc<AtomicUsize>) {
    let (tx, rx) = oneshot::channel();
    let dropped = Arc::new(AtomicUsize::new(0));
    let park = Park {
        reached: Some(tx),
        dropped: Arc::clone(&dropped),
    };
    (park, rx, dropped)
}

#[cancellable]
async fn wait_on(ctx: &Context, fut: Park) -> Result<&'static str, Error> {
    fut.await;
    Ok("the park completed")
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_a_blocked_call_at_once() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (fut, reached, dropped) = park();
    let task = tokio::spawn(async move { wait_on(&ctx, fut).await });
    reached.await.unwrap(); // blocked on the park

    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("the call ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
    assert_eq!(
        Instant::now() - cancelled_at,
        Duration::ZERO,
        "returned without waiting"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the awaited future was dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_interrupts_a_slow_timer_well_within_10ms() {
    #[cancellable]
    async fn slow(ctx: &Context) -> Result<(), Error> {
        tokio::time::sleep(HOUR).await;
        Ok(())
    }
    let (ctx, cancel) = Context::background().with_cancel();
    let task = tokio::spawn(async move { slow(&ctx).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    assert_eq!(task.await.unwrap(), Err(Error::Canceled));
    assert!(Instant::now() - cancelled_at < Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_returns_deadline_exceeded_on_time() {
    let start = Instant::now();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(100));
    let (fut, _reached, _dropped) = park();
    assert_eq!(wait_on(&ctx, fut).await, Err(Error::DeadlineExceeded));
    assert_eq!(Instant::now() - start, Duration::from_millis(100));
}

#[cancellable(timeout = "50ms")]
async fn with_own_timeout(ctx: &Context, fut: Park) -> Result<(), Error> {
    assert!(ctx.deadline().is_some(), "`ctx` is the child in the body");
    fut.await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_timeout_option_cancels_the_body_only() {
    let start = Instant::now();
    let parent = Context::background();
    let (fut, _reached, dropped) = park();
    assert_eq!(
        with_own_timeout(&parent, fut).await,
        Err(Error::DeadlineExceeded)
    );
    assert_eq!(Instant::now() - start, Duration::from_millis(50));
    assert_eq!(parent.err(), None, "the parent is not affected");
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_timeout_option_keeps_an_earlier_parent_deadline() {
    let (parent, _c) = Context::background().with_timeout(Duration::from_millis(10));
    let start = Instant::now();
    let (fut, _reached, _dropped) = park();
    assert_eq!(
        with_own_timeout(&parent, fut).await,
        Err(Error::DeadlineExceeded)
    );
    assert_eq!(Instant::now() - start, Duration::from_millis(10));
}

#[cancellable(timeout = "1m30s")]
async fn timeout_by_value(ctx: Context) -> Result<Option<Duration>, Error> {
    let child: Context = ctx; // by value in, by value in the body
    Ok(child.remaining())
}

#[tokio::test(start_paused = true)]
async fn the_timeout_is_parsed_at_compile_time() {
    assert_eq!(
        timeout_by_value(Context::background()).await,
        Ok(Some(Duration::from_secs(90)))
    );
}

#[tokio::test(start_paused = true)]
async fn the_child_of_the_timeout_option_ends_with_the_call() {
    #[cancellable(timeout = "1h")]
    async fn leak(ctx: &Context) -> Result<Context, Error> {
        Ok(ctx.clone())
    }
    let child = leak(&Context::background()).await.unwrap();
    assert_eq!(child.err(), Some(Error::Canceled), "Go's `defer cancel()`");
}

/// Counts the side effects that ran.
struct Effects(AtomicUsize);

impl Effects {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[cancellable]
async fn effect_first(ctx: &Context, effects: &Effects) -> Result<(), Error> {
    effects.hit();
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable]
async fn effect_no_await(ctx: &Context, effects: &Effects) -> Result<(), Error> {
    effects.hit();
    Ok(())
}

#[cancellable]
fn effect_sync(ctx: &Context, effects: &Effects) -> Result<(), Error> {
    effects.hit();
    Ok(())
}

#[cancellable]
fn effect_future(ctx: &Context, effects: &Effects) -> impl Future<Output = Result<(), Error>> {
    async move {
        effects.hit();
        tokio::task::yield_now().await;
        Ok(())
    }
}

fn cancelled() -> Context {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    ctx
}

#[tokio::test]
async fn an_already_cancelled_context_returns_before_the_first_side_effect() {
    let effects = Effects(AtomicUsize::new(0));
    let ctx = cancelled();
    assert_eq!(effect_first(&ctx, &effects).await, Err(Error::Canceled));
    assert_eq!(effect_no_await(&ctx, &effects).await, Err(Error::Canceled));
    assert_eq!(effect_sync(&ctx, &effects), Err(Error::Canceled));
    assert_eq!(effect_future(&ctx, &effects).await, Err(Error::Canceled));
    assert_eq!(effects.count(), 0);

    let live = Context::background();
    assert_eq!(effect_first(&live, &effects).await, Ok(()));
    assert_eq!(effect_no_await(&live, &effects).await, Ok(()));
    assert_eq!(effect_sync(&live, &effects), Ok(()));
    assert_eq!(effect_future(&live, &effects).await, Ok(()));
    assert_eq!(effects.count(), 4);
}

#[tokio::test]
async fn a_ready_future_loses_to_a_cancelled_context() {
    #[cancellable]
    async fn two_steps(
        ctx: &Context,
        cancel: &CancelHandle,
        effects: &Effects,
    ) -> Result<(), Error> {
        std::future::ready(()).await;
        effects.hit();
        cancel.cancel();
        std::future::ready(()).await; // biased: the context is checked first
        effects.hit();
        Ok(())
    }
    let (ctx, cancel) = Context::background().with_cancel();
    let effects = Effects(AtomicUsize::new(0));
    assert_eq!(
        two_steps(&ctx, &cancel, &effects).await,
        Err(Error::Canceled)
    );
    assert_eq!(effects.count(), 1);
}

fn assert_send<T: Send>(_: T) {}

#[cancellable]
async fn by_value(ctx: Context, n: u32) -> Result<u32, Error> {
    tokio::task::yield_now().await;
    Ok(n)
}

#[tokio::test]
async fn the_generated_futures_are_send() {
    let ctx = Context::background();
    let (fut, _reached, _dropped) = park();
    assert_send(wait_on(&ctx, fut));
    let (fut, _reached, _dropped) = park();
    assert_send(with_own_timeout(&ctx, fut));
    assert_send(by_value(ctx.clone(), 1));
    let effects = Effects(AtomicUsize::new(0));
    assert_send(effect_first(&ctx, &effects));
    assert_send(effect_future(&ctx, &effects));
    // And `'static` when nothing is borrowed: it can be spawned.
    assert_eq!(tokio::spawn(by_value(ctx, 7)).await.unwrap(), Ok(7));
}

#[tokio::test(start_paused = true)]
async fn a_panic_inside_leaves_the_context_usable() {
    #[cancellable]
    async fn panics_after_registering(ctx: &Context) -> Result<(), Error> {
        // Pending once: the task's waker is registered with the context.
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        panic!("boom");
    }
    let (ctx, cancel) = Context::background().with_cancel();
    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move { panics_after_registering(&ctx).await }
    });
    assert!(task.await.unwrap_err().is_panic());

    assert_eq!(ctx.err(), None);
    assert_eq!(
        by_value(ctx.clone(), 3).await,
        Ok(3),
        "still works for the next call"
    );
    let (fut, reached, _dropped) = park();
    let waiter = tokio::spawn({
        let ctx = ctx.clone();
        async move { wait_on(&ctx, fut).await }
    });
    reached.await.unwrap();
    cancel.cancel();
    assert_eq!(
        waiter.await.unwrap(),
        Err(Error::Canceled),
        "and is woken by the cancel"
    );
    ctx.done().await;
}

#[tokio::test]
async fn the_watch_ends_with_the_call() {
    // Many calls on one long-lived context do not accumulate waiters: each
    // call's registration is removed when it returns.
    #[cancellable]
    async fn pending_once(ctx: &Context) -> Result<(), Error> {
        tokio::task::yield_now().await;
        Ok(())
    }
    let (ctx, cancel) = Context::background().with_cancel();
    for _ in 0..1000 {
        pending_once(&ctx).await.unwrap();
    }
    let (fut, reached, _dropped) = park();
    let waiter = tokio::spawn({
        let ctx = ctx.clone();
        async move { wait_on(&ctx, fut).await }
    });
    reached.await.unwrap();
    cancel.cancel();
    assert_eq!(waiter.await.unwrap(), Err(Error::Canceled));
}
