//! The bridge to tokio-util's `CancellationToken`, both ways (issue 12,
//! item 2), with code that takes a token as a library would.

use std::time::Duration;

use ctx_runtime::{Context, Error, TokenCancelled};
use tokio_util::sync::CancellationToken;

/// A "library" that works until its token is cancelled, the way code written
/// for tokio-util does.
async fn library_worker(
    token: CancellationToken,
    mut jobs: tokio::sync::mpsc::Receiver<u32>,
) -> u32 {
    let mut done = 0;
    while let Some(Some(_job)) = token.run_until_cancelled(jobs.recv()).await {
        done += 1;
    }
    done
}

#[tokio::test(start_paused = true)]
async fn a_library_that_takes_a_token_stops_with_the_context() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let worker = tokio::spawn(library_worker(ctx.cancellation_token(), rx));
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    tokio::task::yield_now().await;
    cancel.cancel();
    assert_eq!(worker.await.unwrap(), 2);
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_cancels_the_token() {
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    let token = ctx.cancellation_token();
    assert!(!token.is_cancelled());
    token.cancelled().await; // the paused clock jumps to the deadline
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn tokens_of_one_context_are_independent_children() {
    let (ctx, cancel) = Context::background().with_cancel();
    let tokens: Vec<_> = (0..3).map(|_| ctx.cancellation_token()).collect();
    // A user cancelling the token they were given cancels nothing else.
    tokens[0].cancel();
    assert!(!ctx.is_done());
    assert!(!tokens[1].is_cancelled() && !tokens[2].is_cancelled());
    // A descendant's token goes with the context too.
    let (child, _c) = ctx.with_value(7u8).with_cancel();
    let child_token = child.cancellation_token();
    cancel.cancel();
    assert!(tokens.iter().all(CancellationToken::is_cancelled));
    assert!(child_token.is_cancelled());
    // Asked again once done: cancelled already.
    assert!(ctx.cancellation_token().is_cancelled());
}

#[test]
fn a_context_that_cannot_be_done_gives_a_token_that_never_is() {
    let (parent, cancel) = Context::background().with_cancel();
    let detached = parent.without_cancel();
    let tokens = [
        Context::background().cancellation_token(),
        detached.cancellation_token(),
    ];
    cancel.cancel();
    assert!(tokens.iter().all(|t| !t.is_cancelled()));
}

#[test]
fn a_cancelled_token_cancels_its_context_with_a_cause_that_says_so() {
    let shutdown = CancellationToken::new();
    let (parent, _p) = Context::background().with_cancel();
    let (ctx, _cancel) = parent.with_cancellation_token(shutdown.clone());
    let (grandchild, _g) = ctx.with_cancel();
    assert!(!ctx.is_done());
    assert_eq!(
        format!("{ctx:?}"),
        "Context::background().with_cancel().with_cancellation_token() [live]"
    );
    shutdown.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx.cause().unwrap().is::<TokenCancelled>());
    assert!(grandchild.cause().unwrap().is::<TokenCancelled>());
    assert!(!parent.is_done(), "the parent is not the token's");
}

#[test]
fn a_token_cancelled_already_gives_a_context_done_already() {
    let token = CancellationToken::new();
    token.cancel();
    let (ctx, _c) = Context::background().with_cancellation_token(token);
    assert!(ctx.is_done());
    assert!(ctx.cause().unwrap().is::<TokenCancelled>());
}

#[test]
fn the_context_ending_first_leaves_the_token_alone() {
    let token = CancellationToken::new();
    let (parent, cancel_parent) = Context::background().with_cancel();
    let (ctx, _c) = parent.with_cancellation_token(token.clone());
    cancel_parent.cancel_with_cause("parent went away");
    assert!(ctx.is_done());
    assert_eq!(ctx.cause().unwrap().to_string(), "parent went away");
    assert!(!token.is_cancelled(), "the bridge goes one way");
    token.cancel(); // nothing left to wake: no effect, no panic
    assert_eq!(ctx.cause().unwrap().to_string(), "parent went away");
}

#[tokio::test]
async fn no_task_is_spawned_per_bridged_context() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let token = CancellationToken::new();
    let contexts: Vec<_> = (0..100)
        .map(|_| Context::background().with_cancellation_token(token.clone()))
        .collect();
    assert_eq!(metrics.num_alive_tasks(), before);
    token.cancel();
    assert!(contexts.iter().all(|(ctx, _)| ctx.is_done()));
}

/// A token whose waiters include a task: cancelling the token wakes the task
/// through the context, on the cancelling thread, across threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cancelled_on_another_thread_wakes_tasks_waiting_on_the_context() {
    let token = CancellationToken::new();
    let (ctx, _c) = Context::background().with_cancellation_token(token.clone());
    let waiters: Vec<_> = (0..8).map(|_| tokio::spawn(ctx.done_owned())).collect();
    std::thread::spawn(move || token.cancel()).join().unwrap();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), Error::Canceled);
    }
}
