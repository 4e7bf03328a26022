//! The cancellation tree: one [`CancelNode`] per `with_cancel`/`with_deadline`/
//! `with_timeout` context, and the [`CancelHandle`] that cancels it.
//!
//! # State machine
//!
//! Each node has one atomic `state`:
//!
//! ```text
//!            cancel(err, cause)            (first call wins; later ones are no-ops)
//!   LIVE ──────────────────────────────▶  CANCELED | DEADLINE_EXCEEDED   (terminal)
//! ```
//!
//! The transition happens under the node's lock, in one critical section that
//! also records the cause and takes the node's children, waiters and timer out.
//! Hence:
//!
//! * `err()` is one atomic load, no lock. Once it reads "done", the cause is
//!   already recorded (it was written before the state, under the same lock).
//! * A waiter or child registers under the lock *after* re-checking the state,
//!   so it either sees "done" or is in the lists that the cancel takes: no lost
//!   wake-up and no child created alive under a cancelled parent.
//! * A cancelled node never gains children or waiters again, so an index into
//!   its lists held by someone else is dead, never reused (see `slab.rs`).
//!
//! # Links
//!
//! A child holds its parent (a [`Context`]) strongly, for values and for the
//! parent's cancellation. The nearest cancellable ancestor holds the child only
//! weakly, in its `children` slab, and the child remembers its index there.
//! A child leaves that slab when it is cancelled or dropped, so a long-lived
//! parent does not grow with short-lived children.
//!
//! # Never two locks
//!
//! No code path holds two node locks at once: a cancel takes its own lock, lets
//! go, then visits its children (each under its own lock) and finally unlinks
//! from its parent (under the parent's lock). That rules out lock-order
//! deadlocks between a parent's cancel and a child's creation or drop.
//! Propagation to descendants uses an explicit work list, not recursion, so a
//! 10,000-deep chain cannot overflow the stack; dropping a deep chain is
//! iterative for the same reason ([`drop_chain`]).

use std::fmt;
use std::sync::{Arc, Weak};
use std::task::Waker;

use crate::after_func::AfterFuncEntry;
use crate::context::{Context, Repr};
use crate::deadline::{self, Instant, PackedDeadline, Timer};
use crate::error::{Cause, Error};
use crate::slab::{NIL, Slab};
use crate::sync::{AtomicU8, AtomicU32, Mutex, Ordering, lock};

pub(crate) const LIVE: u8 = 0;
const CANCELED: u8 = 1;
const DEADLINE_EXCEEDED: u8 = 2;

#[inline]
fn encode(err: Error) -> u8 {
    match err {
        Error::Canceled => CANCELED,
        Error::DeadlineExceeded => DEADLINE_EXCEEDED,
    }
}

#[inline]
fn decode(state: u8) -> Option<Error> {
    match state {
        CANCELED => Some(Error::Canceled),
        DEADLINE_EXCEEDED => Some(Error::DeadlineExceeded),
        _ => None,
    }
}

/// How a node was made, for `Debug`. (A timeout is a deadline, as in Go.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Cancel,
    Deadline,
}

/// What a node notifies when it is cancelled: its children, its after_func
/// callbacks and its waiting tasks, in one list.
pub(crate) enum Entry {
    Node(Weak<CancelNode>),
    AfterFunc(Arc<AfterFuncEntry>),
    Waiter(Waker),
}

pub(crate) struct Inner {
    /// While live: the cause to record if this node's own deadline fires.
    /// Once done: the cause of the cancellation; `None` means "the same as
    /// `err()`". Shared by a cancelled subtree; one pointer, to keep nodes small.
    cause: Option<SharedCause>,
    pub(crate) entries: Slab<Entry>,
    timer: Option<Timer>,
}

type SharedCause = Arc<Cause>;

impl Inner {
    fn new(cause: Option<SharedCause>) -> Self {
        Inner {
            cause,
            entries: Slab::new(),
            timer: None,
        }
    }
}

// The node is kept small (the cancel tree allocates one per `with_cancel`):
// see the size test in tests.rs.
pub(crate) struct CancelNode {
    state: AtomicU8,
    kind: Kind,
    /// Our index in the nearest cancellable ancestor's `entries`; only read
    /// or written under that ancestor's lock.
    slot: AtomicU32,
    /// The effective deadline: the earlier of our own and the inherited one.
    deadline: PackedDeadline,
    parent: Context,
    pub(crate) inner: Mutex<Inner>,
}

impl CancelNode {
    /// Creates a child of `parent`, linked to its nearest cancellable ancestor.
    ///
    /// `deadline` is this node's own deadline, if any. If the parent's is
    /// earlier, the parent's wins and no timer is armed (Go does the same).
    pub(crate) fn new_child(
        parent: &Context,
        deadline: Option<Instant>,
        deadline_cause: Option<Cause>,
        kind: Kind,
    ) -> Arc<CancelNode> {
        let ancestor = parent.signal();
        let inherited = ancestor.map_or(PackedDeadline::NONE, |a| a.deadline);
        let (deadline, own_timer) = match deadline {
            // The common case, `with_cancel`: copy the parent's as it is.
            None => (inherited, None),
            Some(own) => match inherited.get() {
                Some(theirs) if theirs <= own => (inherited, None),
                _ => (PackedDeadline::new(Some(own)), Some(own)),
            },
        };
        if let Some(err) = ancestor.and_then(|a| a.err()) {
            // Derived from a cancelled parent: born cancelled, with the
            // parent's error and cause, and never linked or armed.
            let cause = ancestor.and_then(|a| lock(&a.inner).cause.clone());
            return Arc::new(CancelNode {
                state: AtomicU8::new(encode(err)),
                deadline,
                kind,
                slot: AtomicU32::new(NIL),
                parent: parent.clone(),
                inner: Mutex::new(Inner::new(cause)),
            });
        }
        let node = Arc::new(CancelNode {
            state: AtomicU8::new(LIVE),
            deadline,
            kind,
            slot: AtomicU32::new(NIL),
            parent: parent.clone(),
            inner: Mutex::new(Inner::new(own_timer.and(deadline_cause).map(Arc::new))),
        });
        if let Some(ancestor) = ancestor {
            let mut guard = lock(&ancestor.inner);
            match decode(ancestor.state.load(Ordering::Acquire)) {
                None => {
                    let index = guard.entries.insert(Entry::Node(Arc::downgrade(&node)));
                    node.slot.store(index, Ordering::Relaxed);
                }
                Some(err) => {
                    // Cancelled since we looked: nobody else can see `node`
                    // yet, so set its state as the cancel would have.
                    let cause = guard.cause.clone();
                    drop(guard);
                    lock(&node.inner).cause = cause;
                    node.state.store(encode(err), Ordering::Release);
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
        self.state.load(Ordering::Acquire) != LIVE
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

    pub(crate) fn cause(&self) -> Option<Cause> {
        let err = self.err()?;
        let inner = lock(&self.inner);
        Some(match &inner.cause {
            Some(cause) => Cause::clone(cause),
            None => err.into(),
        })
    }

    /// Cancels this node and every descendant. Returns false if it was already done.
    pub(crate) fn cancel(&self, err: Error, cause: Option<Cause>) -> bool {
        self.cancel_with(err, |_| cause.map(Arc::new))
    }

    /// The node's own deadline fired: cancel with `DeadlineExceeded` and the
    /// cause given to `with_deadline_cause`, if any.
    pub(crate) fn expire(&self) -> bool {
        self.cancel_with(Error::DeadlineExceeded, |inner| inner.cause.take())
    }

    /// Stores the armed timer, unless the node was cancelled meanwhile (then the
    /// timer is dropped, which disarms it).
    #[cfg_attr(ctx_loom, allow(dead_code))]
    pub(crate) fn set_timer(&self, timer: Timer) {
        let mut inner = lock(&self.inner);
        if self.is_done() {
            drop(inner);
            drop(timer);
        } else {
            let old = inner.timer.replace(timer);
            drop(inner);
            drop(old);
        }
    }

    fn cancel_with(
        &self,
        err: Error,
        cause: impl FnOnce(&mut Inner) -> Option<SharedCause>,
    ) -> bool {
        // Most handles are dropped after their context is done: no lock then.
        if self.is_done() {
            return false;
        }
        let mut inner = lock(&self.inner);
        if self.is_done() {
            return false;
        }
        let cause = cause(&mut inner);
        let taken = Self::finish(&mut inner, &self.state, err, cause.clone());
        drop(inner);
        // We leave the parent's list ourselves; descendants are dropped from
        // ours wholesale by `finish`.
        self.unlink();
        taken.complete(err, cause);
        true
    }

    /// The locked part of a cancellation: record it and take what must be
    /// notified. The caller notifies after unlocking.
    fn finish(
        inner: &mut Inner,
        state: &AtomicU8,
        err: Error,
        cause: Option<SharedCause>,
    ) -> Taken {
        inner.cause = cause;
        state.store(encode(err), Ordering::Release);
        Taken {
            entries: std::mem::take(&mut inner.entries),
            timer: inner.timer.take(),
        }
    }

    /// Removes this node from its nearest cancellable ancestor's children.
    fn unlink(&self) {
        if let Some(ancestor) = self.parent.signal() {
            let index = self.slot.load(Ordering::Relaxed);
            ancestor.remove_entry(
                index,
                |entry| matches!(entry, Entry::Node(weak) if std::ptr::eq(weak.as_ptr(), self)),
            );
        }
    }

    /// Removes the entry at `index` if it is still there and `ours` says it
    /// is the caller's. A cancel takes the whole list, and a cancelled node
    /// never lists anything again, so then there is nothing to remove. The
    /// removed entry is dropped after the lock (a waker's drop is user code).
    pub(crate) fn remove_entry(&self, index: u32, ours: impl FnOnce(&Entry) -> bool) {
        let mut inner = lock(&self.inner);
        if self.is_done() {
            return;
        }
        if inner
            .entries
            .get_mut(index)
            .is_some_and(|entry| ours(entry))
        {
            let removed = inner.entries.remove(index);
            drop(inner);
            drop(removed);
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
}

/// What a cancellation took out of a node, to notify once the lock is released.
struct Taken {
    entries: Slab<Entry>,
    timer: Option<Timer>,
}

impl Taken {
    /// Wakes the waiters, disarms the timer, fires the after_funcs and
    /// cancels the descendants: with a work list of nodes, not recursion.
    fn complete(self, err: Error, cause: Option<SharedCause>) {
        let mut work: Vec<Arc<CancelNode>> = Vec::new();
        self.notify(&mut work);
        while let Some(node) = work.pop() {
            let mut inner = lock(&node.inner);
            if node.is_done() {
                continue;
            }
            let taken = CancelNode::finish(&mut inner, &node.state, err, cause.clone());
            drop(inner);
            taken.notify(&mut work);
        }
    }

    fn notify(self, work: &mut Vec<Arc<CancelNode>>) {
        let Taken { mut entries, timer } = self;
        drop(timer);
        entries.drain(|entry| match entry {
            Entry::Waiter(waker) => waker.wake(),
            Entry::Node(weak) => work.extend(weak.upgrade()),
            Entry::AfterFunc(after) => after.fire(),
        });
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
            // `get_mut` first: it works in place, where `into_inner` copies
            // the node out; it fails only while the parent still lists us.
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

/// Cancels a context made by [`Context::with_cancel`], [`Context::with_deadline`]
/// or [`Context::with_timeout`]: Go's `CancelFunc`, as an RAII guard.
///
/// Dropping the handle cancels the context, so a handle bound for the length
/// of a scope is Go's `defer cancel()`: the context's resources (its link in
/// the parent, its timer) are released however the scope is left. Cancelling
/// is idempotent, and the first cancellation wins.
///
/// Bind it to a named variable: `let (ctx, _cancel) = ...` keeps it to the end
/// of the scope, while `let (ctx, _) = ...` drops it, and so cancels `ctx`, at
/// once.
///
/// ```
/// use ctx_runtime::{Context, Error};
///
/// let root = Context::background();
/// let child = {
///     let (child, _cancel) = root.with_cancel();
///     assert_eq!(child.err(), None);
///     child
/// }; // `_cancel` dropped here: Go's deferred cancel() ran.
/// assert_eq!(child.err(), Some(Error::Canceled));
/// assert_eq!(root.err(), None);
/// ```
#[must_use = "dropping a CancelHandle cancels its context at once; bind it: `let (ctx, _cancel) = ...`"]
pub struct CancelHandle {
    node: Arc<CancelNode>,
}

impl CancelHandle {
    pub(crate) fn new(node: Arc<CancelNode>) -> Self {
        CancelHandle { node }
    }

    /// Cancels the context and all its descendants with [`Error::Canceled`].
    ///
    /// Every descendant is cancelled before this returns; waiting tasks are
    /// woken, and `after_func` callbacks are started (never waited for). Does
    /// nothing if the context is already done.
    ///
    /// ```
    /// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
    /// let (grandchild, _c) = ctx.with_cancel();
    /// cancel.cancel();
    /// assert!(grandchild.is_done());
    /// ```
    pub fn cancel(&self) {
        self.node.cancel(Error::Canceled, None);
    }

    /// Cancels with [`Error::Canceled`] and records `cause`, which
    /// [`Context::cause`] then returns here and in every descendant.
    ///
    /// ```
    /// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
    /// cancel.cancel_with_cause("client disconnected");
    /// assert_eq!(ctx.err(), Some(ctx_runtime::Error::Canceled));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "client disconnected");
    /// ```
    pub fn cancel_with_cause(&self, cause: impl Into<Cause>) {
        self.node.cancel(Error::Canceled, Some(cause.into()));
    }

    /// The context this handle cancels.
    ///
    /// ```
    /// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
    /// assert!(cancel.context().same(&ctx));
    /// ```
    pub fn context(&self) -> Context {
        Context::from_repr(Repr::Cancel(self.node.clone()))
    }
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("err", &self.node.err())
            .finish()
    }
}
