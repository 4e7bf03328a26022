//! Loom models of the races the tree must survive. Run with `scripts/loom`
//! (`RUSTFLAGS="--cfg ctx_loom" cargo test -p ctx-runtime --lib --release`).
//!
//! Each model explores every interleaving (up to `LOOM_MAX_PREEMPTIONS`) of
//! the node locks and state atomics. A lost wake-up shows up as a deadlock of
//! `block_on`, which loom reports; a broken invariant as a failed assertion.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Waker};

use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

use crate::context::Repr;
use crate::tree::CancelNode;
use crate::{Context, Error};

fn node(ctx: &Context) -> &Arc<CancelNode> {
    match &ctx.repr {
        Repr::Cancel(node) => node,
        _ => unreachable!("a cancel context"),
    }
}

fn cause_text(ctx: &Context) -> String {
    ctx.cause().map(|c| c.to_string()).unwrap_or_default()
}

/// A child made while its parent is being cancelled is either cancelled by
/// that cancel or born cancelled; never live under a cancelled parent, and
/// never left in the parent's list.
#[test]
fn cancel_racing_child_creation() {
    loom::model(|| {
        let (parent, cancel) = Context::background().with_cancel();
        let p = parent.clone();
        let maker = thread::spawn(move || p.with_cancel());
        cancel.cancel_with_cause("stop");
        let (child, child_handle) = maker.join().unwrap();
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(cause_text(&child), "stop");
        drop(child_handle);
        assert_eq!(node(&parent).child_count(), 0);
    });
}

/// A task that registered before the cancel is woken; one that registers
/// after sees the state. `block_on` deadlocks (and loom fails) otherwise.
#[test]
fn cancel_racing_done_registration() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let c = ctx.clone();
        let waiter = thread::spawn(move || block_on(c.done()));
        cancel.cancel();
        waiter.join().unwrap();
        assert_eq!(node(&ctx).waiter_count(), 0);
    });
}

/// A waiter that polls once and goes away, racing the cancel: the waiter list
/// ends empty either way, and nothing is woken twice or after removal.
#[test]
fn cancel_racing_waiter_drop() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let c = ctx.clone();
        let waiter = thread::spawn(move || {
            // Polled once, then dropped (deregistering) at the end of this
            // block: `drop` of the `Pin<&mut _>` that `pin!` gives would not.
            let mut done = Box::pin(c.done());
            let first = done
                .as_mut()
                .poll(&mut TaskContext::from_waker(Waker::noop()));
            drop(done);
            first
        });
        cancel.cancel();
        let _ = waiter.join().unwrap();
        assert_eq!(node(&ctx).waiter_count(), 0);
        assert!(ctx.is_done());
    });
}

/// Parent and child cancelled at once with different causes: the first
/// cancellation of each node wins, and every reader agrees afterwards.
#[test]
fn parent_and_child_cancelled_at_once() {
    loom::model(|| {
        let (parent, cancel_parent) = Context::background().with_cancel();
        let (child, cancel_child) = parent.with_cancel();
        let grandchild = child.with_value(1u8);
        let t = thread::spawn(move || cancel_parent.cancel_with_cause("parent"));
        cancel_child.cancel_with_cause("child");
        t.join().unwrap();
        assert_eq!(cause_text(&parent), "parent");
        let seen = cause_text(&child);
        assert!(seen == "parent" || seen == "child", "{seen}");
        assert_eq!(cause_text(&grandchild), seen);
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(node(&parent).child_count(), 0);
    });
}

/// `stop()` racing the cancel: `f` runs if and only if `stop` returned false.
#[test]
fn after_func_stop_racing_cancel() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let ran = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ran);
        let after = ctx.after_func(move || r.store(true, Ordering::SeqCst));
        let canceller = thread::spawn(move || cancel.cancel());
        let stopped = after.stop();
        canceller.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), !stopped);
        assert_eq!(node(&ctx).child_count(), 0);
    });
}

/// The deadline firing while the handle cancels: one of them wins, and err
/// and cause agree with the winner.
#[test]
fn deadline_firing_racing_manual_cancel() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let (child, _c) = ctx.with_cancel();
        let n = Arc::clone(node(&ctx));
        let timer = thread::spawn(move || n.expire());
        cancel.cancel();
        let timer_won = timer.join().unwrap();
        let expected = if timer_won {
            Error::DeadlineExceeded
        } else {
            Error::Canceled
        };
        assert_eq!(ctx.err(), Some(expected));
        assert_eq!(child.err(), Some(expected));
        assert_eq!(
            ctx.cause().unwrap().downcast_ref::<Error>(),
            Some(&expected)
        );
    });
}

/// A child's handle dropped while the parent is cancelled: no deadlock, the
/// child is cancelled, and the parent's list ends empty.
#[test]
fn handle_drop_racing_parent_cancel() {
    loom::model(|| {
        let (parent, cancel_parent) = Context::background().with_cancel();
        let (child, child_handle) = parent.with_cancel();
        let dropper = thread::spawn(move || drop(child_handle));
        cancel_parent.cancel();
        dropper.join().unwrap();
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(node(&parent).child_count(), 0);
    });
}

/// The race future of `#[cancellable]`: a pending await registered with the
/// context is woken by a cancel from another thread.
#[test]
fn race_is_woken_by_cancel() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let c = ctx.clone();
        let waiter = thread::spawn(move || block_on(c.run(std::future::pending::<()>())));
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), Err(Error::Canceled));
    });
}

/// A watched task whose waker changes between polls goes through the
/// lock-free slot; a cancel racing the swap still wakes the latest waker.
#[test]
fn race_with_a_changing_waker_is_woken_by_cancel() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let c = ctx.clone();
        let waiter = thread::spawn(move || {
            let mut watch = crate::done::Watch::new(&c);
            let mut pending = pin!(std::future::pending::<()>());
            // First poll with a throwaway waker: registered directly.
            let first = watch.poll_race(
                pending.as_mut(),
                &mut TaskContext::from_waker(&Waker::from(Arc::new(Ignore))),
            );
            if first.is_ready() {
                return first.map(|r| r.map(|_| ()));
            }
            // block_on's waker differs: the slot takes over.
            std::task::Poll::Ready(block_on(std::future::poll_fn(|cx| {
                watch.poll_race(pending.as_mut(), cx)
            })))
        });
        cancel.cancel();
        assert_eq!(
            waiter.join().unwrap(),
            std::task::Poll::Ready(Err(Error::Canceled))
        );
    });
}

/// Arming a deadline (queue it, then flag the node as queued) while the
/// timer thread wakes and expires what is queued: either the timer saw the
/// entry and expired the context, or the entry is queued and the context
/// live; dropping the handle then cancels and dequeues it. Never a timer
/// left queued for a done context, nor a deadline lost.
#[test]
fn deadline_arming_racing_the_timer_thread() {
    loom::model(|| {
        let far = crate::Instant::now() + std::time::Duration::from_secs(3600);
        let timer = thread::spawn(crate::deadline::fire_due);
        let (ctx, cancel) = Context::background().with_deadline(far);
        timer.join().unwrap();
        if ctx.is_done() {
            assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
            assert_eq!(crate::deadline::queued(), 0);
        } else {
            assert_eq!(crate::deadline::queued(), 1);
        }
        drop(cancel);
        assert!(ctx.is_done());
        assert_eq!(
            crate::deadline::queued(),
            0,
            "a done context's timer stays queued"
        );
    });
}

/// The handle's drop racing the timer thread's firing of the same deadline:
/// one of them decides the error, and the entry leaves the queue either way
/// (taken by the thread, or dequeued by the cancel), with the context still
/// alive.
#[test]
fn deadline_firing_racing_the_handle_leaves_nothing_queued() {
    loom::model(|| {
        let far = crate::Instant::now() + std::time::Duration::from_secs(3600);
        let (ctx, cancel) = Context::background().with_deadline(far);
        assert_eq!(crate::deadline::queued(), 1);
        let timer = thread::spawn(crate::deadline::fire_due);
        drop(cancel);
        timer.join().unwrap();
        assert!(matches!(
            ctx.err(),
            Some(Error::Canceled | Error::DeadlineExceeded)
        ));
        assert_eq!(
            crate::deadline::queued(),
            0,
            "a done context's entry stays queued"
        );
    });
}

/// An after_func registered while the context is cancelled runs exactly once:
/// fired by the cancel, or at once by the registration.
#[test]
fn after_func_registration_racing_cancel() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let ran = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let (c, r) = (ctx.clone(), Arc::clone(&ran));
        let registrar = thread::spawn(move || {
            c.after_func(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
        });
        cancel.cancel();
        let after = registrar.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(!after.stop(), "a started callback cannot be stopped");
        assert_eq!(node(&ctx).child_count(), 0);
    });
}

/// A grandchild made while the cancel of its grandparent propagates: born
/// cancelled or cancelled by the propagation, never live, never listed.
#[test]
fn grandchild_created_while_a_cancel_propagates() {
    loom::model(|| {
        let (root, cancel) = Context::background().with_cancel();
        let (child, _child_handle) = root.with_cancel();
        let c = child.clone();
        let maker = thread::spawn(move || c.with_cancel());
        cancel.cancel_with_cause("stop");
        let (grandchild, handle) = maker.join().unwrap();
        assert_eq!(grandchild.err(), Some(Error::Canceled));
        assert_eq!(cause_text(&grandchild), "stop");
        drop(handle);
        assert_eq!(node(&child).child_count(), 0);
        assert_eq!(node(&root).child_count(), 0);
    });
}

/// `Done` polled with one waker, then with another (a task moved between
/// executors), while the context is cancelled: the latest waker is woken or
/// the poll sees the state; the list ends empty.
#[test]
fn done_reregistering_a_changed_waker_during_a_cancel() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let c = ctx.clone();
        let waiter = thread::spawn(move || {
            let mut done = Box::pin(c.done());
            let first = done
                .as_mut()
                .poll(&mut TaskContext::from_waker(&Waker::from(Arc::new(Ignore))));
            match first {
                std::task::Poll::Ready(err) => err,
                std::task::Poll::Pending => block_on(done),
            }
        });
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), Error::Canceled);
        assert_eq!(node(&ctx).waiter_count(), 0);
    });
}

/// `wait_blocking` on one thread, the cancel on another: it returns true.
#[test]
fn wait_blocking_is_woken_by_cancel() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let c = ctx.clone();
        let waiter = thread::spawn(move || c.wait_blocking(None));
        cancel.cancel();
        assert!(waiter.join().unwrap());
        assert_eq!(node(&ctx).waiter_count(), 0);
    });
}

/// A waker that ignores wake-ups (not the no-op waker, which Done skips).
struct Ignore;

impl std::task::Wake for Ignore {
    fn wake(self: Arc<Self>) {}
}
