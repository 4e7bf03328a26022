//! `TaskTracker`: tokio-util's tracker with tasks under a context, and the
//! way to and from tokio-util's own. Time is paused; waits are on channels
//! and an idle runtime.

use std::convert::Infallible;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use ctx_runtime::http::CtxLayer;
use ctx_runtime::{Context, Error, TaskHandle, TaskTracker, TrackerToken};
use http::{Request, Response};
use http_body_util::Full;
use tokio::sync::oneshot;
use tower_layer::Layer;
use tower_service::Service;

/// Paused time passes this the moment every task is blocked.
const IDLE: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn spawn_runs_under_a_child_context_and_is_counted_until_the_task_ends() {
    let tracker = TaskTracker::new();
    let (root, shutdown) = Context::background().with_cancel();
    let (ctx_tx, ctx_rx) = oneshot::channel();
    let join = tracker
        .spawn(&root, move |ctx| async move {
            let _ = ctx_tx.send(ctx.clone());
            ctx.run(std::future::pending::<()>()).await
        })
        .detach();
    let ctx = ctx_rx.await.unwrap();
    assert!(!ctx.same(&root), "a child of the root");
    assert_eq!(tracker.len(), 1);

    shutdown.cancel_with_cause("shutting down");
    assert_eq!(join.await.unwrap(), Err(Error::Canceled));
    assert!(tracker.is_empty(), "counted out when the task ended");
    assert_eq!(ctx.cause().unwrap().to_string(), "shutting down");
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(start_paused = true)]
async fn a_tokio_util_tracker_converts_both_ways_and_shares_its_count() {
    let theirs = tokio_util::task::TaskTracker::new();
    let ours = TaskTracker::from(theirs.clone());
    let task = ours.spawn(&Context::background(), |ctx| async move {
        ctx.run(std::future::pending::<()>()).await
    });
    let _token: TrackerToken = ours.token();
    assert_eq!(theirs.len(), 2, "one count behind both");

    let back = tokio_util::task::TaskTracker::from(ours.clone());
    assert!(tokio_util::task::TaskTracker::ptr_eq(&back, &theirs));
    assert!(tokio_util::task::TaskTracker::ptr_eq(
        ours.as_tokio_util(),
        &theirs
    ));
    theirs.close();
    assert!(ours.is_closed());

    drop(task); // aborts the task and counts it out
    drop(_token);
    ours.wait().await;
    assert!(theirs.is_empty());
}

/// A service that answers at once with an empty body.
#[derive(Clone)]
struct Answer;

impl Service<Request<()>> for Answer {
    type Response = Response<Full<bytes::Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<()>) -> Self::Future {
        // A body with something to send: the request lasts until it is sent.
        std::future::ready(Ok(Response::new(Full::new(bytes::Bytes::from_static(
            b"done",
        )))))
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_passes_its_tokio_util_tracker_to_the_layer() {
    // A service that already shuts down with tokio-util's tracker keeps it.
    let requests = tokio_util::task::TaskTracker::new();
    let mut service = CtxLayer::new(Context::background())
        .tracker(requests.clone().into())
        .layer(Answer);
    let response = service.call(Request::new(())).await.unwrap();
    assert_eq!(requests.len(), 1, "counted until the response is done");
    drop(response);
    requests.close();
    requests.wait().await;
}

#[tokio::test(start_paused = true)]
async fn wait_is_cancel_safe_and_many_may_wait() {
    let tracker = TaskTracker::new();
    let token = tracker.token();
    assert!(tracker.close());
    let gave_up = tokio::time::timeout(IDLE, tracker.wait()).await;
    assert!(gave_up.is_err(), "a token is still out");

    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let tracker = tracker.clone();
            tokio::spawn(async move { tracker.wait().await })
        })
        .collect();
    tokio::time::sleep(IDLE).await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    drop(token);
    for waiter in waiters {
        waiter.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn reopen_makes_wait_wait_for_close_again() {
    let tracker = TaskTracker::new();
    tracker.close();
    tracker.wait().await;
    assert!(tracker.reopen());
    let open = tokio::time::timeout(IDLE, tracker.wait()).await;
    assert!(open.is_err(), "open again: wait waits for close");
    let token = tracker.token();
    let cloned = token.clone();
    assert_eq!(tracker.len(), 2, "a cloned token counts too");
    drop((token, cloned));
    assert!(tracker.is_empty());
}

#[test]
fn tracker_types_are_send_sync_and_debug() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<TaskTracker>();
    send_sync::<TrackerToken>();
    send_sync::<TaskHandle<String>>();

    fn send<T: Send>(_: &T) {}
    let tracker = TaskTracker::new();
    send(&tracker.wait());
    let _token = tracker.token();
    tracker.close();
    assert_eq!(
        format!("{tracker:?}"),
        "TaskTracker { len: 1, closed: true }"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_tracked_handle_aborts_cancels_and_counts_out() {
    let tracker = TaskTracker::new();
    let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
    let task = tracker.spawn(&Context::background(), move |_ctx| async move {
        let _dropped = dropped_tx; // closes the channel when the future is dropped
        std::future::pending::<()>().await
    });
    let ctx = task.context().clone();
    drop(task);
    assert_eq!(ctx.cause().unwrap().to_string(), "task handle dropped");
    assert!(dropped_rx.await.is_err(), "the future was dropped: aborted");
    tracker.close();
    let waited = tokio::time::timeout(IDLE, tracker.wait()).await;
    assert!(waited.is_ok());
}

#[tokio::test(start_paused = true)]
async fn futures_tracked_through_tokio_util_count_too() {
    let tracker = TaskTracker::new();
    let tracked = tracker.as_tokio_util().track_future(async { 1 });
    assert_eq!(tracker.len(), 1);
    let joined = tokio::spawn(tracked);
    assert_eq!(joined.await.unwrap(), 1);
    assert!(tracker.is_empty());
    let spawned = tokio_util::task::TaskTracker::from(tracker.clone()).spawn(async {});
    spawned.await.unwrap();
    tracker.close();
    tracker.wait().await;
    assert!(tracker.is_empty());
}
