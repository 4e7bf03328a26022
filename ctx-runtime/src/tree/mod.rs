//! The cancellation tree: one [`CancelNode`] per `with_cancel`/`with_deadline`/
//! `with_timeout` context. This module owns the node and its lock: every
//! other file lists, finds and removes entries through the functions here
//! (`cancel.rs` runs a cancellation's two phases, `token.rs` the bridge to
//! tokio-util).
//!
//! # Joining the parent lazily
//!
//! A node joins its nearest cancellable ancestor's list only when that
//! ancestor's cancel must reach it: when it gets something to notify or
//! release (a waiter, an after_func, a child that joined it, a timer on
//! tokio's wheel, a bridged token). Until then it is *unlinked*, and whether
//! it is done is read from its own state and then its ancestors', up to the
//! first linked one: creating and dropping a child that nobody waits on takes
//! no lock of the parent's, and cancelling a parent with a thousand such
//! children visits none of them. A walk is at most [`MAX_HOPS`] loads: a node
//! that would be farther from a linked ancestor joins at once. A deadline on
//! ctx's timer thread lists nothing in the node (`deadline.rs`), so a
//! `with_timeout` nobody waits on stays unlinked too.
//!
//! # State machine
//!
//! Each node has one atomic `state` byte:
//!
//! ```text
//!   LIVE ──join──▶ LINKED ──list──▶ LINKED|LISTED        (under the locks)
//!    │               │                  │
//!    │ CAS           │ CAS              │ under the lock
//!    ▼               ▼                  ▼
//!   done: CANCELED | DEADLINE_EXCEEDED, plus the flags DROPPED, INHERITED, LINKED   (terminal)
//! ```
//!
//! * `LINKED`: in the nearest cancellable ancestor's list (a node without
//!   one is born `LINKED`: it has nobody to join). Set under that ancestor's
//!   lock; kept when done, so that the node knows to leave the list.
//! * `LISTED`: may have something to notify or release (entries, a timer,
//!   extras). Set under the node's own lock, once linked, before any of
//!   them goes in; kept until the cancel. A node that is not `LISTED` is
//!   cancelled with one compare-and-swap, without its lock.
//! * `DROPPED`: cancelled by a dropped [`CancelHandle`](crate::CancelHandle)
//!   (only `Debug` shows it). `INHERITED`: cancelled by an ancestor, whose
//!   cause is its cause, looked up when asked for.
//!
//! # Invariants
//!
//! 1. A node's own state changes once from live to done: by a CAS from a
//!    state without `LISTED`, or under its lock in the critical section that
//!    records the cause and takes its entries, timer and extras out. A cause
//!    always takes the locked path, which writes it before the state.
//! 2. Anything is listed in a node only after setting `LISTED` from a live,
//!    linked state under the node's lock ([`CancelNode::add_entry`],
//!    [`CancelNode::poll_waiter`], [`CancelNode::set_timer`]): a lock-free
//!    cancel's CAS then fails and takes the lock, or it won first and the
//!    lister sees "done". And a node is linked before it lists anything, so
//!    its ancestors' cancels reach what it lists. So no lost wake-up, and no
//!    child live under a cancelled parent.
//! 3. A done node never lists anything again, so an index into its entries
//!    held by someone else is dead, never reused ([`CancelNode::remove_entry`]
//!    then has nothing to do).
//! 4. A child holds its parent (a [`Context`]) strongly; an ancestor holds a
//!    linked child only weakly, at the index the child keeps in `slot`. A
//!    child leaves that list when it is cancelled or dropped, so a long-lived
//!    parent does not grow with short-lived children.
//!
//! # Deadlock safety: locks from the leaves up, never user code under one
//!
//! A node's lock is held while it joins its parent (which takes the parent's
//! lock, and so on up while ancestors join theirs): locks nest only from a
//! descendant to an ancestor. Every other path holds one lock at a time: a
//! cancel takes its own lock, lets go, visits its descendants (each under
//! its own lock, one at a time) and unlinks from its parent (under the
//! parent's lock). So no two threads can wait for each other's locks. The
//! timer thread's queue locks (`deadline.rs`) are leaves: taken with no node
//! lock held, and nothing else is taken under them.
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
//! 1. mark: every live linked node of the subtree is set done (`INHERITED`),
//!    and its entries are taken; iteratively, so a 10,000-deep chain does not
//!    overflow the stack (unlinked nodes see the cancel through the walk);
//! 2. notify: only then are the waiters woken, the after_funcs started and
//!    the descendants' references dropped.
//!
//! So any code that runs *because of* a cancellation (a woken task, an
//! after_func, a drop) sees the whole subtree done, and `cancel()` returns
//! with every descendant done. A thread that merely reads `err()` while
//! another thread is in phase 1 can see a parent done and a linked child not
//! yet: Go (1.23 and later, where `Err` is an atomic load) has the same
//! window, since its `cancel` stores the parent's error before cancelling
//! children. It is safe for the same reason: whoever must stop is woken only
//! after phase 1, and a child is never done *before* its parent.
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

/// Live and not (yet) in its ancestor's list.
const LIVE: u8 = 0;
/// In the nearest cancellable ancestor's list (or without one).
const LINKED: u8 = 0b0100_0000;
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

/// The most unlinked nodes between any node and a linked ancestor (itself
/// included): what a walk for the state costs at most, in loads.
const MAX_HOPS: u8 = 4;

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

/// A deadline asked for: `at`, computed at `read_at` (`now + timeout`) if
/// it came from a timeout.
#[derive(Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) read_at: Option<Instant>,
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

/// What a node notifies when it is cancelled: its linked children, its
/// after_func callbacks and its waiting tasks, in one list.
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
    /// Linked children, after_funcs and waiters while live; emptied for good
    /// by the cancel.
    entries: Slab<Entry>,
    /// A deadline on tokio's wheel (a paused clock): set once after arming,
    /// unless done by then; taken by the cancel. (One on the timer thread is
    /// not held here: see `timer_shard`.)
    timer: Option<Timer>,
}

// The node is kept small (the cancel tree allocates one per `with_cancel`):
// see the size test in tests.rs.
pub(crate) struct CancelNode {
    state: AtomicU8,
    kind: Kind,
    /// Unlinked nodes from here up to a linked ancestor, this one included,
    /// when this one was made (0: linked from the start). Fixed.
    hops: u8,
    /// While this node's deadline may be on the timer thread's queue
    /// (`deadline::arm_thread`): 1 + the queue's shard; 0 otherwise. Set once
    /// armed there, cleared by the [`deadline::disarm`] that dequeues it.
    pub(crate) timer_shard: AtomicU8,
    /// Our index in the nearest cancellable ancestor's entries: written once,
    /// when linked; read under that ancestor's lock.
    slot: AtomicU32,
    /// The effective deadline, the earlier of our own and the inherited one. Fixed.
    deadline: PackedDeadline,
    /// Fixed until the node is dropped (then taken by [`drop_chain`]).
    parent: Context,
    inner: Mutex<Inner>,
}

impl CancelNode {
    /// Creates a child of `parent`; see the module docs for when it joins
    /// its nearest cancellable ancestor.
    ///
    /// `deadline` is this node's own deadline, if any. If the parent's is
    /// earlier, the parent's wins and no timer is armed (Go does the same); a
    /// deadline too far to represent is no deadline at all.
    pub(crate) fn new_child(
        parent: &Context,
        deadline: Option<Deadline>,
        deadline_cause: Option<Cause>,
        kind: Kind,
    ) -> Arc<CancelNode> {
        let read_at = deadline.and_then(|d| d.read_at);
        let deadline = deadline.map(|d| d.at);
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
        let (state, hops) = match ancestor {
            None => (LINKED, 0),
            Some(ancestor) => match ancestor.err() {
                Some(err) => (encode(err) | INHERITED, 0),
                None if ancestor.state.load(Ordering::Acquire) & LINKED != 0 => (LIVE, 1),
                None => (LIVE, ancestor.hops.saturating_add(1)),
            },
        };
        let extra = own_timer
            .and(deadline_cause)
            .filter(|_| decode(state).is_none())
            .map(|cause| Arc::new(Extra::Live(Live::with_deadline_cause(cause))));
        let node = Arc::new(CancelNode {
            state: AtomicU8::new(state),
            kind,
            hops,
            timer_shard: AtomicU8::new(0),
            slot: AtomicU32::new(NIL),
            deadline,
            parent: parent.clone(),
            inner: Mutex::new(Inner {
                extra,
                entries: Slab::new(),
                timer: None,
            }),
        });
        if decode(state).is_some() {
            return node; // never linked or armed
        }
        // A node that would otherwise be too far from a linked ancestor joins
        // now. (A deadline on the timer thread lists nothing, so it needs no
        // link: see `deadline`.)
        if node.hops > MAX_HOPS && !node.join() {
            return node; // the parent was cancelled meanwhile
        }
        if let Some(when) = own_timer {
            deadline::arm(&node, when, read_at);
        }
        node
    }

    /// Why this node is done, if it is: its own state, or, while it is not
    /// linked, the first of its ancestors that is done.
    #[inline]
    pub(crate) fn err(&self) -> Option<Error> {
        let state = self.state.load(Ordering::Acquire);
        if state & (ERR | LINKED) != 0 {
            return decode(state);
        }
        self.ancestors_err()
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        if state & (ERR | LINKED) != 0 {
            return state & ERR != 0;
        }
        self.ancestors_err().is_some()
    }

    /// True while this node is linked and live: the hot check of a rewritten
    /// await. Relaxed, so that it is one plain load the compiler can schedule
    /// freely: `false` is then confirmed (or not) with [`err`](Self::err).
    #[inline]
    pub(crate) fn surely_live(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (ERR | LINKED) == LINKED
    }

    /// The walk of an unlinked node: up to the first linked or done ancestor.
    #[cold]
    fn ancestors_err(&self) -> Option<Error> {
        let mut node = self;
        loop {
            node = node.parent.signal()?;
            let state = node.state.load(Ordering::Acquire);
            if state & (ERR | LINKED) != 0 {
                return decode(state);
            }
        }
    }

    /// True if this node was cancelled by dropping its handle.
    pub(crate) fn handle_dropped(&self) -> bool {
        self.state.load(Ordering::Acquire) & DROPPED != 0
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.get()
    }

    pub(crate) fn packed_deadline(&self) -> PackedDeadline {
        self.deadline
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn parent(&self) -> &Context {
        &self.parent
    }

    /// Why this node is done: the cause recorded where its cancellation
    /// started (here, or the ancestor it comes from).
    pub(crate) fn cause(&self) -> Option<Cause> {
        let err = self.err()?;
        // Up past inherited and unlinked live nodes, to where it started.
        let mut node = self;
        loop {
            let state = node.state.load(Ordering::Acquire);
            if state & ERR != 0 && state & INHERITED == 0 {
                break;
            }
            match node.parent.signal() {
                Some(ancestor) => node = ancestor,
                None => return Some(err.into()),
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
        // Most handles are dropped after their context is done: one load
        // (and a short walk for an unlinked one).
        let state = self.state.load(Ordering::Acquire);
        if state & ERR != 0 || (state == LIVE && self.ancestors_err().is_some()) {
            return None;
        }
        // Nothing listed, armed or held, and no cause to record: no lock.
        if state & LISTED == 0
            && cause.is_none()
            && self
                .state
                .compare_exchange(state, code | state, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            deadline::disarm(self);
            if state & LINKED != 0 {
                self.unlink();
            }
            return Some(Panic::default());
        }
        self.cancel_locked(code, cause, false)
    }

    /// The cancel under the lock; `deadline`: take the cause from the
    /// deadline's (if no `cause` is given).
    fn cancel_locked(&self, code: u8, cause: Option<Cause>, deadline: bool) -> Option<Panic> {
        let mut inner = lock(&self.inner);
        // Claim the cancellation with a CAS: a node that is not LISTED may be
        // cancelled lock-free, or joined (LINKED), at the same time. Readers
        // of the cause take this lock, so they wait until it is written.
        let linked = loop {
            let state = self.state.load(Ordering::Acquire);
            if state & ERR != 0 || (state & LINKED == 0 && self.ancestors_err().is_some()) {
                return None;
            }
            let done = code | (state & LINKED);
            if self
                .state
                .compare_exchange(state, done, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break state & LINKED != 0;
            }
        };
        let cause = cause.or_else(|| match (deadline, inner.extra.as_deref()) {
            // A cause's clone is a reference count: no user code under the lock.
            (true, Some(Extra::Live(live))) => live.deadline_cause.clone(),
            _ => None,
        });
        let taken = Taken::take(&mut inner, cause.map(|cause| Arc::new(Extra::Done(cause))));
        drop(inner);
        deadline::disarm(self);
        // We leave the parent's list ourselves; our descendants leave ours
        // wholesale, with the entries `take` took.
        if linked {
            self.unlink();
        }
        Some(taken.propagate(decode(code).unwrap_or(Error::Canceled)))
    }

    /// Joins the nearest cancellable ancestor's list (joining its own first,
    /// if it has not), so that its cancel reaches this node. False if this
    /// node is done (or found done on the way: then it is marked so).
    ///
    /// May be called with this node's lock held (locks nest from a
    /// descendant up to an ancestor, never the other way).
    pub(crate) fn join(self: &Arc<Self>) -> bool {
        let state = self.state.load(Ordering::Acquire);
        if state & ERR != 0 {
            return false;
        }
        if state & LINKED != 0 {
            return true;
        }
        let Some(ancestor) = self.parent.signal() else {
            return true; // nothing to join (a root is born linked)
        };
        // At most MAX_HOPS levels: the unlinked ancestors of an unlinked node.
        let joined = ancestor.join() && {
            let mut inner = lock(&ancestor.inner);
            // Our own lock-free cancel may race this: then we stay out.
            ancestor.list()
                && self
                    .state
                    .compare_exchange(LIVE, LINKED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                && {
                    let index = inner.entries.insert(Entry::Node(Arc::downgrade(self)));
                    self.slot.store(index, Ordering::Relaxed);
                    true
                }
        };
        if joined {
            return true;
        }
        // The ancestor is done (or we are): mark this node as the ancestor's
        // cancel would have, unless its own state says done already.
        if let Some(err) = ancestor.err() {
            let _ = self.state.compare_exchange(
                LIVE,
                encode(err) | INHERITED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        false
    }

    /// Under the lock, once linked: makes sure the node is `LISTED` before
    /// something is listed, armed or held. False if it is done (then nothing
    /// may be).
    fn list(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        if state & LISTED != 0 {
            return true;
        }
        // A lock-free cancel may win this race: then the node is done.
        state == LINKED
            && self
                .state
                .compare_exchange(LINKED, LINKED | LISTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Stores the armed timer, unless the node was cancelled meanwhile (then the
    /// timer is dropped, which disarms it). The node is linked (`deadline::arm`).
    #[cfg(not(ctx_loom))] // under loom, deadlines only go to the timer thread
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
    pub(crate) fn add_entry(self: &Arc<Self>, entry: Entry) -> Result<u32, Entry> {
        if !self.join() {
            return Err(entry);
        }
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
    pub(crate) fn poll_waiter(self: &Arc<Self>, slot: &mut u32, waker: &Waker) -> Poll<()> {
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
        if !self.join() {
            *slot = NIL;
            drop(fresh);
            return Poll::Ready(());
        }
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
    #[inline]
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

    /// Removes this (linked) node from its nearest cancellable ancestor's entries.
    fn unlink(&self) {
        if let Some(ancestor) = self.parent.signal() {
            let index = self.slot.load(Ordering::Relaxed);
            ancestor.remove_entry(
                index,
                |entry| matches!(entry, Entry::Node(weak) if std::ptr::eq(weak.as_ptr(), self)),
            );
        }
    }

    /// Leaves the parent's list (if in it) and hands the parent back, for
    /// [`drop_chain`].
    fn release(&mut self) -> Context {
        if self.state.load(Ordering::Acquire) & (ERR | LINKED) == LINKED {
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

    /// True if this node is in its ancestor's list.
    #[cfg(all(test, not(ctx_loom)))]
    pub(crate) fn is_linked(&self) -> bool {
        self.state.load(Ordering::Acquire) & LINKED != 0
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
        deadline::disarm(self);
        let parent = self.release();
        // The common case, a parent with other references, is one decrement
        // (here, inline); only a parent this node may own takes the loop.
        match &parent.repr {
            Repr::Background | Repr::Todo => {}
            Repr::Cancel(node) if Arc::strong_count(node) > 1 => {}
            _ => drop_chain(parent),
        }
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
