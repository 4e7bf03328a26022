//! `#[cancellable]` races `tokio::select!`: a branch of its own watches the
//! fn's context, and everything tokio's `select!` does without it still
//! happens (`biased;`, `else`, preconditions, patterns, handlers' control
//! flow).
//!
//! Time is paused: "promptly" is "with no time passing", while what the
//! select waits on would take an hour.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ctx_runtime::{CancelHandle, Context, Error, cancellable};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

const HOUR: Duration = Duration::from_secs(3600);

/// Sums what comes through `rx` until it closes, in a select loop.
#[cancellable]
async fn sum(
    ctx: &Context,
    mut rx: mpsc::Receiver<u32>,
    seen: mpsc::UnboundedSender<u32>,
) -> Result<u32, Error> {
    let mut total = 0;
    loop {
        tokio::select! {
            Some(n) = rx.recv() => {
                total += n;
                let _ = seen.send(total);
            }
            else => break,
        }
    }
    Ok(total)
}

#[tokio::test(start_paused = true)]
async fn a_select_loop_cancelled_mid_wait_returns_canceled_at_once() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel(1);
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move { sum(&ctx, rx, seen_tx).await });
    tx.send(2).await.unwrap();
    assert_eq!(seen.recv().await, Some(2), "the loop ran a handler");

    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("the select loop ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
    assert_eq!(Instant::now(), cancelled_at, "returned without waiting");
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn else_still_runs_when_the_channel_closes() {
    // The hang a naive extra branch causes: the watch is never disabled, so
    // `else => break` would never run after the channel closed.
    let (tx, rx) = mpsc::channel(4);
    let (seen_tx, _seen) = mpsc::unbounded_channel();
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    drop(tx);
    let result = tokio::time::timeout(HOUR, sum(&Context::background(), rx, seen_tx))
        .await
        .expect("the select loop hung after the channel closed");
    assert_eq!(result, Ok(3));
}

#[tokio::test(start_paused = true)]
async fn else_runs_when_the_channel_closes_while_the_select_waits() {
    // The branch completes without matching after the watch was polled in
    // the same select: the select must be polled again to see it.
    let (ctx, _cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel(1);
    let (seen_tx, _seen) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move { sum(&ctx, rx, seen_tx).await });
    tokio::time::sleep(Duration::from_secs(1)).await; // the select waits
    drop(tx);
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("the select hung after the channel closed");
    assert_eq!(result.unwrap(), Ok(0));
}

#[cancellable]
async fn biased_ready(ctx: &Context, cancel: CancelHandle) -> Result<&'static str, Error> {
    cancel.cancel(); // the context is done from here on
    tokio::select! {
        biased;
        () = std::future::ready(()) => Ok("the ready branch won"),
    }
}

#[tokio::test(start_paused = true)]
async fn under_biased_the_watch_wins_over_a_ready_branch() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert_eq!(biased_ready(&ctx, cancel).await, Err(Error::Canceled));
}

#[cancellable]
async fn biased_order(
    ctx: &Context,
    log: &std::sync::Mutex<Vec<&'static str>>,
) -> Result<&'static str, Error> {
    let polled = |name| {
        let log = &log;
        std::future::poll_fn(move |_| {
            log.lock().unwrap().push(name);
            std::task::Poll::Ready(name)
        })
    };
    tokio::select! {
        biased;
        a = polled("a") => Ok(a),
        b = polled("b") => Ok(b),
    }
}

#[tokio::test(start_paused = true)]
async fn under_biased_the_user_branches_keep_their_order() {
    let log = std::sync::Mutex::new(Vec::new());
    assert_eq!(biased_order(&Context::background(), &log).await, Ok("a"));
    assert_eq!(*log.lock().unwrap(), ["a"], "b was never polled");
}

/// A select whose branches are all disabled by their preconditions.
#[cancellable]
async fn all_disabled(
    ctx: &Context,
    rx: &mut mpsc::Receiver<u32>,
    evaluated: &AtomicUsize,
) -> Result<&'static str, Error> {
    let enabled = |on: bool| {
        evaluated.fetch_add(1, Ordering::SeqCst);
        on
    };
    let outcome = tokio::select! {
        Some(_) = rx.recv(), if enabled(false) => "a branch ran",
        _ = tokio::time::sleep(HOUR), if enabled(false) => "the sleep ran",
        else => "else ran",
    };
    Ok(outcome)
}

#[tokio::test(start_paused = true)]
async fn preconditions_are_evaluated_once_and_disable_their_branch() {
    let (_tx, mut rx) = mpsc::channel(1);
    let evaluated = AtomicUsize::new(0);
    let start = Instant::now();
    let outcome = all_disabled(&Context::background(), &mut rx, &evaluated).await;
    assert_eq!(outcome, Ok("else ran"));
    assert_eq!(Instant::now(), start, "else ran at once");
    assert_eq!(
        evaluated.load(Ordering::SeqCst),
        2,
        "each precondition once"
    );
}

#[cancellable]
async fn enabled_precondition(
    ctx: &Context,
    rx: &mut mpsc::Receiver<u32>,
    on: bool,
) -> Result<u32, Error> {
    tokio::select! {
        Some(n) = rx.recv(), if on => Ok(n),
        else => Ok(0),
    }
}

#[tokio::test(start_paused = true)]
async fn an_enabled_branch_is_waited_for_and_cancelled() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(7).await.unwrap();
    assert_eq!(
        enabled_precondition(&Context::background(), &mut rx, true).await,
        Ok(7)
    );
    assert_eq!(
        enabled_precondition(&Context::background(), &mut rx, false).await,
        Ok(0)
    );

    let (ctx, cancel) = Context::background().with_cancel();
    let task = tokio::spawn(async move { enabled_precondition(&ctx, &mut rx, true).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
    drop(tx);
}

/// Handlers that `continue`, `break` and `return`.
#[cancellable]
async fn control_flow(ctx: &Context, mut rx: mpsc::Receiver<u32>) -> Result<Vec<u32>, Error> {
    let mut kept = Vec::new();
    let last = 'outer: loop {
        tokio::select! {
            n = rx.recv() => match n {
                Some(0) => break 'outer 0,
                Some(99) => return Ok(vec![99]),
                Some(n) if n % 2 == 1 => continue,
                Some(n) => kept.push(n),
                None => break 'outer 1,
            },
        }
    };
    kept.push(last);
    Ok(kept)
}

#[tokio::test(start_paused = true)]
async fn break_continue_and_return_in_handlers_are_unchanged() {
    let run = |values: Vec<u32>| async move {
        let (tx, rx) = mpsc::channel(values.len().max(1));
        for v in values {
            tx.send(v).await.unwrap();
        }
        drop(tx);
        control_flow(&Context::background(), rx).await
    };
    assert_eq!(run(vec![2, 3, 4, 0, 6]).await, Ok(vec![2, 4, 0]));
    assert_eq!(run(vec![2, 99, 4]).await, Ok(vec![99]));
    assert_eq!(run(vec![5, 8]).await, Ok(vec![8, 1]));
}

#[cancellable]
async fn await_in_handler(
    ctx: &Context,
    go: oneshot::Receiver<()>,
    reached: oneshot::Sender<()>,
) -> Result<(), Error> {
    tokio::select! {
        _ = go => {
            let _ = reached.send(());
            tokio::time::sleep(HOUR).await; // raced, as every await of the body
        }
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_awaits_of_a_handler_are_raced() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (go_tx, go) = oneshot::channel();
    let (reached_tx, reached) = oneshot::channel();
    let task = tokio::spawn(async move { await_in_handler(&ctx, go, reached_tx).await });
    go_tx.send(()).unwrap();
    reached.await.unwrap();
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
    assert_eq!(Instant::now(), cancelled_at);
}

#[cancellable]
async fn mismatch(ctx: &Context) -> Result<&'static str, Error> {
    Ok(tokio::select! {
        Some(_) = std::future::ready(None::<u32>) => "matched",
        else => "the branch was disabled by its pattern",
    })
}

#[tokio::test(start_paused = true)]
async fn a_branch_whose_pattern_fails_is_disabled_and_else_runs() {
    assert_eq!(
        mismatch(&Context::background()).await,
        Ok("the branch was disabled by its pattern")
    );
}

#[cancellable]
async fn no_else(ctx: &Context) -> Result<u32, Error> {
    tokio::select! {
        Some(n) = std::future::ready(None::<u32>) => Ok(n),
    }
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "all branches are disabled and there is no else branch")]
async fn without_else_tokio_still_panics_when_every_branch_is_disabled() {
    let _ = no_else(&Context::background()).await;
}

#[cancellable]
async fn bare_select(ctx: &Context, rx: &mut mpsc::Receiver<u32>) -> Result<Option<u32>, Error> {
    use tokio::select;
    select! {
        n = rx.recv() => Ok(n),
    }
}

#[tokio::test(start_paused = true)]
async fn a_bare_select_is_raced_as_tokio_s() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, mut rx) = mpsc::channel(1);
    let task = tokio::spawn(async move { bare_select(&ctx, &mut rx).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    cancel.cancel();
    let result = tokio::time::timeout(HOUR, task)
        .await
        .expect("ignored the cancel");
    assert_eq!(result.unwrap(), Err(Error::Canceled));
    drop(tx);
}

/// A select that is the only suspension point of the fn, in expression
/// position, with a timeout, and a future that must be dropped.
#[cancellable(timeout = "100ms")]
async fn only_a_select(ctx: &Context, dropped: Arc<AtomicUsize>) -> Result<(), Error> {
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let guard = Guard(dropped);
    let value = tokio::select! {
        () = async move { let _guard = guard; std::future::pending::<()>().await } => 1,
    };
    let _ = value;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fires_through_a_select_and_drops_its_futures() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let result = tokio::time::timeout(
        HOUR,
        only_a_select(&Context::background(), Arc::clone(&dropped)),
    )
    .await
    .expect("the timeout did not fire through the select");
    assert_eq!(result, Err(Error::DeadlineExceeded));
    assert_eq!(Instant::now() - start, Duration::from_millis(100));
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[cancellable]
async fn send_select(ctx: &Context, rx: &mut mpsc::Receiver<u32>) -> Result<u32, Error> {
    tokio::select! {
        Some(n) = rx.recv() => Ok(n),
        else => Ok(0),
    }
}

#[test]
fn a_raced_select_keeps_the_fn_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (_tx, mut rx) = mpsc::channel(1);
    let ctx = Context::background();
    assert_send(&send_select(&ctx, &mut rx));
}
