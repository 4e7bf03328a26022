//! [`Context::after_func`](crate::Context::after_func): run a callback once a
//! context is done, Go's `context.AfterFunc`.
//!
//! # State machine
//!
//! ```text
//!   PENDING ──context done (fire)──▶ STARTED   f is handed to a thread of its own
//!   PENDING ──AfterFunc::stop()────▶ STOPPED   f is dropped, never run
//! ```
//!
//! Both transitions are one compare-and-swap from `PENDING`, so exactly one of
//! them happens: `stop()` returns true iff it won, and then `f` never runs;
//! otherwise `f` runs exactly once, whatever the runtime is doing. An entry
//! sits in its node's entries (like a child context) until it fires or is
//! stopped, so stopped callbacks do not accumulate in a long-lived parent.

use std::fmt;
use std::sync::Arc;

use crate::slab::NIL;
use crate::sync::{AtomicU8, AtomicU32, Mutex, Ordering, lock, spawn_thread};
use crate::tree::{CancelNode, Entry};

const PENDING: u8 = 0;
const STARTED: u8 = 1;
const STOPPED: u8 = 2;

type Callback = Box<dyn FnOnce() + Send>;

pub(crate) struct AfterFuncEntry {
    state: AtomicU8,
    /// Index in the node's `entries`, guarded by the node's lock.
    slot: AtomicU32,
    f: Mutex<Option<Callback>>,
}

impl AfterFuncEntry {
    /// The context is done: start `f` unless `stop()` got there first.
    pub(crate) fn fire(&self) {
        let won = self
            .state
            .compare_exchange(PENDING, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if let Some(f) = won.then(|| lock(&self.f).take()).flatten() {
            run_detached(f);
        }
    }
}

/// Starts `f` on a thread of its own: the blocking pool of the current tokio
/// runtime if there is one, else a new thread. Never waits for it, so a slow
/// or panicking callback cannot stall or break `cancel()`.
///
/// A runtime that is shutting down drops what it is handed instead of running
/// it; `f` then runs on a thread of ours, from [`RunOnce`]'s `Drop`.
fn run_detached(f: Callback) {
    let job = RunOnce(Some(f));
    #[cfg(not(ctx_loom))]
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        drop(handle.spawn_blocking(move || job.run()));
        return;
    }
    job.run_on_a_thread();
}

/// A callback that runs exactly once: where it was sent, or, if it is
/// dropped unrun, on a thread of its own.
struct RunOnce(Option<Callback>);

impl RunOnce {
    #[cfg_attr(ctx_loom, allow(dead_code))]
    fn run(mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }

    fn run_on_a_thread(mut self) {
        let Some(f) = self.0.take() else { return };
        // If no thread can be started, run it here rather than lose it.
        let unstarted = Arc::new(Mutex::new(Some(f)));
        let ours = Arc::clone(&unstarted);
        let started = spawn_thread("ctx-after-func", move || {
            if let Some(f) = lock(&ours).take() {
                f();
            }
        });
        if !started && let Some(f) = lock(&unstarted).take() {
            f();
        }
    }
}

impl Drop for RunOnce {
    fn drop(&mut self) {
        if self.0.is_some() {
            RunOnce(self.0.take()).run_on_a_thread();
        }
    }
}

/// Registers `f` to run after `node` is done (`None`: a context that is never
/// done, so `f` never runs).
pub(crate) fn register(node: Option<&Arc<CancelNode>>, f: Callback) -> AfterFunc {
    let entry = Arc::new(AfterFuncEntry {
        state: AtomicU8::new(PENDING),
        slot: AtomicU32::new(NIL),
        f: Mutex::new(Some(f)),
    });
    if let Some(node) = node {
        match node.add_entry(Entry::AfterFunc(Arc::clone(&entry))) {
            Ok(index) => entry.slot.store(index, Ordering::Relaxed),
            Err(_done) => entry.fire(),
        }
    }
    AfterFunc {
        entry,
        node: node.cloned(),
    }
}

/// The handle returned by [`Context::after_func`](crate::Context::after_func);
/// Go's `stop` function.
///
/// Dropping it does *not* stop the callback (as in Go, where ignoring `stop`
/// is fine): call [`stop`](AfterFunc::stop) for that.
///
/// ```
/// use ctx_runtime::Context;
/// use std::sync::mpsc;
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let (tx, rx) = mpsc::channel();
/// let _after = ctx.after_func(move || tx.send("cleaned up").unwrap());
/// cancel.cancel();
/// assert_eq!(rx.recv().unwrap(), "cleaned up");
/// ```
pub struct AfterFunc {
    entry: Arc<AfterFuncEntry>,
    node: Option<Arc<CancelNode>>,
}

impl AfterFunc {
    /// Stops the callback from running.
    ///
    /// Returns true if this call stopped it. Returns false if the context was
    /// already done and the callback has been started, or if it was stopped
    /// before; exactly Go's semantics. `stop` does not wait for a started
    /// callback to finish.
    ///
    /// ```
    /// use ctx_runtime::Context;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let after = ctx.after_func(|| unreachable!("stopped before the cancel"));
    /// assert!(after.stop());
    /// assert!(!after.stop(), "a second stop reports it already was stopped");
    /// cancel.cancel();
    /// ```
    pub fn stop(&self) -> bool {
        let entry = &self.entry;
        if entry
            .state
            .compare_exchange(PENDING, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let f = lock(&entry.f).take();
        drop(f);
        if let Some(node) = &self.node {
            let index = entry.slot.load(Ordering::Relaxed);
            node.remove_entry(
                index,
                |e| matches!(e, Entry::AfterFunc(e) if Arc::ptr_eq(e, entry)),
            );
        }
        true
    }
}

impl fmt::Debug for AfterFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.entry.state.load(Ordering::Acquire) {
            PENDING => "pending",
            STARTED => "started",
            _ => "stopped",
        };
        f.debug_struct("AfterFunc").field("state", &state).finish()
    }
}
