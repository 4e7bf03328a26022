//! `spawn`, `Group` and `TaskTracker`: tasks that live and die with their
//! context. Time is paused; waits are on contexts, channels and handles.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ctx_runtime::{Context, Error, Group, SpawnExt, TaskFailed, TaskTracker};
use tokio::sync::oneshot;

/// Runs `f` when dropped: shows that a task's future was dropped (aborted).
struct OnDrop(Option<oneshot::Sender<()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_task_runs_under_a_child_context() {
    struct RequestId(u32);
    let (parent, cancel) = Context::background().with_value(RequestId(9)).with_cancel();
    let task = ctx_runtime::spawn(&parent, |ctx| async move {
        let id = ctx.value::<RequestId>().map(|r| r.0);
        let stopped = ctx.run(std::future::pending::<()>()).await;
        (id, stopped, ctx.cause().map(|c| c.to_string()))
    });
    assert!(
        !task.context().same(&parent),
        "a child, not the parent itself"
    );
    cancel.cancel_with_cause("client disconnected");
    let (id, stopped, cause) = task.await.unwrap();
    assert_eq!(id, Some(9));
    assert_eq!(stopped, Err(Error::Canceled));
    assert_eq!(cause.as_deref(), Some("client disconnected"));
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_task_never_touches_the_parent() {
    let (parent, _cancel) = Context::background().with_cancel();
    let task = parent.spawn(|ctx| async move { ctx.done().await });
    task.cancel();
    task.await.unwrap();
    assert!(!parent.is_done());
}

#[tokio::test(start_paused = true)]
async fn the_task_context_ends_with_the_task() {
    let (inner_tx, inner_rx) = oneshot::channel();
    let task = ctx_runtime::spawn(&Context::background(), |ctx| async move {
        // Something the task started under its context, left running.
        let _ = inner_tx.send(ctx.clone());
        42
    });
    let ctx = inner_rx.await.unwrap();
    assert_eq!(task.await.unwrap(), 42);
    ctx.done().await; // Go's deferred cancel() ran when the task returned
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_cancels_and_aborts() {
    let (dropped_tx, dropped_rx) = oneshot::channel();
    let (started_tx, started_rx) = oneshot::channel();
    let task = ctx_runtime::spawn(&Context::background(), |_ctx| async move {
        let _guard = OnDrop(Some(dropped_tx));
        let _ = started_tx.send(());
        std::future::pending::<()>().await // ignores its context: only abort stops it
    });
    started_rx.await.unwrap();
    let ctx = task.context().clone();
    drop(task);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(ctx.cause().unwrap().to_string(), "task handle dropped");
    dropped_rx.await.unwrap(); // the future was dropped
}

#[tokio::test(start_paused = true)]
async fn a_detached_task_outlives_its_handle_but_not_its_parent() {
    let (parent, cancel) = Context::background().with_cancel();
    let (started_tx, started_rx) = oneshot::channel();
    let join = ctx_runtime::spawn(&parent, |ctx| async move {
        let _ = started_tx.send(());
        let slept = ctx.run(tokio::time::sleep(Duration::from_secs(60))).await;
        (slept, ctx.cause().map(|c| c.to_string()))
    })
    .detach();
    started_rx.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await; // time passes; the task lives
    assert!(!join.is_finished());
    cancel.cancel_with_cause("request over");
    let (slept, cause) = join.await.unwrap();
    assert_eq!(slept, Err(Error::Canceled));
    assert_eq!(cause.as_deref(), Some("request over"));
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_join_error_and_ends_the_context() {
    let task = ctx_runtime::spawn(&Context::background(), |_ctx| async {
        panic!("boom");
    });
    let ctx = task.context().clone();
    let err = task.await.unwrap_err();
    assert!(err.is_panic());
    assert!(ctx.is_done());
}

#[tokio::test(start_paused = true)]
async fn abort_gives_a_cancelled_join_error() {
    let task = ctx_runtime::spawn(&Context::background(), |_ctx| std::future::pending::<()>());
    task.abort();
    assert!(task.context().is_done());
    assert!(task.await.unwrap_err().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn group_first_error_cancels_the_rest_with_that_error_as_cause() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    let finished = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let finished = Arc::clone(&finished);
        group.spawn(move |ctx| async move {
            let stopped = ctx.run(tokio::time::sleep(Duration::from_secs(3600))).await;
            // Cleanup that takes a while after the cancellation: wait() waits for it.
            tokio::time::sleep(Duration::from_secs(1)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            stopped?;
            Ok(())
        });
    }
    group.spawn(|_ctx| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Err(io::Error::other("primary is down"))
    });
    group.spawn(|_ctx| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(io::Error::other("a later error"))
    });

    let err: io::Error = group.wait().await.unwrap_err();
    assert_eq!(err.to_string(), "primary is down", "the first error wins");
    assert_eq!(
        err.kind(),
        io::ErrorKind::Other,
        "the error itself, moved out"
    );
    assert_eq!(
        finished.load(Ordering::SeqCst),
        3,
        "wait returns after every task"
    );
    // The error went to wait; the cause keeps its message.
    let cause = ctx.cause().unwrap();
    assert_eq!(cause.to_string(), "primary is down");
    let failed = cause.downcast_ref::<TaskFailed>().unwrap();
    assert_eq!(failed.message(), "primary is down");
    assert!(!failed.is_panic());
}

#[tokio::test(start_paused = true)]
async fn group_success_waits_for_all_and_then_cancels_its_context() {
    let (group, ctx) = Group::<Error>::with_context(&Context::background());
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..5u64 {
        let done = Arc::clone(&done);
        group.spawn(move |ctx| async move {
            ctx.run(tokio::time::sleep(Duration::from_millis(10 * i)))
                .await?;
            done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    }
    assert!(group.wait().await.is_ok());
    assert_eq!(done.load(Ordering::SeqCst), 5);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(
        group.wait().await.is_ok(),
        "a second wait has nothing to wait for"
    );
}

#[tokio::test(start_paused = true)]
async fn group_is_cancelled_by_its_parent() {
    let (parent, cancel) = Context::background().with_cancel();
    let (group, _ctx) = Group::<Error>::with_context(&parent);
    group.spawn(|ctx| async move { ctx.run(std::future::pending::<()>()).await });
    cancel.cancel();
    assert_eq!(group.wait().await, Err(Error::Canceled));
}

#[tokio::test(start_paused = true)]
async fn group_tasks_can_spawn_into_the_group() {
    let (group, _ctx) = Group::<Error>::with_context(&Context::background());
    let group = Arc::new(group);
    let count = Arc::new(AtomicUsize::new(0));
    {
        let inner = Arc::clone(&group);
        let count = Arc::clone(&count);
        group.spawn(move |_ctx| async move {
            for _ in 0..3 {
                let count = Arc::clone(&count);
                inner.spawn(move |_ctx| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    count.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                });
            }
            Ok(())
        });
    }
    group.wait().await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn group_panic_cancels_the_rest_and_resumes_in_wait() {
    let (group, ctx) = Group::<Error>::with_context(&Context::background());
    group.spawn(|ctx| async move { ctx.run(std::future::pending::<()>()).await });
    group.spawn(|_ctx| async { panic!("boom") });
    let waiter = tokio::spawn(async move { group.wait().await });
    let err = waiter.await.unwrap_err();
    assert!(err.is_panic());
    let cause = ctx.cause().unwrap();
    assert_eq!(cause.to_string(), "a task of the group panicked");
    assert!(cause.downcast_ref::<TaskFailed>().unwrap().is_panic());
}

#[tokio::test(start_paused = true)]
async fn dropping_a_group_cancels_and_aborts_its_tasks() {
    let (dropped_tx, dropped_rx) = oneshot::channel();
    let (started_tx, started_rx) = oneshot::channel();
    let (group, ctx) = Group::<Error>::with_context(&Context::background());
    group.spawn(|_ctx| async move {
        let _guard = OnDrop(Some(dropped_tx));
        let _ = started_tx.send(());
        std::future::pending::<Result<(), Error>>().await
    });
    started_rx.await.unwrap();
    drop(group);
    assert_eq!(ctx.cause().unwrap().to_string(), "group dropped");
    dropped_rx.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn tracker_wait_needs_close_and_nothing_left() {
    let tracker = TaskTracker::new();
    let (root, shutdown) = Context::background().with_cancel();
    let stopped = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let stopped = Arc::clone(&stopped);
        tracker
            .spawn(&root, move |ctx| async move {
                ctx.done().await;
                tokio::time::sleep(Duration::from_millis(100)).await; // cleanup
                stopped.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
    }
    let token = tracker.token();
    assert_eq!(tracker.len(), 4);

    // Open: wait does not return even once the work is done (paused time
    // makes this an hour of virtual time, at no cost).
    let open = TaskTracker::new();
    let never = tokio::time::timeout(Duration::from_secs(3600), open.wait()).await;
    assert!(never.is_err(), "an open tracker's wait does not return");

    tracker.close();
    let still = tokio::time::timeout(Duration::from_secs(3600), tracker.wait()).await;
    assert!(still.is_err(), "closed, but tasks still run");

    shutdown.cancel();
    drop(token);
    tracker.wait().await;
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        3,
        "every task finished its cleanup"
    );
    assert!(tracker.is_empty());
}

#[tokio::test(start_paused = true)]
async fn tracker_counts_aborted_tasks_out() {
    let tracker = TaskTracker::new();
    let task = tracker.spawn(&Context::background(), |_ctx| std::future::pending::<()>());
    assert_eq!(tracker.len(), 1);
    drop(task); // aborts
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(start_paused = true)]
async fn awaiting_a_handle_is_cancel_safe() {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let mut task = ctx_runtime::spawn(&Context::background(), |_ctx| async move {
        let _ = release_rx.await;
        "released"
    });
    let gave_up = tokio::time::timeout(Duration::from_secs(3600), &mut task).await;
    assert!(gave_up.is_err(), "still running");
    assert!(
        !task.context().is_done(),
        "giving up on the await cancels nothing"
    );
    release_tx.send(()).unwrap();
    assert_eq!(task.await.unwrap(), "released");
}

#[tokio::test(start_paused = true)]
async fn handle_is_send_sync_and_debug() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let task = ctx_runtime::spawn(&Context::background(), |_ctx| async { 1u8 });
    send_sync(&task);
    let debug = format!("{task:?}");
    assert!(debug.starts_with("TaskHandle { ctx: "), "{debug}");
    assert!(debug.ends_with("finished: false }"), "{debug}");
    assert_eq!(task.await.unwrap(), 1);
}
