//! The runtime never panics inside, not even to catch the panic again: a
//! program built with `panic = "abort"` would die of it, and a panic hook
//! (which reports to an error tracker, say) sees every one. This binary
//! counts the hook's calls around the cases where tokio itself would panic:
//! a runtime built without timers, deadlines near the largest `Instant`.
//!
//! One test, because the hook is process-wide. (`.ci/run` also runs the
//! public API in a binary built with `panic = "abort"`: see panic-abort/.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ctx_runtime::{Context, Error, Instant};

/// The largest `Instant` this platform has, found by doubling and halving.
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

fn runtimes() -> Vec<(&'static str, tokio::runtime::Runtime)> {
    use tokio::runtime::Builder;
    vec![
        (
            "current_thread without timers",
            Builder::new_current_thread().build().unwrap(),
        ),
        (
            "multi_thread without timers",
            Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap(),
        ),
        (
            "current_thread",
            Builder::new_current_thread().enable_time().build().unwrap(),
        ),
        (
            "current_thread, paused",
            Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap(),
        ),
    ]
}

#[test]
fn nothing_panics_inside_the_runtime() {
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&hook_calls);
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        calls.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));

    let near_max = Instant::from_std(instant_max() - Duration::from_micros(500));
    for (name, rt) in runtimes() {
        rt.block_on(async {
            // A timeout fires, even in a runtime without timers.
            let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(20));
            assert_eq!(ctx.done().await, Error::DeadlineExceeded, "{name}");
            // A deadline at the end of time is no deadline, and no overflow.
            let (ctx, _c) = Context::background().with_deadline(near_max);
            assert!(!ctx.is_done(), "{name}");
            assert!(ctx.deadline().is_none_or(|d| d == near_max), "{name}");
            let (ctx, _c) = Context::background().with_timeout(Duration::MAX);
            assert_eq!(ctx.deadline(), None, "{name}");
            let (ctx, _c) = Context::background()
                .with_timeout_cause(Duration::from_secs(u64::MAX / 2), "never");
            assert!(!ctx.is_done(), "{name}");
            // after_func and spawn under it.
            let (ctx, cancel) = Context::background().with_cancel();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _after = ctx.after_func(move || tx.send(()).unwrap());
            let task = ctx_runtime::spawn(&ctx, |ctx| async move { ctx.done().await });
            cancel.cancel();
            rx.await.unwrap();
            assert_eq!(task.await.unwrap(), Error::Canceled, "{name}");
        });
        drop(rt);
    }
    // And outside any runtime.
    let (ctx, _c) = Context::background().with_deadline(near_max);
    assert!(!ctx.is_done());
    let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(10));
    assert!(ctx.wait_blocking(Some(Duration::from_secs(10))));

    let _ = std::panic::take_hook();
    assert_eq!(hook_calls.load(Ordering::SeqCst), 0, "the panic hook ran");
}
