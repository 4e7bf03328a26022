//! Deadlines: the timers that cancel a context when its deadline passes.
//!
//! A deadline must fire whether or not anybody polls the context, so it cannot
//! live in a future that a user owns. Two homes:
//!
//! * **tokio's timer wheel, when tokio's clock is paused** (`start_paused`,
//!   `tokio::time::pause()`): a [`tokio::time::Sleep`] registered with the
//!   node itself as its waker, so that virtual time moves deadlines exactly as
//!   it moves `sleep`s. A paused clock proves the runtime has timers enabled.
//! * **one process-wide timer thread** otherwise, inside a runtime or not.
//!   tokio has no way to ask whether a runtime was built with timers
//!   (`enable_time`), and creating a `Sleep` in one without them panics; so
//!   the wheel is used only where it is known to exist, and nothing here ever
//!   catches a panic (a `panic = "abort"` program would die of it).
//!
//! ```text
//!   arm ──paused──▶ Tokio(Sleep) ──wheel fires──▶ fired() ──now ≥ deadline──▶ expire()
//!                                                     └─early (runtime shutting down)──▶ queue
//!   arm ──else────▶ queue (thread) ──timer thread──▶ expire()
//!   Tokio: cancel/drop of the node ──▶ Sleep dropped ──▶ deregistered from the wheel
//!   queue: the node's own cancel (handle, deadline), a linked node's
//!          cancel by an ancestor, or the node's drop ──▶ [`disarm`] ──▶ dequeued
//! ```
//!
//! The `Sleep` holds the node (as its waker), and the node holds the `Sleep`
//! (as a listed timer, so the node's cancel takes it). The cycle ends when
//! either fires or the node is cancelled, which its `CancelHandle` does when
//! dropped.
//!
//! The timer thread's queue holds nodes weakly, keyed by their deadline and
//! address, which the node can compute again: the node keeps no handle to
//! its entry, only the shard that has it, in a byte that was padding
//! ([`CancelNode::timer_shard`]). So a deadline on the timer thread neither
//! lists anything in the node nor links it to its parent: `with_timeout` and
//! the handle's drop take no node lock (the queue's shard lock only), as
//! `with_cancel` does not. An unlinked node cancelled through an ancestor is
//! not visited by that cancel; its entry leaves the queue when the node is
//! dropped or its deadline passes (firing then changes nothing: it is done
//! already).
//!
//! A timer expires its node with [`CancelNode::expire`], which completes the
//! cancellation and drops any panic of user code met on the way: a user's
//! panicking waker cannot take down the timer thread or tokio's time driver.

use std::sync::Arc;

use crate::tree::CancelNode;

/// Deadlines are tokio's `Instant`, so that `tokio::time::pause()` and
/// `advance()` move them.
pub use tokio::time::Instant;

/// A deadline in 8 bytes instead of 16 (nodes stay under glibc's fast-bin
/// size): nanoseconds from a process-wide epoch, `i64::MIN` for none.
///
/// Exact within ±292 years of the epoch (the first deadline ever made).
/// [`try_new`](Self::try_new) refuses farther ones, which then count as no
/// deadline: never a third value.
#[derive(Clone, Copy)]
pub(crate) struct PackedDeadline(i64);

impl PackedDeadline {
    pub(crate) const NONE: PackedDeadline = PackedDeadline(i64::MIN);

    fn epoch() -> Instant {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        Instant::from_std(*EPOCH.get_or_init(std::time::Instant::now))
    }

    /// `at`, or `None` if it is too far from the epoch to represent.
    pub(crate) fn try_new(at: Instant) -> Option<Self> {
        let epoch = Self::epoch();
        let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).ok();
        let packed = match at.checked_duration_since(epoch) {
            Some(after) => nanos(after)?,
            // Never i64::MIN (NONE): `-nanos` of an i64 is at least -i64::MAX.
            None => -nanos(epoch - at)?,
        };
        Some(PackedDeadline(packed))
    }

    /// Nanoseconds from the epoch (`i64::MIN` for none): the timer
    /// thread's sort key.
    #[inline]
    pub(crate) fn nanos(self) -> i64 {
        self.0
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
    /// A deadline on the current tokio runtime's timer wheel. (One on the
    /// timer thread is not held by the node: see the module docs.)
    pub(crate) struct Armed {
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

/// Under loom only the timer thread exists (a shim of it: see
/// `thread_timer`), so that the models can race arming against firing.
#[cfg(ctx_loom)]
pub(crate) enum Armed {}

#[cfg(all(ctx_loom, test))]
pub(crate) use thread_timer::{fire_due, queued};
#[cfg(all(not(ctx_loom), test))]
pub(crate) use thread_timer::{is_queued, queue_key};

/// Arms `node`'s own deadline (its effective one), or expires it now if it
/// has passed. `read_at`: the instant `when` was computed from (`now +
/// timeout`), if any: a clock that has moved since cannot be paused, which
/// spares the full check. Called once, by the node's maker.
pub(crate) fn arm(node: &Arc<CancelNode>, when: Instant, read_at: Option<Instant>) {
    let now = Instant::now();
    if when <= now {
        node.expire();
        return;
    }
    #[cfg(not(ctx_loom))]
    if read_at.is_none_or(|read_at| read_at == now) && tokio_clock_paused(now) {
        // A listed timer: the node must be linked first (tree's invariant 2).
        if node.join() {
            match arm_tokio(node, when) {
                Some(timer) => node.set_timer(timer),
                None => {
                    node.expire();
                }
            }
        }
        return;
    }
    #[cfg(ctx_loom)]
    let _ = read_at;
    arm_thread(node);
}

/// The wheel woke `node`.
pub(crate) fn fired(node: &Arc<CancelNode>) {
    let Some(when) = node.deadline() else { return };
    if Instant::now() >= when {
        node.expire();
    } else {
        // tokio wakes every timer when its runtime shuts down; the deadline
        // has not passed, so hand it to the timer thread, not expire it early.
        arm_thread(node);
    }
}

/// Queues `node`'s deadline on the timer thread. From the node's maker, no
/// one else can cancel it yet. From [`fired`] (a runtime shutting down), a
/// cancel racing this may miss the entry: then it leaves the queue when the
/// node is dropped or the deadline passes, as an unlinked node's does.
fn arm_thread(node: &Arc<CancelNode>) {
    if let Some(shard) = thread_timer::insert(node) {
        node.timer_shard
            .store(shard, crate::sync::Ordering::Release);
    }
}

/// Takes `node`'s deadline off the timer thread's queue, if it is there.
/// Called when the node's own cancel turns it done, when an ancestor's
/// cancel marks it done (linked), and when it is dropped; one load for a
/// node that was never queued.
#[inline]
pub(crate) fn disarm(node: &CancelNode) {
    use crate::sync::Ordering;
    if node.timer_shard.load(Ordering::Acquire) != 0 {
        match node.timer_shard.swap(0, Ordering::AcqRel) {
            0 => {}
            shard => thread_timer::remove(node, shard),
        }
    }
}

/// True if the current thread is in a tokio runtime whose clock is paused.
///
/// A paused clock reads the same instant until the runtime advances it; a
/// running one moves with std's clock. Two reads of tokio's clock that agree
/// while std's clock moved between them can only be a paused clock. (Outside
/// a runtime, tokio's clock is std's.)
#[cfg(not(ctx_loom))]
fn tokio_clock_paused(before: Instant) -> bool {
    let std_before = std::time::Instant::now();
    if Instant::now() != before {
        return false;
    }
    // Equal: paused, or a clock too coarse to tell two reads apart. Wait
    // (briefly) for std's clock to tick, then look again.
    for _ in 0..10_000 {
        if std::time::Instant::now() > std_before {
            return Instant::now() == before;
        }
        std::hint::spin_loop();
    }
    false
}

/// Registers `when` on the current runtime's wheel, with `node` as the
/// waker. `None` if it is already due. Only called with tokio's clock paused,
/// which a runtime without timers cannot be in any way that reaches here.
#[cfg(not(ctx_loom))]
fn arm_tokio(node: &Arc<CancelNode>, when: Instant) -> Option<Timer> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    let mut timer: Timer = Box::pin(Armed {
        sleep: tokio::time::sleep_until(when),
    });
    let waker = Waker::from(Arc::clone(node));
    match timer
        .as_mut()
        .project()
        .sleep
        .poll(&mut Context::from_waker(&waker))
    {
        Poll::Ready(()) => None,
        Poll::Pending => Some(timer),
    }
}

/// The process-wide timer thread, for deadlines made outside a paused tokio
/// runtime: queues ordered by deadline, and a thread that sleeps until the
/// first one and expires what is due.
///
/// An entry is keyed by its node's deadline and address, both fixed while
/// the entry exists (the queue's `Weak` keeps the allocation, so the address
/// is not reused before the entry is gone): the node finds its entry again
/// from the shard number it keeps. The queues are sharded by the thread that
/// arms a deadline, so that threads creating and dropping timeouts at once
/// do not meet on a lock or pass its cache lines back and forth (sharding by
/// address did: WithTimeout/concurrency=40 took twice as long). The thread
/// is woken only when a new deadline comes before the time it already means
/// to wake at (`planned`): arming and dropping a timeout that does not fire
/// (the common request timeout) costs no system call.
///
/// Under loom there is no thread: there is one queue per model execution, and
/// a model calls [`thread_timer::fire_due`] where the thread would wake.
mod thread_timer {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Weak};

    use crate::sync::{Mutex, lock};
    use crate::tree::CancelNode;

    /// The deadline (`PackedDeadline::nanos`), then the node's address.
    type Key = (i64, usize);

    type Queue = BTreeMap<Key, Weak<CancelNode>>;

    struct Shared {
        shards: Box<[Mutex<Queue>]>,
        /// When the thread will next look at the queues on its own, as a
        /// packed deadline; `i64::MAX`: not until it is woken. Lowered by
        /// whoever queues an earlier deadline, who then wakes it.
        #[cfg(not(ctx_loom))]
        planned: std::sync::atomic::AtomicI64,
        #[cfg(not(ctx_loom))]
        thread: std::sync::OnceLock<std::thread::Thread>,
    }

    #[cfg(not(ctx_loom))]
    fn shared() -> Option<&'static Shared> {
        static SHARED: std::sync::OnceLock<Option<&'static Shared>> = std::sync::OnceLock::new();
        *SHARED.get_or_init(|| {
            let shards = std::thread::available_parallelism()
                .map_or(1, |n| n.get() * 2)
                .min(64);
            let shared: &'static Shared = Box::leak(Box::new(Shared {
                shards: (0..shards).map(|_| Mutex::new(Queue::new())).collect(),
                planned: std::sync::atomic::AtomicI64::new(i64::MAX),
                thread: std::sync::OnceLock::new(),
            }));
            crate::sync::spawn_thread("ctx-deadlines", move || run(shared)).then_some(shared)
        })
    }

    #[cfg(ctx_loom)]
    fn shared() -> Option<&'static Shared> {
        loom::lazy_static! {
            static ref SHARED: Shared = Shared { shards: Box::new([Mutex::new(Queue::new())]) };
        }
        Some(&SHARED)
    }

    /// `node`'s key in its shard's queue.
    fn key(node: &CancelNode) -> Key {
        (
            node.packed_deadline().nanos(),
            std::ptr::from_ref(node) as usize,
        )
    }

    /// The shard of the calling thread: threads take turns, once each.
    fn my_shard(shards: usize) -> usize {
        #[cfg(not(ctx_loom))]
        {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            thread_local!(static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed));
            MINE.try_with(|mine| mine % shards).unwrap_or(0)
        }
        #[cfg(ctx_loom)]
        {
            let _ = shards;
            0
        }
    }

    /// Queues `node` to expire at its deadline; returns 1 + its shard (at
    /// most 64). `None` only if no thread could be started, in which case
    /// the deadline is reported by `deadline()` but never fires.
    pub(crate) fn insert(node: &Arc<CancelNode>) -> Option<u8> {
        let shared = shared()?;
        let shard = my_shard(shared.shards.len());
        let key = key(node);
        let replaced = lock(&shared.shards[shard]).insert(key, Arc::downgrade(node));
        drop(replaced);
        #[cfg(not(ctx_loom))]
        {
            use std::sync::atomic::Ordering;
            if key.0 < shared.planned.load(Ordering::Acquire) {
                shared.planned.fetch_min(key.0, Ordering::AcqRel);
                if let Some(thread) = shared.thread.get() {
                    thread.unpark();
                }
            }
        }
        u8::try_from(shard + 1).ok()
    }

    /// Dequeues `node` from `shard` (as `insert` returned it), if its entry
    /// is still there (the thread takes the entries it fires). The `Weak` is
    /// dropped unlocked.
    pub(crate) fn remove(node: &CancelNode, shard: u8) {
        let queue = shared().and_then(|shared| shared.shards.get(usize::from(shard) - 1));
        if let Some(queue) = queue {
            let removed = lock(queue).remove(&key(node));
            drop(removed);
        }
    }

    /// Takes the entries due at `now` out of the queue; returns the first
    /// deadline left.
    #[cfg(not(ctx_loom))]
    fn take_due(queue: &mut Queue, now: i64, due: &mut Vec<Weak<CancelNode>>) -> Option<i64> {
        while let Some(entry) = queue.first_entry() {
            if entry.key().0 > now {
                return Some(entry.key().0);
            }
            due.push(entry.remove());
        }
        None
    }

    /// Expires `due`, unlocked: expiring dequeues each node, which takes the
    /// queue's lock.
    #[cfg(any(not(ctx_loom), test))]
    fn expire(due: impl IntoIterator<Item = Weak<CancelNode>>) {
        for weak in due {
            // `expire` drops the panics of user code it meets; the last
            // reference to a node may also be ours, and dropping it runs
            // values' `Drop`s. This thread must outlive all of them.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                if let Some(node) = weak.upgrade() {
                    node.expire();
                }
            }));
        }
    }

    /// What the timer thread does when it wakes: expire every deadline that
    /// has passed. Under loom every queued deadline counts as passed.
    #[cfg(all(ctx_loom, test))]
    pub(crate) fn fire_due() {
        let Some(shared) = shared() else { return };
        let due = std::mem::take(&mut *lock(&shared.shards[0]));
        expire(due.into_values());
    }

    /// Entries queued, for the models' checks.
    #[cfg(all(ctx_loom, test))]
    pub(crate) fn queued() -> usize {
        shared().map_or(0, |shared| lock(&shared.shards[0]).len())
    }

    /// `node`'s key, for the unit tests: it can be looked up after the node
    /// is gone (while the queue holds its `Weak`, the address is not reused).
    #[cfg(all(not(ctx_loom), test))]
    pub(crate) fn queue_key(node: &CancelNode) -> Key {
        key(node)
    }

    /// True if some shard has an entry under `key`, for the unit tests.
    #[cfg(all(not(ctx_loom), test))]
    pub(crate) fn is_queued(key: Key) -> bool {
        shared().is_some_and(|shared| {
            shared
                .shards
                .iter()
                .any(|queue| lock(queue).contains_key(&key))
        })
    }

    /// The time now, packed as deadlines are.
    #[cfg(not(ctx_loom))]
    fn now() -> i64 {
        super::PackedDeadline::try_new(super::Instant::now()).map_or(i64::MAX, |now| now.nanos())
    }

    #[cfg(not(ctx_loom))]
    fn run(shared: &'static Shared) {
        use std::sync::atomic::Ordering;
        let _ = shared.thread.set(std::thread::current());
        let mut due = Vec::new();
        loop {
            // Anyone who queues a deadline from here on wakes us, so a
            // deadline queued during the scan is not missed.
            shared.planned.store(i64::MAX, Ordering::Release);
            let now = now();
            let mut next = i64::MAX;
            for shard in shared.shards.iter() {
                if let Some(first) = take_due(&mut lock(shard), now, &mut due) {
                    next = next.min(first);
                }
            }
            expire(due.drain(..));
            let planned = shared.planned.fetch_min(next, Ordering::AcqRel).min(next);
            let wake = (planned != i64::MAX).then(|| super::PackedDeadline(planned).get());
            match wake.flatten() {
                None => std::thread::park(),
                Some(wake) => {
                    let left = wake.saturating_duration_since(super::Instant::now());
                    if !left.is_zero() {
                        std::thread::park_timeout(left);
                    }
                }
            }
        }
    }
}
