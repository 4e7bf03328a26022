//! `after_func`: Go's context.AfterFunc, stop semantics included.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use ctx_runtime::Context;

/// Long enough to never be hit on a loaded CI machine; only bounds a hang.
const HANG: Duration = Duration::from_secs(30);

#[test]
fn runs_once_after_cancel_on_another_thread() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let here = std::thread::current().id();
    let _after = ctx.after_func(move || tx.send(std::thread::current().id()).unwrap());
    assert!(rx.try_recv().is_err(), "not before the cancel");
    cancel.cancel();
    cancel.cancel();
    let ran_on = rx.recv_timeout(HANG).unwrap();
    assert_ne!(ran_on, here, "f runs on a thread of its own");
    // f was consumed by its one run, taking the sender with it.
    assert_eq!(
        rx.recv_timeout(HANG),
        Err(mpsc::RecvTimeoutError::Disconnected),
        "and only once"
    );
}

#[test]
fn runs_at_once_when_registered_on_a_done_context() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let (tx, rx) = mpsc::channel();
    let after = ctx.after_func(move || tx.send(()).unwrap());
    rx.recv_timeout(HANG).unwrap();
    assert!(!after.stop(), "already started");
}

#[test]
fn stop_before_cancel_prevents_the_call() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel::<()>();
    let after = ctx.after_func(move || tx.send(()).unwrap());
    assert!(after.stop());
    assert!(!after.stop(), "second stop: already stopped");
    cancel.cancel();
    // The sender was dropped with the stopped closure: the channel closes
    // without a message, which proves f was dropped, not run.
    assert_eq!(
        rx.recv_timeout(HANG),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn stop_after_cancel_returns_false() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let after = ctx.after_func(move || tx.send(()).unwrap());
    cancel.cancel();
    assert!(!after.stop());
    rx.recv_timeout(HANG).unwrap();
}

#[test]
fn never_runs_on_a_context_that_cannot_be_cancelled() {
    let (tx, rx) = mpsc::channel::<&str>();
    let tx2 = tx.clone();
    let bg = Context::background().after_func(move || tx.send("background").unwrap());
    let (parent, cancel) = Context::background().with_cancel();
    let detached = parent
        .without_cancel()
        .after_func(move || tx2.send("detached").unwrap());
    cancel.cancel();
    assert!(rx.try_recv().is_err());
    assert!(
        bg.stop(),
        "stop reports that it stopped f from ever running"
    );
    assert!(!bg.stop());
    assert!(detached.stop());
    assert_eq!(
        rx.recv_timeout(HANG),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn runs_when_an_ancestor_is_cancelled() {
    let (root, cancel) = Context::background().with_cancel();
    let leaf = root.with_value(1u8).with_cancel().0;
    let (tx, rx) = mpsc::channel();
    let _after = leaf.after_func(move || tx.send(()).unwrap());
    cancel.cancel();
    rx.recv_timeout(HANG).unwrap();
}

#[test]
fn cancel_does_not_wait_for_a_slow_callback() {
    let (ctx, cancel) = Context::background().with_cancel();
    let gate = Arc::new(Barrier::new(2));
    let (tx, rx) = mpsc::channel();
    let g = Arc::clone(&gate);
    let _after = ctx.after_func(move || {
        g.wait(); // blocks until the test has returned from cancel()
        tx.send(()).unwrap();
    });
    cancel.cancel(); // would deadlock here if cancel waited for f
    gate.wait();
    rx.recv_timeout(HANG).unwrap();
}

#[test]
fn a_panicking_callback_does_not_poison_the_context_or_stop_others() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let _bad = ctx.after_func(|| panic!("callback failed"));
    for i in 0..3 {
        let tx = tx.clone();
        let _ = ctx.after_func(move || tx.send(i).unwrap());
    }
    cancel.cancel();
    let mut got: Vec<i32> = (0..3).map(|_| rx.recv_timeout(HANG).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2]);
    // The context is still fully usable.
    assert!(ctx.is_done());
    let (child, _c) = ctx.with_cancel();
    assert!(child.is_done());
    let (tx, rx) = mpsc::channel();
    let _late = ctx.after_func(move || tx.send(()).unwrap());
    rx.recv_timeout(HANG).unwrap();
}

#[test]
fn stopped_callbacks_do_not_accumulate() {
    // A long-lived parent with many short registrations: each stop unlinks.
    let (ctx, _cancel) = Context::background().with_cancel();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..10_000 {
        let c = Arc::clone(&count);
        let after = ctx.after_func(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert!(after.stop());
    }
    // Each closure held a clone of `count`; all were dropped by stop().
    assert_eq!(Arc::strong_count(&count), 1);
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_racing_cancel_runs_f_iff_stop_lost() {
    for _ in 0..200 {
        let (ctx, cancel) = Context::background().with_cancel();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let after = ctx.after_func(move || tx.send(()).unwrap());
        let stopper = tokio::spawn(async move { after.stop() });
        let canceller = tokio::spawn(async move { cancel.cancel() });
        let stopped = stopper.await.unwrap();
        canceller.await.unwrap();
        let ran = rx.recv().await.is_some();
        assert_eq!(ran, !stopped, "f ran: {ran}, stop returned: {stopped}");
    }
}

#[test]
fn debug_shows_the_state() {
    let (ctx, cancel) = Context::background().with_cancel();
    let after = ctx.after_func(|| {});
    assert_eq!(format!("{after:?}"), "AfterFunc { state: \"pending\" }");
    cancel.cancel();
    assert_eq!(format!("{after:?}"), "AfterFunc { state: \"started\" }");
}
