//! Deadlines and timeouts: Go's WithDeadline/WithTimeout semantics, on tokio's
//! clock (paused here, so nothing depends on how fast the machine is).

use std::time::Duration;

use ctx_runtime::{Context, Error, Instant};

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn a_timeout_fires_exactly_at_its_deadline_without_anyone_polling() {
    let start = Instant::now();
    let (ctx, _cancel) = Context::background().with_timeout(100 * MS);
    let (child, _c) = ctx.with_cancel();
    assert_eq!(ctx.deadline(), Some(start + 100 * MS));
    tokio::time::advance(99 * MS).await;
    assert_eq!(ctx.err(), None, "not before the deadline");
    tokio::time::advance(MS).await;
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        child.err(),
        Some(Error::DeadlineExceeded),
        "descendants are cancelled too"
    );
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

#[tokio::test(start_paused = true)]
async fn done_completes_at_the_deadline() {
    let start = Instant::now();
    let (ctx, _cancel) = Context::background().with_deadline(start + 250 * MS);
    ctx.done().await;
    assert_eq!(Instant::now(), start + 250 * MS);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_runs_after_funcs_with_nobody_awaiting_the_context() {
    let (ctx, _cancel) = Context::background().with_timeout(10 * MS);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _stop = ctx.after_func(move || {
        let _ = tx.send("ran");
    });
    drop(ctx);
    // Only time passes; nothing polls the context.
    assert_eq!(rx.await.unwrap(), "ran");
}

#[tokio::test(start_paused = true)]
async fn an_inherited_deadline_reports_deadline_exceeded_in_children() {
    let (parent, _p) = Context::background().with_timeout(50 * MS);
    let (child, _c) = parent.with_cancel();
    let grandchild = child.with_value(1u8);
    grandchild.done().await;
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert_eq!(grandchild.err(), Some(Error::DeadlineExceeded));
    assert_eq!(grandchild.deadline(), parent.deadline());
}

#[tokio::test(start_paused = true)]
async fn deadline_is_the_earliest_of_own_and_ancestors() {
    let now = Instant::now();
    let (parent, _p) = Context::background().with_deadline(now + 100 * MS);
    let (later, _l) = parent.with_deadline(now + 500 * MS);
    let (earlier, _e) = parent.with_deadline(now + 20 * MS);
    assert_eq!(
        later.deadline(),
        Some(now + 100 * MS),
        "a later deadline behaves as the parent's"
    );
    assert_eq!(earlier.deadline(), Some(now + 20 * MS));
    earlier.done().await;
    assert_eq!(Instant::now(), now + 20 * MS);
    assert_eq!(parent.err(), None);
    later.done().await;
    assert_eq!(
        Instant::now(),
        now + 100 * MS,
        "the later child ends with its parent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_in_the_past_is_already_expired() {
    let past = Instant::now();
    tokio::time::advance(10 * MS).await;
    let (ctx, _c) = Context::background().with_deadline(past);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let (zero, _z) = Context::background().with_timeout(Duration::ZERO);
    assert_eq!(zero.err(), Some(Error::DeadlineExceeded));
    assert_eq!(zero.remaining(), Some(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn deadline_cause_is_recorded_only_when_the_deadline_fires() {
    let (fired, _f) = Context::background().with_timeout_cause(10 * MS, "budget spent");
    let (cancelled, cancel) = Context::background().with_timeout_cause(10 * MS, "budget spent");
    let (with_cause, cancel_with_cause) =
        Context::background().with_deadline_cause(Instant::now() + 10 * MS, "budget spent");
    cancel.cancel();
    cancel_with_cause.cancel_with_cause("given");
    fired.done().await;
    assert_eq!(fired.err(), Some(Error::DeadlineExceeded));
    assert_eq!(fired.cause().unwrap().to_string(), "budget spent");
    assert_eq!(cancelled.err(), Some(Error::Canceled));
    assert_eq!(
        cancelled.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );
    assert_eq!(with_cause.cause().unwrap().to_string(), "given");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_cause_of_a_later_deadline_than_the_parents_is_not_used() {
    let (parent, _p) = Context::background().with_timeout(10 * MS);
    let (child, _c) = parent.with_timeout_cause(Duration::from_secs(1), "mine");
    child.done().await;
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        child.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_too_large_for_instant_means_no_deadline() {
    let (ctx, cancel) = Context::background().with_timeout(Duration::MAX);
    assert_eq!(ctx.deadline(), None);
    assert_eq!(ctx.remaining(), None);
    let (ctx2, _c2) = Context::background().with_timeout_cause(Duration::MAX, "never");
    assert_eq!(ctx2.deadline(), None);
    tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
    assert_eq!(ctx.err(), None);
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[tokio::test(start_paused = true)]
async fn remaining_counts_down() {
    let (ctx, _c) = Context::background().with_timeout(Duration::from_secs(3));
    assert_eq!(ctx.remaining(), Some(Duration::from_secs(3)));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(ctx.remaining(), Some(Duration::from_secs(2)));
}

#[test]
fn a_deadline_made_outside_any_runtime_fires_on_the_timer_thread() {
    let (ctx, _cancel) = Context::background().with_timeout(20 * MS);
    let (child, _c) = ctx.with_cancel();
    assert!(child.wait_blocking(Some(Duration::from_secs(30))));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_deadline_in_a_runtime_without_timers_falls_back_to_the_timer_thread() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ctx = rt.block_on(async {
        let (ctx, cancel) = Context::background().with_timeout(10 * MS);
        std::mem::forget(cancel);
        ctx
    });
    assert!(ctx.wait_blocking(Some(Duration::from_secs(30))));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_deadline_outlives_the_runtime_it_was_made_in() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (ctx, cancel) = rt.block_on(async { Context::background().with_timeout(50 * MS) });
    drop(rt);
    assert_eq!(ctx.err(), None, "a runtime's shutdown is not a deadline");
    assert!(ctx.wait_blocking(Some(Duration::from_secs(30))));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    drop(cancel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_fire_on_a_multi_thread_runtime() {
    let (ctx, _c) = Context::background().with_timeout(5 * MS);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (child, guard) = ctx.with_timeout(Duration::from_secs(60));
            tokio::spawn(async move {
                child.done().await;
                drop(guard);
                child.err()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Some(Error::DeadlineExceeded));
    }
}

/// Outside a runtime, deadlines go to the timer thread, which sleeps until
/// the first one it knows of: an earlier deadline queued later must wake it.
#[test]
fn an_earlier_deadline_queued_later_wakes_the_timer_thread() {
    let (late, _l) = Context::background().with_timeout(Duration::from_secs(600));
    let (other, _o) =
        std::thread::spawn(|| Context::background().with_timeout(Duration::from_secs(300)))
            .join()
            .unwrap();
    let (soon, _s) = Context::background().with_timeout(Duration::from_millis(20));
    assert!(
        soon.wait_blocking(Some(Duration::from_secs(60))),
        "the 20 ms deadline waited for a later one"
    );
    assert_eq!(soon.err(), Some(Error::DeadlineExceeded));
    assert!(!late.is_done() && !other.is_done());
}
