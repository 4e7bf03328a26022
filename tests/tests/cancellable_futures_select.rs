//! `#[cancellable]` races `futures::select!` and `futures::select_biased!`
//! as it does tokio's: a branch of its own watches the fn's context, and
//! `complete =>` and `default =>` still run when they would without it.

use std::time::Duration;

use ctx_runtime::{CancelHandle, Context, Error, cancellable};
use futures::future::FutureExt;
use futures::stream::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

const HOUR: Duration = Duration::from_secs(3600);

/// The classic futures loop: two fused futures, `complete => break`.
#[cancellable]
async fn both(
    ctx: &Context,
    a: futures::channel::oneshot::Receiver<u32>,
    b: futures::channel::oneshot::Receiver<u32>,
) -> Result<u32, Error> {
    let mut a = a.fuse();
    let mut b = b.fuse();
    let mut total = 0;
    loop {
        futures::select! {
            x = a => total += x.unwrap_or(0),
            y = b => total += y.unwrap_or(0),
            complete => break,
        }
    }
    Ok(total)
}

#[tokio::test(start_paused = true)]
async fn complete_still_runs_when_every_future_is_done() {
    let (a_tx, a) = futures::channel::oneshot::channel();
    let (b_tx, b) = futures::channel::oneshot::channel();
    a_tx.send(1).unwrap();
    b_tx.send(2).unwrap();
    let result = tokio::time::timeout(HOUR, both(&Context::background(), a, b))
        .await
        .expect("the select loop hung once every future was done");
    assert_eq!(result, Ok(3));
}

#[tokio::test(start_paused = true)]
async fn a_futures_select_loop_cancelled_mid_wait_returns_canceled_at_once() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (a_tx, a) = futures::channel::oneshot::channel();
    let (_b_tx, b) = futures::channel::oneshot::channel();
    let task = tokio::spawn(async move { both(&ctx, a, b).await });
    a_tx.send(1).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await; // waits on `b` now
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("the select loop ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
    assert_eq!(Instant::now(), cancelled_at);
}

#[cancellable]
async fn stream_loop(ctx: &Context, rx: mpsc::Receiver<u32>) -> Result<u32, Error> {
    let mut items = tokio_stream_of(rx).fuse();
    let mut total = 0;
    loop {
        futures::select! {
            item = items.next() => match item {
                Some(n) => total += n,
                None => break,
            },
        }
    }
    Ok(total)
}

fn tokio_stream_of(mut rx: mpsc::Receiver<u32>) -> impl futures::Stream<Item = u32> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(start_paused = true)]
async fn a_select_over_an_expression_is_raced_and_ends_as_written() {
    let (tx, rx) = mpsc::channel(4);
    tx.send(4).await.unwrap();
    tx.send(5).await.unwrap();
    drop(tx);
    assert_eq!(stream_loop(&Context::background(), rx).await, Ok(9));

    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(async move { stream_loop(&ctx, rx).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
    drop(tx);
}

#[cancellable]
async fn biased_ready(ctx: &Context, cancel: CancelHandle) -> Result<&'static str, Error> {
    cancel.cancel();
    futures::select_biased! {
        () = futures::future::ready(()) => Ok("the ready branch won"),
    }
}

#[tokio::test(start_paused = true)]
async fn under_select_biased_the_watch_wins_over_a_ready_branch() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert_eq!(biased_ready(&ctx, cancel).await, Err(Error::Canceled));
}

#[cancellable]
async fn with_default(ctx: &Context, cancel: Option<CancelHandle>) -> Result<&'static str, Error> {
    drop(cancel); // dropping the handle cancels
    let mut never = futures::future::pending::<()>().fuse();
    futures::select! {
        () = never => Ok("pending won"),
        default => Ok("default ran"),
    }
}

#[tokio::test(start_paused = true)]
async fn default_runs_when_nothing_is_ready_unless_the_context_is_done() {
    assert_eq!(
        with_default(&Context::background(), None).await,
        Ok("default ran")
    );
    let (ctx, cancel) = Context::background().with_cancel();
    assert_eq!(with_default(&ctx, Some(cancel)).await, Err(Error::Canceled));
}

#[cancellable]
async fn all_done_without_complete(ctx: &Context) -> Result<u32, Error> {
    let mut done = futures::future::ready(1u32).fuse();
    let first = futures::select! { n = done => n };
    let second = futures::select! { n = done => n };
    Ok(first + second)
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "all futures in select! were completed")]
async fn without_complete_futures_still_panics_when_every_future_is_done() {
    let _ = all_done_without_complete(&Context::background()).await;
}

#[cancellable]
async fn bare(ctx: &Context, rx: futures::channel::oneshot::Receiver<u32>) -> Result<u32, Error> {
    use futures::select;
    let mut rx = rx.fuse();
    select! {
        n = rx => Ok(n.unwrap_or(0)),
        complete => Ok(0),
    }
}

#[tokio::test(start_paused = true)]
async fn a_bare_select_with_a_complete_branch_is_read_as_futures() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (_tx, rx) = futures::channel::oneshot::channel();
    let task = tokio::spawn(async move { bare(&ctx, rx).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
}

#[cancellable]
async fn handler_awaits(
    ctx: &Context,
    rx: futures::channel::oneshot::Receiver<u32>,
) -> Result<u32, Error> {
    let mut rx = rx.fuse();
    let n = futures::select! {
        n = rx => std::future::ready(1).await + n.unwrap_or(0),
        complete => std::future::ready(100).await * 2,
    };
    Ok(n)
}

#[tokio::test(start_paused = true)]
async fn handlers_that_start_with_an_await_keep_their_meaning() {
    let (tx, rx) = futures::channel::oneshot::channel();
    tx.send(41).unwrap();
    assert_eq!(handler_awaits(&Context::background(), rx).await, Ok(42));
}
