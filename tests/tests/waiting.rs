//! Waiting: done(), done_owned(), run(), wait_blocking(), across tasks and threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ctx_runtime::{Context, Error};

#[tokio::test]
async fn done_wakes_every_waiting_task() {
    let (ctx, cancel) = Context::background().with_cancel();
    let started = Arc::new(tokio::sync::Barrier::new(101));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let child = if i % 2 == 0 {
                ctx.clone()
            } else {
                ctx.with_value(i)
            };
            let started = Arc::clone(&started);
            tokio::spawn(async move {
                let done = child.done();
                started.wait().await;
                done.await;
                child.err()
            })
        })
        .collect();
    started.wait().await;
    cancel.cancel();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Some(Error::Canceled));
    }
}

#[tokio::test]
async fn done_of_an_uncancellable_context_stays_pending() {
    let bg = Context::background();
    tokio::select! {
        biased;
        _ = bg.done() => panic!("background is never done"),
        _ = std::future::ready(()) => {}
    }
    let (parent, cancel) = Context::background().with_cancel();
    let detached = parent.without_cancel();
    cancel.cancel();
    tokio::select! {
        biased;
        _ = detached.done_owned() => panic!("without_cancel is never done"),
        _ = std::future::ready(()) => {}
    }
}

#[tokio::test]
async fn done_is_ready_at_once_on_a_done_context() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    ctx.done().await;
    ctx.done_owned().await;
}

#[tokio::test(start_paused = true)]
async fn a_select_loop_over_done_does_not_grow() {
    // 100,000 iterations of select! with the other branch always winning.
    let (ctx, cancel) = Context::background().with_cancel();
    let mut ticks = 0u32;
    for _ in 0..100_000 {
        tokio::select! {
            _ = ctx.done() => unreachable!(),
            _ = std::future::ready(()) => ticks += 1,
        }
    }
    assert_eq!(ticks, 100_000);
    cancel.cancel();
    ctx.done().await;
}

#[tokio::test(start_paused = true)]
async fn run_returns_the_output_or_the_error_and_drops_the_future() {
    struct DropFlag(Arc<AtomicUsize>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let (ctx, cancel) = Context::background().with_cancel();
    assert_eq!(ctx.run(async { 42 }).await, Ok(42));

    let drops = Arc::new(AtomicUsize::new(0));
    let flag = DropFlag(Arc::clone(&drops));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let run = ctx.run(async move {
        let _flag = flag;
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await
    });
    let task = tokio::spawn(run);
    started_rx.await.unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    cancel.cancel();
    assert_eq!(task.await.unwrap(), Err(Error::Canceled));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the losing future is dropped"
    );
}

#[tokio::test]
async fn run_on_a_done_context_never_polls_the_future() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let polled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&polled);
    let result = ctx
        .run(std::future::poll_fn(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
            std::task::Poll::Ready(())
        }))
        .await;
    assert_eq!(result, Err(Error::Canceled));
    assert_eq!(polled.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn run_reports_deadline_exceeded() {
    let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(100));
    let result = ctx.run(tokio::time::sleep(Duration::from_secs(10))).await;
    assert_eq!(result, Err(Error::DeadlineExceeded));
}

#[tokio::test]
async fn run_accepts_into_future_and_is_static() {
    struct Later(u8);
    impl std::future::IntoFuture for Later {
        type Output = u8;
        type IntoFuture = std::future::Ready<u8>;
        fn into_future(self) -> Self::IntoFuture {
            std::future::ready(self.0)
        }
    }
    let fut = {
        let ctx = Context::background().with_value(1u8);
        ctx.run(Later(9))
    }; // ctx dropped: the future does not borrow it
    assert_eq!(tokio::spawn(fut).await.unwrap(), Ok(9));
}

#[test]
fn wait_blocking_wakes_threads_and_times_out() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert!(!ctx.wait_blocking(Some(Duration::from_millis(1))));
    assert!(!ctx.wait_blocking(Some(Duration::ZERO)));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ctx = ctx.clone();
            std::thread::spawn(move || ctx.wait_blocking(Some(Duration::MAX)))
        })
        .collect();
    cancel.cancel();
    for t in threads {
        assert!(t.join().unwrap());
    }
    assert!(ctx.wait_blocking(None), "a done context returns at once");
}
