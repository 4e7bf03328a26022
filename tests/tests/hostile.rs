//! User code that panics or re-enters, run at every point where the runtime
//! calls it: a waker's `wake`, `clone` and `drop`, an after_func, a value's or
//! a cause's `Drop`. Issue 10: the machinery of a context never fails because
//! of what user code does.
//!
//! Every scenario runs on a thread of its own with a deadline on its
//! completion, so that a deadlock fails the test instead of hanging it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context as TaskContext, Poll, RawWaker, RawWakerVTable, Wake, Waker};
use std::time::Duration;

use ctx_runtime::{CancelHandle, Cause, Context, Error, Instant};

/// Runs `f` on a thread of its own and fails if it does not finish in time
/// (a deadlock), or panics.
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let out = catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(out);
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(out)) => out,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: deadlocked (no answer in 20 s)"),
    }
}

fn poll_once<F: Future>(fut: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut TaskContext::from_waker(waker))
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<Counter>, Waker) {
    let counter = Arc::new(Counter::default());
    (Arc::clone(&counter), Waker::from(counter))
}

struct PanicOnWake;

impl Wake for PanicOnWake {
    fn wake(self: Arc<Self>) {
        panic!("hostile waker: wake");
    }
}

fn panicking_waker() -> Waker {
    Waker::from(Arc::new(PanicOnWake))
}

/// Where the runtime calls the user's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    Wake,
    Clone,
    Drop,
}

/// The worst things user code can do there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    CancelItsContext,
    CancelTheParent,
    CreateChildren,
    DropTheLastHandle,
    Panic,
}

const ACTIONS: [Action; 5] = [
    Action::CancelItsContext,
    Action::CancelTheParent,
    Action::CreateChildren,
    Action::DropTheLastHandle,
    Action::Panic,
];

/// User code with a context and its handles, doing `action` at `point`.
struct Hostile {
    point: Point,
    action: Action,
    ctx: Context,
    handle: Mutex<Option<CancelHandle>>,
    parent: Mutex<Option<CancelHandle>>,
    children: Mutex<Vec<(Context, CancelHandle)>>,
    /// Off while the test handles its own copies of the waker.
    armed: std::sync::atomic::AtomicBool,
    acted: AtomicUsize,
}

impl Hostile {
    fn act(&self, at: Point) {
        if at != self.point || !self.armed.load(Ordering::SeqCst) {
            return;
        }
        self.acted.fetch_add(1, Ordering::SeqCst);
        match self.action {
            Action::CancelItsContext => {
                if let Some(handle) = &*self.handle.lock().unwrap() {
                    handle.cancel_with_cause("hostile");
                }
            }
            Action::CancelTheParent => {
                if let Some(handle) = &*self.parent.lock().unwrap() {
                    handle.cancel();
                }
            }
            Action::CreateChildren => {
                let made: Vec<_> = (0..3).map(|_| self.ctx.with_cancel()).collect();
                self.children.lock().unwrap().extend(made);
            }
            Action::DropTheLastHandle => drop(self.handle.lock().unwrap().take()),
            Action::Panic => panic!("hostile user code at {at:?}"),
        }
    }
}

/// A waker whose `clone`, `wake` and `drop` run `Hostile::act`.
fn hostile_waker(hostile: &Arc<Hostile>) -> Waker {
    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` came from `Arc::into_raw` of an `Arc<Hostile>` that
        // this waker owns one count of.
        let hostile = unsafe { Arc::from_raw(data.cast::<Hostile>()) };
        let copy = Arc::clone(&hostile);
        let _ = Arc::into_raw(hostile);
        copy.act(Point::Clone);
        RawWaker::new(Arc::into_raw(copy).cast(), &VTABLE)
    }
    unsafe fn wake(data: *const ()) {
        // SAFETY: as in `clone`; `wake` consumes this waker's count.
        let hostile = unsafe { Arc::from_raw(data.cast::<Hostile>()) };
        hostile.act(Point::Wake);
    }
    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: as in `clone`; the count stays with the waker.
        let hostile = unsafe { &*data.cast::<Hostile>() };
        hostile.act(Point::Wake);
    }
    unsafe fn drop(data: *const ()) {
        // SAFETY: as in `clone`; `drop` consumes this waker's count.
        let hostile = unsafe { Arc::from_raw(data.cast::<Hostile>()) };
        hostile.act(Point::Drop);
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);
    let data = Arc::into_raw(Arc::clone(hostile)).cast();
    // SAFETY: the vtable's functions keep the `Arc` count balanced.
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

/// The tree a hostile scenario runs in: root > parent > ctx, with the user's
/// code acting on `ctx`.
fn hostile_tree(point: Point, action: Action) -> (Context, Context, Arc<Hostile>) {
    let (parent, parent_handle) = Context::background().with_cancel();
    let (ctx, handle) = parent.with_cancel();
    let hostile = Arc::new(Hostile {
        point,
        action,
        ctx: ctx.clone(),
        handle: Mutex::new(Some(handle)),
        parent: Mutex::new(Some(parent_handle)),
        children: Mutex::new(Vec::new()),
        armed: std::sync::atomic::AtomicBool::new(true),
        acted: AtomicUsize::new(0),
    });
    (parent, ctx, hostile)
}

/// Whatever user code did, the tree is consistent: a done context has only
/// done descendants, and one made now is born done.
fn assert_consistent(parent: &Context, ctx: &Context, hostile: &Hostile, label: &str) {
    if parent.is_done() {
        assert!(ctx.is_done(), "{label}: parent done, ctx live");
    }
    for (child, _) in hostile.children.lock().unwrap().iter() {
        if ctx.is_done() {
            assert!(child.is_done(), "{label}: ctx done, a child it made live");
        }
    }
    if ctx.is_done() {
        let (late, _c) = ctx.with_cancel();
        assert!(
            late.is_done(),
            "{label}: a child made after the cancel is live"
        );
        assert!(ctx.cause().is_some(), "{label}: done without a cause");
    }
}

/// Wake: the user's waker is woken by a cancel, between two ordinary waiters
/// and before a child, and does its worst. The cancel completes: every
/// waiter is woken, the child is done; a panic reaches the caller of
/// `cancel()` only after that.
#[test]
fn user_code_in_a_wake_cannot_break_a_cancel() {
    for action in ACTIONS {
        finishes(&format!("wake, {action:?}"), move || {
            let (parent, ctx, hostile) = hostile_tree(Point::Wake, action);
            let (before, before_waker) = counter();
            let (after, after_waker) = counter();
            let mut first = Box::pin(ctx.done());
            let mut evil = Box::pin(ctx.done());
            let mut last = Box::pin(ctx.done());
            assert!(poll_once(first.as_mut(), &before_waker).is_pending());
            assert!(poll_once(evil.as_mut(), &hostile_waker(&hostile)).is_pending());
            let (child, _child_handle) = ctx.with_cancel();
            assert!(poll_once(last.as_mut(), &after_waker).is_pending());
            let parent_handle = hostile.parent.lock().unwrap().take().unwrap();
            let cancelled = catch_unwind(AssertUnwindSafe(|| parent_handle.cancel()));
            assert_eq!(cancelled.is_err(), action == Action::Panic, "{action:?}");
            assert_eq!(hostile.acted.load(Ordering::SeqCst), 1, "{action:?}");
            assert!(ctx.is_done() && child.is_done(), "{action:?}");
            assert_eq!(before.0.load(Ordering::SeqCst), 1, "{action:?}");
            assert_eq!(
                after.0.load(Ordering::SeqCst),
                1,
                "{action:?}: later waiter"
            );
            assert_consistent(&parent, &ctx, &hostile, &format!("wake, {action:?}"));
            drop(parent_handle); // dropping a handle after a panic is harmless
        });
    }
}

/// Clone: registering the user's waker clones it; whatever the clone does,
/// registration neither deadlocks nor leaves a waiter that a cancel misses.
#[test]
fn user_code_in_a_waker_clone_cannot_break_registration() {
    for action in ACTIONS {
        finishes(&format!("clone, {action:?}"), move || {
            let (parent, ctx, hostile) = hostile_tree(Point::Clone, action);
            let waker = hostile_waker(&hostile);
            let mut done = Box::pin(ctx.done());
            let polled = catch_unwind(AssertUnwindSafe(|| poll_once(done.as_mut(), &waker)));
            assert_eq!(polled.is_err(), action == Action::Panic, "{action:?}");
            // The user's code may have cancelled: then `done` is ready now.
            let (counted, counting) = counter();
            let ready = poll_once(done.as_mut(), &counting).is_ready();
            assert_eq!(ready, ctx.is_done(), "{action:?}");
            if !ready {
                drop(hostile.parent.lock().unwrap().take());
                assert!(ctx.is_done(), "{action:?}");
                assert_eq!(counted.0.load(Ordering::SeqCst), 1, "{action:?}: not woken");
            }
            assert_consistent(&parent, &ctx, &hostile, &format!("clone, {action:?}"));
        });
    }
}

/// Drop: the user's waker, listed by a first poll, is replaced by a second
/// poll with another waker (so it is dropped there), or dropped when the
/// `Done` future is. (A cancel consumes it by waking it: see the wake test.)
#[test]
fn user_code_in_a_waker_drop_cannot_break_anything() {
    for action in ACTIONS {
        for how in ["repoll", "drop the future"] {
            finishes(&format!("drop by {how}, {action:?}"), move || {
                let (parent, ctx, hostile) = hostile_tree(Point::Drop, action);
                let mut done = Box::pin(ctx.done());
                hostile.armed.store(false, Ordering::SeqCst);
                let waker = hostile_waker(&hostile);
                assert!(poll_once(done.as_mut(), &waker).is_pending());
                drop(waker); // our copy: the listed clone is now the last
                hostile.armed.store(true, Ordering::SeqCst);
                let (counted, counting) = counter();
                let mut done = Some(done);
                let outcome = catch_unwind(AssertUnwindSafe(|| match (how, &mut done) {
                    ("repoll", Some(done)) => poll_once(done.as_mut(), &counting).is_ready(),
                    _ => {
                        drop(done.take());
                        true
                    }
                }));
                assert_eq!(
                    outcome.is_err(),
                    action == Action::Panic,
                    "{how}, {action:?}"
                );
                assert_eq!(hostile.acted.load(Ordering::SeqCst), 1, "{how}, {action:?}");
                if how == "repoll" && !ctx.is_done() {
                    // The second waker is listed: a cancel wakes it.
                    drop(hostile.parent.lock().unwrap().take());
                    assert_eq!(counted.0.load(Ordering::SeqCst), 1, "{action:?}");
                }
                assert_consistent(
                    &parent,
                    &ctx,
                    &hostile,
                    &format!("drop by {how}, {action:?}"),
                );
            });
        }
    }
}

/// A value or a cause whose `Drop` re-enters: the cause that a deadline was
/// given is replaced, and so dropped, by a manual cancel; a value is dropped
/// with the last reference to its context, here inside a cancellation.
#[test]
fn a_cause_or_value_whose_drop_reenters_cannot_break_a_cancel() {
    #[derive(Debug)]
    struct Reenter(Arc<Mutex<Option<CancelHandle>>>);
    impl std::fmt::Display for Reenter {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reenter")
        }
    }
    impl std::error::Error for Reenter {}
    impl Drop for Reenter {
        fn drop(&mut self) {
            // Cancels a child of the context being cancelled: that child's
            // cancel takes its parent's lock.
            drop(self.0.lock().unwrap().take());
        }
    }
    finishes("cause drop", || {
        let slot = Arc::new(Mutex::new(None));
        let far = Instant::now() + Duration::from_secs(3600);
        let (ctx, cancel) =
            Context::background().with_deadline_cause(far, Cause::new(Reenter(Arc::clone(&slot))));
        let (child, child_handle) = ctx.with_cancel();
        *slot.lock().unwrap() = Some(child_handle);
        cancel.cancel();
        assert!(ctx.is_done() && child.is_done());
        assert_eq!(
            ctx.cause().unwrap().downcast_ref::<Error>(),
            Some(&Error::Canceled)
        );
    });
    /// A value that, when dropped, reads and extends the tree it was in.
    struct Value {
        root: Context,
        handle: Mutex<Option<CancelHandle>>,
        made: Arc<Mutex<Vec<(Context, CancelHandle)>>>,
    }
    impl Drop for Value {
        fn drop(&mut self) {
            let _ = self.root.cause();
            self.made.lock().unwrap().push(self.root.with_cancel());
            drop(self.handle.lock().unwrap().take());
        }
    }
    /// A waker holding the only reference to a context: waking it drops it.
    struct Owns(Mutex<Option<Context>>);
    impl Wake for Owns {
        fn wake(self: Arc<Self>) {
            drop(self.0.lock().unwrap().take());
        }
    }
    finishes("value drop", || {
        let (root, cancel) = Context::background().with_cancel();
        let (other, other_handle) = root.with_cancel();
        let made = Arc::new(Mutex::new(Vec::new()));
        let valued = root.with_value(Value {
            root: root.clone(),
            handle: Mutex::new(Some(other_handle)),
            made: Arc::clone(&made),
        });
        let mut done = Box::pin(root.done());
        let owner = Waker::from(Arc::new(Owns(Mutex::new(Some(valued)))));
        assert!(poll_once(done.as_mut(), &owner).is_pending());
        drop(owner);
        cancel.cancel(); // wakes `owner`, which drops the value
        assert!(other.is_done());
        let made = made.lock().unwrap();
        assert_eq!(made.len(), 1);
        assert!(
            made[0].0.is_done(),
            "a child made while the root is cancelled is live"
        );
    });
}

/// A `CancelHandle` dropped while its thread unwinds from a user's panic,
/// cancelling a context whose waker panics too, must not abort the process
/// (a second panic during unwinding does). Run in a child process, whose
/// exit status tells.
#[test]
fn a_handle_dropped_while_unwinding_does_not_abort() {
    const VAR: &str = "CTX_HOSTILE_UNWINDING_CHILD";
    if std::env::var_os(VAR).is_some() {
        let unwound = catch_unwind(|| {
            let (ctx, cancel) = Context::background().with_cancel();
            let mut done = Box::pin(ctx.done_owned());
            assert!(poll_once(done.as_mut(), &panicking_waker()).is_pending());
            let _cancel = cancel; // dropped first, while unwinding
            panic!("the user's own panic");
        });
        assert!(unwound.is_err());
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_handle_dropped_while_unwinding_does_not_abort",
            "--nocapture",
        ])
        .env(VAR, "1")
        .status()
        .unwrap();
    assert!(status.success(), "the child process died: {status}");
}

/// A waker that panics on the deadline thread leaves that thread running:
/// deadlines made later outside a runtime still fire.
#[test]
fn a_panicking_waker_does_not_stop_the_deadline_thread() {
    finishes("deadline thread", || {
        let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(20));
        let mut done = Box::pin(ctx.done());
        assert!(poll_once(done.as_mut(), &panicking_waker()).is_pending());
        assert!(ctx.wait_blocking(Some(Duration::from_secs(10))));
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        let (later, _c) = Context::background().with_timeout(Duration::from_millis(20));
        assert!(
            later.wait_blocking(Some(Duration::from_secs(10))),
            "a deadline made after the panic never fired"
        );
    });
}

/// The same on tokio's timer wheel (a paused clock): the time driver survives.
#[test]
fn a_panicking_waker_does_not_take_down_the_time_driver() {
    finishes("time driver", || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(10));
            let mut done = Box::pin(ctx.done());
            assert!(poll_once(done.as_mut(), &panicking_waker()).is_pending());
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
            tokio::time::sleep(Duration::from_millis(10)).await;
            let (later, _c) = Context::background().with_timeout(Duration::from_millis(10));
            assert_eq!(later.done().await, Error::DeadlineExceeded);
        });
    });
}

/// Code that runs because of a cancel (a woken task, an after_func) sees the
/// whole subtree done, even when it was registered before the subtree.
#[test]
fn code_run_by_a_cancel_sees_the_whole_subtree_done() {
    struct Check {
        child: Mutex<Option<Context>>,
        saw_live: AtomicUsize,
        ran: AtomicUsize,
    }
    impl Wake for Check {
        fn wake(self: Arc<Self>) {
            self.ran.fetch_add(1, Ordering::SeqCst);
            if let Some(child) = &*self.child.lock().unwrap()
                && !child.is_done()
            {
                self.saw_live.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let (parent, cancel) = Context::background().with_cancel();
    let check = Arc::new(Check {
        child: Mutex::new(None),
        saw_live: AtomicUsize::new(0),
        ran: AtomicUsize::new(0),
    });
    let (tx, rx) = mpsc::channel();
    for _ in 0..100 {
        let check = Arc::clone(&check);
        let tx = tx.clone();
        let _ = parent.after_func(move || {
            let live = check
                .child
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|c| !c.is_done());
            tx.send(live).unwrap();
        });
    }
    let mut done = Box::pin(parent.done());
    assert!(poll_once(done.as_mut(), &Waker::from(Arc::clone(&check))).is_pending());
    let (child, _c) = parent.with_cancel();
    let (grandchild, _g) = child.with_cancel();
    *check.child.lock().unwrap() = Some(grandchild);
    cancel.cancel();
    assert_eq!(check.ran.load(Ordering::SeqCst), 1);
    assert_eq!(
        check.saw_live.load(Ordering::SeqCst),
        0,
        "a woken task saw a live grandchild"
    );
    for _ in 0..100 {
        let live = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(!live, "an after_func saw a live grandchild");
    }
    assert!(child.is_done());
}

/// after_func callbacks registered in tasks whose runtime is dropped: the
/// cancel happens while the runtime shuts down, and every callback still runs
/// exactly once (none is stopped, so none may be lost).
#[test]
fn after_funcs_run_when_the_cancel_comes_from_a_runtime_shutting_down() {
    let (ran, ran_rx) = mpsc::channel::<()>();
    const RUNTIMES: usize = 20;
    const TASKS: usize = 50;
    for _ in 0..RUNTIMES {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (ready, ready_rx) = mpsc::channel::<()>();
        for _ in 0..TASKS {
            let ran = ran.clone();
            let ready = ready.clone();
            rt.spawn(async move {
                let (ctx, _cancel) = Context::background().with_cancel();
                let _after = ctx.after_func(move || ran.send(()).unwrap());
                ready.send(()).unwrap();
                std::future::pending::<()>().await; // until the runtime drops us
            });
        }
        for _ in 0..TASKS {
            ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        drop(rt);
    }
    drop(ran);
    let mut count = 0;
    while ran_rx.recv_timeout(Duration::from_secs(10)).is_ok() {
        count += 1;
    }
    assert_eq!(count, RUNTIMES * TASKS, "callbacks lost");
}

/// `let (ctx, _) = parent.with_cancel()` cancels `ctx` at once; its `Debug`
/// says why.
#[test]
fn debug_names_a_context_cancelled_by_dropping_its_handle() {
    let (ctx, _) = Context::background().with_cancel();
    assert!(ctx.is_done());
    let shown = format!("{ctx:?}");
    assert!(shown.contains("CancelHandle was dropped"), "{shown}");
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    drop(cancel);
    assert_eq!(
        format!("{ctx:?}"),
        "Context::background().with_cancel() [context canceled]"
    );
}

/// A deadline too far to represent is reported as asked or as none, never
/// as a third value.
#[test]
fn a_far_deadline_is_reported_as_asked_or_as_none() {
    let years = |n: u64| Duration::from_secs(n * 365 * 24 * 3600);
    for far in [
        years(100),
        years(291),
        years(293),
        years(300),
        years(10_000),
    ] {
        let Some(at) = Instant::now().checked_add(far) else {
            continue;
        };
        let (ctx, _c) = Context::background().with_deadline(at);
        let got = ctx.deadline();
        assert!(
            got == Some(at) || got.is_none(),
            "{far:?}: asked {at:?}, got {got:?}"
        );
        assert!(!ctx.is_done());
        let (child, _c) = ctx.with_timeout(years(1));
        assert!(child.deadline().is_some_and(|d| got.is_none_or(|g| d <= g)));
    }
}
