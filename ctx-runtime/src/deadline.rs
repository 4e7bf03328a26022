//! Deadlines: the timers that cancel a context when its deadline passes.
//!
//! A deadline must fire whether or not anybody polls the context, so it cannot
//! live in a future that a user owns. Inside a tokio runtime it is a
//! [`tokio::time::Sleep`] registered on the runtime's timer wheel with the
//! node itself as the waker: when the wheel fires, it "wakes" the node, which
//! cancels it. That costs no task and obeys `tokio::time::pause()`, because it
//! is tokio's own clock. Outside a runtime (or in one built without
//! `enable_time`) the deadline goes to one process-wide timer thread instead.
//!
//! ```text
//!   arm ──▶ Tokio(Sleep) ──wheel fires──▶ fired() ──now ≥ deadline──▶ expire()
//!                                             └─early (runtime shutting down)──▶ Thread
//!   arm ──▶ Thread(entry) ──timer thread──▶ expire()
//!   cancel/drop of the node ──▶ timer dropped ──▶ deregistered from wheel/thread
//! ```
//!
//! The `Sleep` holds the node (as its waker), and the node holds the `Sleep`.
//! The cycle ends when either fires or the node is cancelled, which its
//! `CancelHandle` does when dropped.

use std::sync::Arc;

use crate::tree::CancelNode;

/// Deadlines are tokio's `Instant`, so that `tokio::time::pause()` and
/// `advance()` move them.
pub use tokio::time::Instant;

/// A deadline in 8 bytes instead of 16 (nodes stay under glibc's fast-bin
/// size): nanoseconds from a process-wide epoch, `i64::MIN` for none.
///
/// Exact within ±292 years of the epoch (the first deadline ever made);
/// farther ones saturate there, which is "never" for any program.
#[derive(Clone, Copy)]
pub(crate) struct PackedDeadline(i64);

impl PackedDeadline {
    pub(crate) const NONE: PackedDeadline = PackedDeadline(i64::MIN);

    fn epoch() -> Instant {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        Instant::from_std(*EPOCH.get_or_init(std::time::Instant::now))
    }

    pub(crate) fn new(deadline: Option<Instant>) -> Self {
        let Some(at) = deadline else {
            return Self::NONE;
        };
        let epoch = Self::epoch();
        let saturate = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        PackedDeadline(match at.checked_duration_since(epoch) {
            Some(after) => saturate(after),
            // Never i64::MIN (NONE): saturate stops at i64::MAX.
            None => -saturate(epoch - at),
        })
    }

    #[inline]
    pub(crate) fn get(self) -> Option<Instant> {
        if self.0 == Self::NONE.0 {
            return None;
        }
        let offset = std::time::Duration::from_nanos(self.0.unsigned_abs());
        let epoch = Self::epoch();
        if self.0 >= 0 {
            epoch.checked_add(offset)
        } else {
            epoch.checked_sub(offset)
        }
    }
}

/// An armed deadline; dropping it disarms it. One pointer, to keep nodes small.
pub(crate) type Timer = std::pin::Pin<Box<Armed>>;

#[cfg(not(ctx_loom))]
pin_project_lite::pin_project! {
    /// Where a deadline is armed.
    #[project = ArmedProj]
    pub(crate) enum Armed {
        /// On the current tokio runtime's timer wheel.
        Tokio { #[pin] sleep: tokio::time::Sleep },
        /// On the timer thread.
        Thread { entry: thread_timer::Entry },
    }
}

#[cfg(ctx_loom)]
pub(crate) enum Armed {}

/// Arms `node`'s own deadline, or expires it now if `when` has passed.
pub(crate) fn arm(node: &Arc<CancelNode>, when: Instant) {
    if when <= Instant::now() {
        node.expire();
    } else {
        #[cfg(not(ctx_loom))]
        match arm_tokio(node, when) {
            Arming::Armed(timer) => node.set_timer(timer),
            Arming::Fired => {
                node.expire();
            }
            Arming::NoRuntime => arm_thread(node, when),
        }
    }
}

/// The wheel woke `node`.
pub(crate) fn fired(node: &Arc<CancelNode>) {
    let Some(when) = node.deadline() else { return };
    if Instant::now() >= when {
        node.expire();
    } else {
        // tokio wakes every timer when its runtime shuts down; the deadline
        // has not passed, so hand it to the timer thread, not expire it early.
        #[cfg(not(ctx_loom))]
        arm_thread(node, when);
    }
}

/// Arms `node`'s deadline on the timer thread.
#[cfg(not(ctx_loom))]
fn arm_thread(node: &Arc<CancelNode>, when: Instant) {
    if let Some(entry) = thread_timer::insert(node, when) {
        node.set_timer(Box::pin(Armed::Thread { entry }));
    }
}

#[cfg(not(ctx_loom))]
enum Arming {
    Armed(Timer),
    Fired,
    NoRuntime,
}

#[cfg(not(ctx_loom))]
fn arm_tokio(node: &Arc<CancelNode>, when: Instant) -> Arming {
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::task::{Context, Poll, Waker};

    if tokio::runtime::Handle::try_current().is_err() {
        return Arming::NoRuntime;
    }
    // tokio has no fallible constructor: a runtime built without
    // `enable_time`, or one shutting down, panics here. Fall back to the
    // timer thread rather than pass the panic on to the caller.
    let armed = catch_unwind(AssertUnwindSafe(|| {
        let mut timer: Timer = Box::pin(Armed::Tokio {
            sleep: tokio::time::sleep_until(when),
        });
        let waker = Waker::from(Arc::clone(node));
        let ArmedProj::Tokio { sleep } = timer.as_mut().project() else {
            return Arming::NoRuntime;
        };
        match sleep.poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(()) => Arming::Fired,
            Poll::Pending => Arming::Armed(timer),
        }
    }));
    armed.unwrap_or(Arming::NoRuntime)
}

/// The process-wide timer thread, for deadlines made outside a tokio runtime.
#[cfg(not(ctx_loom))]
mod thread_timer {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
    use std::time::Instant;

    use crate::sync::lock;
    use crate::tree::CancelNode;

    type Key = (Instant, u64);

    struct Shared {
        queue: Mutex<BTreeMap<Key, Weak<CancelNode>>>,
        changed: Condvar,
        seq: AtomicU64,
    }

    /// A registration on the timer thread; dropping it removes it.
    pub(crate) struct Entry {
        key: Key,
    }

    impl Drop for Entry {
        fn drop(&mut self) {
            if let Some(shared) = shared() {
                let removed = lock(&shared.queue).remove(&self.key);
                drop(removed);
            }
        }
    }

    fn shared() -> Option<&'static Shared> {
        static SHARED: OnceLock<Option<&'static Shared>> = OnceLock::new();
        *SHARED.get_or_init(|| {
            let shared: &'static Shared = Box::leak(Box::new(Shared {
                queue: Mutex::new(BTreeMap::new()),
                changed: Condvar::new(),
                seq: AtomicU64::new(0),
            }));
            crate::sync::spawn_thread("ctx-deadlines", move || run(shared)).then_some(shared)
        })
    }

    /// Queues `node` to expire at `when`. `None` only if no thread could be
    /// started, in which case the deadline is reported by `deadline()` but
    /// never fires.
    pub(crate) fn insert(node: &Arc<CancelNode>, when: super::Instant) -> Option<Entry> {
        let shared = shared()?;
        let key = (when.into_std(), shared.seq.fetch_add(1, Ordering::Relaxed));
        let mut queue = lock(&shared.queue);
        queue.insert(key, Arc::downgrade(node));
        let first = queue.first_key_value().is_some_and(|(k, _)| *k == key);
        drop(queue);
        if first {
            shared.changed.notify_one();
        }
        Some(Entry { key })
    }

    fn run(shared: &'static Shared) {
        let mut queue = lock(&shared.queue);
        loop {
            let now = Instant::now();
            let Some((&(when, _), _)) = queue.first_key_value() else {
                queue = shared
                    .changed
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            };
            if when > now {
                queue = shared
                    .changed
                    .wait_timeout(queue, when - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
                continue;
            }
            let due: Vec<_> = std::iter::from_fn(|| {
                let entry = queue.first_entry()?;
                (entry.key().0 <= now).then(|| entry.remove())
            })
            .collect();
            drop(queue);
            // Expiring drops the node's `Entry`, which takes the lock: fire unlocked.
            for node in due.iter().filter_map(Weak::upgrade) {
                node.expire();
            }
            queue = lock(&shared.queue);
        }
    }
}
