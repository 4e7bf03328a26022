//! The cancellation tree: one [`CancelNode`] per `with_cancel`/`with_deadline`/
//! `with_timeout` context. This module owns the node and its lock: every
//! other file lists, finds and removes entries through the functions here
//! (`cancel.rs` runs a cancellation's two phases, `token.rs` the bridge to
//! tokio-util).
//!
//! # State machine
//!
//! Each node has one atomic `state` byte:
//!
//! ```text
//!   LIVE ◀──────────▶ LISTED          (under the lock: something was listed or armed)
//!    │                  │
//!    │ CAS, no lock     │ under the lock
//!    ▼                  ▼
//!   done: CANCELED | DEADLINE_EXCEEDED, plus the flags DROPPED, INHERITED   (terminal)
//! ```
//!
//! `LISTED` means the node may have something to notify or release: entries
//! (children, waiters, after_funcs), a timer, or extras (a cause, tokens).
//! It is set under the lock, before any of them goes in, and stays until the
//! cancel. A node that never had any (the common leaf) is cancelled with one
//! compare-and-swap from `LIVE`, without its lock. `DROPPED` marks a cancel
//! by a dropped [`CancelHandle`](crate::CancelHandle) (only `Debug` shows
//! it). `INHERITED` marks a node cancelled by an ancestor: its cause is that
//! ancestor's, looked up when asked for instead of copied into every node.
//!
//! # Invariants
//!
//! 1. The state changes once from live to done: by a CAS from `LIVE`, or
//!    under the lock in the critical section that records the cause and
//!    takes the node's entries, timer and extras out. So `err()` is one
//!    atomic load, and once it reads "done" the cause is recorded (a cause
//!    always takes the locked path, which writes it before the state).
//! 2. Anything is listed under the lock only after setting `LISTED` from a
//!    live state ([`CancelNode::add_entry`], [`CancelNode::poll_waiter`]):
//!    a lock-free cancel's CAS from `LIVE` then fails and takes the lock,
//!    or it won first and the lister sees "done". So an entry is either in
//!    what the cancel takes, or its owner sees "done": no lost wake-up, no
//!    child born live under a cancelled parent.
//! 3. A done node never lists anything again, so an index into its entries
//!    held by someone else is dead, never reused ([`CancelNode::remove_entry`]
//!    then has nothing to do).
//! 4. A child holds its parent (a [`Context`]) strongly; the nearest
//!    cancellable ancestor holds the child only weakly, at the index the child
//!    keeps in `slot`. A child leaves that list when it is cancelled or
//!    dropped, so a long-lived parent does not grow with short-lived children.
//!
//! # Deadlock safety: never two locks, never user code under a lock
//!
//! No code path holds two node locks at once: a cancel takes its own lock,
//! lets go, visits its descendants (each under its own lock, one at a time)
//! and unlinks from its parent (under the parent's lock). That rules out
//! lock-order deadlocks between a parent's cancel and a child's creation or
//! drop.
//!
//! No user code ever runs while a node lock is held: not a waker's `wake`,
//! `clone` or `drop`, not an after_func, not a value's or a cause's `Drop`.
//! Under a lock we only move them in and out of the lists; they are cloned
//! before, and woken or dropped after. So user code may re-enter freely:
//! cancel this context, create children, drop the last handle.
//!
//! # Propagation, and what a reader may see
//!
//! A cancel runs in two phases (`cancel.rs`):
//!
//! 1. mark: every live node of the subtree is set done (`INHERITED`), and its
//!    entries are taken; iteratively, so a 10,000-deep chain does not
//!    overflow the stack;
//! 2. notify: only then are the waiters woken, the after_funcs started and
//!    the descendants' references dropped.
//!
//! So any code that runs *because of* a cancellation (a woken task, an
//! after_func, a drop) sees the whole subtree done, and `cancel()` returns
//! with every descendant done. A thread that merely reads `err()` while
//! another thread is in phase 1 can see a parent done and a child not yet:
//! Go (1.23 and later, where `Err` is an atomic load) has the same window,
//! since its `cancel` stores the parent's error before cancelling children.
//! It is safe for the same reason: whoever must stop is woken only after
//! phase 1, and a child is never done *before* its parent.
//!
//! # Panics of user code
//!
//! A panic in user code met during phase 2 (a waker's `wake`, a `Drop`) does
//! not stop the propagation: it is caught, the rest of phase 2 runs, and the
//! first panic is resumed when our bookkeeping is complete ([`Panic`]); or
//! dropped, on a timer thread or tokio's time driver (which must survive it)
//! and when the thread is already unwinding (a second panic would abort). The
//! panic hook has reported it either way. With `panic = "abort"` there is
//! nothing to catch, and nothing relies on catching.

mod cancel;
#[cfg(feature = "tokio-util")]
mod token;

use std::fmt;
use std::sync::{Arc, Weak};
use std::task::{Poll, Waker};

use crate::after_func::AfterFuncEntry;
use crate::context::{Context, Repr};
use crate::deadline::{self, Instant, PackedDeadline, Timer};
use crate::error::{Cause, Error};
use crate::slab::{NIL, Slab};
use crate::sync::{AtomicU8, AtomicU32, Mutex, Ordering, lock};

pub(crate) use cancel::Panic;
use cancel::Taken;

const LIVE: u8 = 0;
/// Live, and something may be listed, armed or held: cancel under the lock.
const LISTED: u8 = 0b1000_0000;
/// The error of a done node, in the low bits: 1 or 2, 0 while live.
const ERR: u8 = 0b0000_0011;
const CANCELED: u8 = 1;
const DEADLINE_EXCEEDED: u8 = 2;
/// Flag of a done node: cancelled because its `CancelHandle` was dropped.
const DROPPED: u8 = 0b0000_0100;
/// Flag of a done node: cancelled by an ancestor, whose cause is its cause.
const INHERITED: u8 = 0b0000_1000;

#[inline]
fn encode(err: Error) -> u8 {
    match err {
        Error::Canceled => CANCELED,
        Error::DeadlineExceeded => DEADLINE_EXCEEDED,
    }
}

#[inline]
fn decode(state: u8) -> Option<Error> {
    match state & ERR {
        0 => None,
        DEADLINE_EXCEEDED => Some(Error::DeadlineExceeded),
        _ => Some(Error::Canceled),
    }
}

/// How a node was made, for `Debug`. (A timeout is a deadline, as in Go.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Cancel,
    Deadline,
    /// `with_cancellation_token`.
    #[cfg_attr(not(feature = "tokio-util"), allow(dead_code))]
    Token,
}

/// What a node notifies when it is cancelled: its children, its after_func
/// callbacks and its waiting tasks, in one list.
pub(crate) enum Entry {
    Node(Weak<CancelNode>),
    AfterFunc(Arc<AfterFuncEntry>),
    Waiter(Waker),
}

/// What a node holds beside its entries, in one pointer (so that nodes stay
/// small): while live, what only some nodes need; once done, why.
enum Extra {
    Live(Live),
    /// The cause of the cancellation (at the node where it started).
    Done(Cause),
}

/// What a live node may need beyond its entries.
#[derive(Default)]
struct Live {
    /// The cause to record if this node's own deadline fires.
    deadline_cause: Option<Cause>,
    /// The bridged token, cancelled with the node (`Context::cancellation_token`).
    #[cfg(feature = "tokio-util")]
    token: Option<tokio_util::sync::CancellationToken>,
    /// A token whose cancellation cancels this node
    /// (`Context::with_cancellation_token`): its registered wait, held for
    /// its `Drop`, which leaves the token.
    #[cfg(feature = "tokio-util")]
    #[allow(dead_code)]
    watch: Option<std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>>,
}

struct Inner {
    /// `Live` extras (set at creation, or by the token bridge) while live;
    /// once done, `Done` with the cause where the cancellation started, or
    /// `None` ("the same as `err()`", or the ancestor's if `INHERITED`).
    /// Replaced once, with the state.
    extra: Option<Arc<Extra>>,
    /// Children, after_funcs and waiters while live; emptied for good by the cancel.
    entries: Slab<Entry>,
    /// The armed deadline: set once after arming, unless done by then; taken
    /// by the cancel.
    timer: Option<Timer>,
}

// The node is kept small (the cancel tree allocates one per `with_cancel`):
// see the size test in tests.rs.
pub(crate) struct CancelNode {
    state: AtomicU8,
    kind: Kind,
    /// Our index in the nearest cancellable ancestor's entries: written once,
    /// when listed; read under that ancestor's lock.
    slot: AtomicU32,
    /// The effective deadline, the earlier of our own and the inherited one. Fixed.
    deadline: PackedDeadline,
    /// Fixed until the node is dropped (then taken by [`drop_chain`]).
    parent: Context,
    inner: Mutex<Inner>,
}

impl CancelNode {
    /// Creates a child of `parent`, linked to its nearest cancellable ancestor.
    ///
    /// `deadline` is this node's own deadline, if any. If the parent's is
    /// earlier, the parent's wins and no timer is armed (Go does the same); a
    /// deadline too far to represent is no deadline at all.
    pub(crate) fn new_child(
        parent: &Context,
        deadline: Option<Instant>,
        deadline_cause: Option<Cause>,
        kind: Kind,
    ) -> Arc<CancelNode> {
        let ancestor = parent.signal();
        let inherited = ancestor.map_or(PackedDeadline::NONE, |a| a.deadline);
        let own = deadline.and_then(|at| Some((PackedDeadline::try_new(at)?, at)));
        let (deadline, own_timer) = match own {
            // The common case, `with_cancel`: copy the parent's as it is.
            None => (inherited, None),
            Some((packed, own)) => match inherited.get() {
                Some(theirs) if theirs <= own => (inherited, None),
                _ => (packed, Some(own)),
            },
        };
        // Born done under a done parent: its error, and its cause by lookup.
        let born = ancestor
            .and_then(|a| a.err())
            .map_or(LIVE, |err| encode(err) | INHERITED);
        let extra = own_timer
            .and(deadline_cause)
            .filter(|_| born == LIVE)
            .map(|cause| Arc::new(Extra::Live(Live::with_deadline_cause(cause))));
        let node = Arc::new(CancelNode {
            state: AtomicU8::new(if extra.is_some() { LISTED } else { born }),
            deadline,
            kind,
            slot: AtomicU32::new(NIL),
            parent: parent.clone(),
            inner: Mutex::new(Inner {
                extra,
                entries: Slab::new(),
                timer: None,
            }),
        });
        if born != LIVE {
            return node; // never linked or armed
        }
        if let Some(ancestor) = ancestor {
            match ancestor.add_entry(Entry::Node(Arc::downgrade(&node))) {
                Ok(index) => node.slot.store(index, Ordering::Relaxed),
                Err(_refused) => {
                    // Cancelled since we looked: nobody else can see `node`
                    // yet, so set it as the cancel would have.
                    let err = ancestor.err().unwrap_or(Error::Canceled);
                    let old = std::mem::take(&mut lock(&node.inner).extra);
                    node.state.store(encode(err) | INHERITED, Ordering::Release);
                    drop(old); // a deadline cause's `Drop`: unlocked
                    return node;
                }
            }
        }
        if let Some(when) = own_timer {
            deadline::arm(&node, when);
        }
        node
    }

    #[inline]
    pub(crate) fn err(&self) -> Option<Error> {
        decode(self.state.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & ERR != 0
    }

    /// True if this node was cancelled by dropping its handle.
    pub(crate) fn handle_dropped(&self) -> bool {
        self.state.load(Ordering::Acquire) & DROPPED != 0
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.get()
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn parent(&self) -> &Context {
        &self.parent
    }

    /// Why this node is done: the cause recorded where its cancellation
    /// started (here, or the ancestor it inherited it from).
    pub(crate) fn cause(&self) -> Option<Cause> {
        let err = self.err()?;
        let mut node = self;
        // An inherited cancellation always has a done cancellable ancestor;
        // the walk stops at the one where it started.
        while node.state.load(Ordering::Acquire) & INHERITED != 0 {
            match node.parent.signal() {
                Some(ancestor) => node = ancestor,
                None => break,
            }
        }
        let inner = lock(&node.inner);
        Some(match inner.extra.as_deref() {
            Some(Extra::Done(cause)) => cause.clone(),
            _ => err.into(),
        })
    }

    /// Cancels this node and every descendant. Returns false if it was
    /// already done. A panic of user code met on the way is resumed once the
    /// cancellation is complete.
    pub(crate) fn cancel(&self, err: Error, cause: Option<Cause>) -> bool {
        self.cancel_with(encode(err), cause)
            .map(Panic::resume)
            .is_some()
    }

    /// Cancels with `Canceled` because the handle was dropped.
    pub(crate) fn cancel_dropped(&self) -> bool {
        self.cancel_with(CANCELED | DROPPED, None)
            .map(Panic::resume)
            .is_some()
    }

    /// The node's own deadline fired: cancel with `DeadlineExceeded` and the
    /// cause given to `with_deadline_cause`, if any. Called by timers, which
    /// must survive user code: a panic met on the way is dropped.
    pub(crate) fn expire(&self) -> bool {
        self.cancel_locked(DEADLINE_EXCEEDED, None, true)
            .map(Panic::discard)
            .is_some()
    }

    /// `None` if the node was already done.
    fn cancel_with(&self, code: u8, cause: Option<Cause>) -> Option<Panic> {
        // Most handles are dropped after their context is done: one load.
        let state = self.state.load(Ordering::Acquire);
        if state & ERR != 0 {
            return None;
        }
        // Nothing listed, armed or held, and no cause to record: no lock.
        if state == LIVE
            && cause.is_none()
            && self
                .state
                .compare_exchange(LIVE, code, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.unlink();
            return Some(Panic::default());
        }
        self.cancel_locked(code, cause, false)
    }

    /// The cancel under the lock; `deadline`: take the cause from the
    /// deadline's (if no `cause` is given).
    fn cancel_locked(&self, code: u8, cause: Option<Cause>, deadline: bool) -> Option<Panic> {
        let mut inner = lock(&self.inner);
        if self.is_done() {
            return None;
        }
        let cause = cause.or_else(|| match (deadline, inner.extra.as_deref()) {
            // A cause's clone is a reference count: no user code under the lock.
            (true, Some(Extra::Live(live))) => live.deadline_cause.clone(),
            _ => None,
        });
        let done = cause.map(|cause| Arc::new(Extra::Done(cause)));
        let taken = Taken::take(&mut inner, &self.state, code, done);
        drop(inner);
        // We leave the parent's list ourselves; our descendants leave ours
        // wholesale, with the entries `take` took.
        self.unlink();
        Some(taken.propagate(decode(code).unwrap_or(Error::Canceled)))
    }

    /// Under the lock: makes sure the node is `LISTED` before something is
    /// listed, armed or held. False if it is done (then nothing may be).
    fn list(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            LISTED => true,
            // A lock-free cancel may win this race: then the node is done.
            LIVE => self
                .state
                .compare_exchange(LIVE, LISTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
            _ => false,
        }
    }

    /// Stores the armed timer, unless the node was cancelled meanwhile (then the
    /// timer is dropped, which disarms it).
    pub(crate) fn set_timer(&self, timer: Timer) {
        let mut inner = lock(&self.inner);
        let unused = if self.list() {
            inner.timer.replace(timer)
        } else {
            Some(timer)
        };
        drop(inner);
        drop(unused);
    }

    /// Lists `entry` unless the node is done; then hands it back, for the
    /// caller to deal with (and drop) outside the lock.
    pub(crate) fn add_entry(&self, entry: Entry) -> Result<u32, Entry> {
        let mut inner = lock(&self.inner);
        if !self.list() {
            drop(inner);
            return Err(entry);
        }
        Ok(inner.entries.insert(entry))
    }

    /// Ready once the node is done; otherwise makes sure `waker` is listed,
    /// at `*slot` (`NIL` before the first registration). A waker listed by an
    /// earlier poll is kept if it would wake the same task, else replaced.
    pub(crate) fn poll_waiter(&self, slot: &mut u32, waker: &Waker) -> Poll<()> {
        if self.is_done() {
            return Poll::Ready(());
        }
        if *slot != NIL {
            let mut inner = lock(&self.inner);
            if self.is_done() {
                *slot = NIL;
                return Poll::Ready(());
            }
            if let Some(Entry::Waiter(listed)) = inner.entries.get_mut(*slot)
                && listed.will_wake(waker)
            {
                return Poll::Pending;
            }
        }
        // Cloning a waker runs user code: not under the lock.
        let fresh = waker.clone();
        let mut inner = lock(&self.inner);
        if !self.list() {
            drop(inner);
            *slot = NIL;
            drop(fresh);
            return Poll::Ready(());
        }
        let replaced = match inner.entries.get_mut(*slot) {
            Some(Entry::Waiter(listed)) => Some(std::mem::replace(listed, fresh)),
            _ => {
                *slot = inner.entries.insert(Entry::Waiter(fresh));
                None
            }
        };
        drop(inner);
        drop(replaced); // user code: unlocked
        Poll::Pending
    }

    /// Removes the waiter listed at `*slot` by [`poll_waiter`](Self::poll_waiter), if any.
    pub(crate) fn remove_waiter(&self, slot: &mut u32) {
        let index = std::mem::replace(slot, NIL);
        if index != NIL {
            self.remove_entry(index, |entry| matches!(entry, Entry::Waiter(_)));
        }
    }

    /// Removes the entry at `index` if it is still there and `ours` says it
    /// is the caller's. A cancel takes the whole list, and a done node never
    /// lists anything again, so then there is nothing to remove. The removed
    /// entry is dropped after the lock (a waker's drop is user code).
    pub(crate) fn remove_entry(&self, index: u32, ours: impl FnOnce(&Entry) -> bool) {
        if self.is_done() {
            return;
        }
        let mut inner = lock(&self.inner);
        if self.is_done() {
            return;
        }
        let removed = match inner.entries.get_mut(index) {
            Some(entry) if ours(entry) => inner.entries.remove(index),
            _ => None,
        };
        drop(inner);
        drop(removed);
    }

    /// Removes this node from its nearest cancellable ancestor's entries.
    fn unlink(&self) {
        if let Some(ancestor) = self.parent.signal() {
            let index = self.slot.load(Ordering::Relaxed);
            ancestor.remove_entry(
                index,
                |entry| matches!(entry, Entry::Node(weak) if std::ptr::eq(weak.as_ptr(), self)),
            );
        }
    }

    /// Unlinks from the parent and hands the parent back, for [`drop_chain`].
    fn release(&mut self) -> Context {
        if !self.is_done() {
            self.unlink();
        }
        std::mem::take(&mut self.parent)
    }

    #[cfg(test)]
    pub(crate) fn child_count(&self) -> usize {
        self.count(|e| matches!(e, Entry::Node(_) | Entry::AfterFunc(_)))
    }

    #[cfg(test)]
    pub(crate) fn waiter_count(&self) -> usize {
        self.count(|e| matches!(e, Entry::Waiter(_)))
    }

    #[cfg(test)]
    fn count(&self, f: impl Fn(&Entry) -> bool) -> usize {
        lock(&self.inner).entries.count(f)
    }

    /// Bytes the node's entry list holds on the heap.
    #[cfg(all(test, not(ctx_loom)))]
    pub(crate) fn entries_heap_bytes(&self) -> usize {
        lock(&self.inner).entries.heap_bytes()
    }
}

impl Live {
    fn with_deadline_cause(cause: Cause) -> Live {
        Live {
            deadline_cause: Some(cause),
            #[cfg(feature = "tokio-util")]
            token: None,
            #[cfg(feature = "tokio-util")]
            watch: None,
        }
    }
}

impl Drop for CancelNode {
    fn drop(&mut self) {
        drop_chain(self.release());
    }
}

/// Deadlines fire by waking the node: the timer holds the node as its waker.
impl std::task::Wake for CancelNode {
    fn wake(self: Arc<Self>) {
        deadline::fired(&self);
        // Called by tokio's time driver, which must not see a user's panic:
        // if ours was the last reference, dropping it runs values' `Drop`s.
        cancel::drop_quietly(self);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        deadline::fired(self);
    }
}

impl fmt::Debug for CancelNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelNode")
            .field("err", &self.err())
            .field("deadline", &self.deadline())
            .finish_non_exhaustive()
    }
}

/// Drops a context whose ancestors may be uniquely owned by it, one ancestor
/// at a time, so that dropping a 10,000-deep chain does not recurse.
pub(crate) fn drop_chain(mut ctx: Context) {
    loop {
        ctx = match std::mem::take(&mut ctx.repr) {
            // Shared (the common case, a parent with other children or
            // references): one decrement, nothing to walk. Otherwise try in
            // place (`get_mut`), where `into_inner` would copy the node out;
            // it fails only while the parent still lists us.
            Repr::Cancel(node) if Arc::strong_count(&node) > 1 => return,
            Repr::Cancel(mut node) => match Arc::get_mut(&mut node) {
                Some(node) => node.release(),
                None => match Arc::into_inner(node) {
                    Some(mut node) => node.release(),
                    None => return,
                },
            },
            Repr::Value(mut node) => match Arc::get_mut(&mut node) {
                Some(node) => node.take_parent(),
                None => return,
            },
            Repr::WithoutCancel(parent) => match Arc::into_inner(parent) {
                Some(parent) => parent,
                None => return,
            },
            Repr::Background | Repr::Todo => return,
        };
    }
}
