//! The cancellation tree: one [`CancelNode`] per `with_cancel`/`with_deadline`/
//! `with_timeout` context. This file owns the node and its lock: every other
//! file lists, finds and removes entries through the functions here.
//!
//! # State machine
//!
//! Each node has one atomic `state`:
//!
//! ```text
//!            cancel(err, cause)            (first call wins; later ones are no-ops)
//!   LIVE ──────────────────────────────▶  CANCELED | DEADLINE_EXCEEDED | DROPPED   (terminal)
//! ```
//!
//! (`DROPPED` is `CANCELED` by a dropped [`CancelHandle`](crate::CancelHandle);
//! it reads as [`Error::Canceled`] and only `Debug` tells them apart.)
//!
//! # Invariants
//!
//! 1. The state changes once, under the node's lock, in the critical section
//!    that records the cause and takes the node's entries and timer out. So
//!    `err()` is one atomic load, and once it reads "done" the cause is
//!    recorded.
//! 2. An entry (a child, an after_func, a waiter) is listed under the lock
//!    only after re-checking the state ([`CancelNode::add_entry`],
//!    [`CancelNode::poll_waiter`]): it is either in the entries the cancel
//!    takes, or its owner sees "done". No lost wake-up, no child born live
//!    under a cancelled parent.
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
//! A cancel runs in two phases ([`Taken::propagate`]):
//!
//! 1. mark: every live node of the subtree is set done, with the error and the
//!    cause, and its entries are taken; iteratively, so a 10,000-deep chain
//!    does not overflow the stack;
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

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Weak};
use std::task::{Poll, Waker};

use crate::after_func::AfterFuncEntry;
use crate::context::{Context, Repr};
use crate::deadline::{self, Instant, PackedDeadline, Timer};
use crate::error::{Cause, Error};
use crate::slab::{NIL, Slab};
use crate::sync::{AtomicU8, AtomicU32, Mutex, Ordering, lock};

const LIVE: u8 = 0;
const CANCELED: u8 = 1;
const DEADLINE_EXCEEDED: u8 = 2;
/// Canceled because its `CancelHandle` was dropped (not used or cancelled).
const DROPPED: u8 = 3;

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
        LIVE => None,
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
    /// The cause of the cancellation; one `Arc` shared by a cancelled subtree.
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

type SharedExtra = Arc<Extra>;

struct Inner {
    /// `Live` extras (set at creation, or by the token bridge) while live;
    /// once done, `Done` with the cause, or `None` meaning "the same as
    /// `err()`". Replaced once, with the state.
    extra: Option<SharedExtra>,
    /// Children, after_funcs and waiters while live; emptied for good by the cancel.
    entries: Slab<Entry>,
    /// The armed deadline: set once after arming, unless done by then; taken
    /// by the cancel.
    timer: Option<Timer>,
}

impl Inner {
    fn new(extra: Option<SharedExtra>) -> Self {
        Inner {
            extra,
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
        let new = |state, extra| {
            Arc::new(CancelNode {
                state: AtomicU8::new(state),
                deadline,
                kind,
                slot: AtomicU32::new(NIL),
                parent: parent.clone(),
                inner: Mutex::new(Inner::new(extra)),
            })
        };
        let Some(ancestor) = ancestor else {
            let node = new(LIVE, live_extra(own_timer.and(deadline_cause)));
            if let Some(when) = own_timer {
                deadline::arm(&node, when);
            }
            return node;
        };
        if let Some(err) = ancestor.err() {
            // Derived from a cancelled parent: born cancelled, with the
            // parent's error and cause, and never linked or armed.
            return new(encode(err), ancestor.done_extra());
        }
        let node = new(LIVE, live_extra(own_timer.and(deadline_cause)));
        match ancestor.add_entry(Entry::Node(Arc::downgrade(&node))) {
            Ok(index) => node.slot.store(index, Ordering::Relaxed),
            Err(_refused) => {
                // Cancelled since we looked: nobody else can see `node` yet,
                // so set it as the cancel would have.
                let err = ancestor.err().unwrap_or(Error::Canceled);
                node.born_cancelled(err, ancestor.done_extra());
                return node;
            }
        }
        if let Some(when) = own_timer {
            deadline::arm(&node, when);
        }
        node
    }

    fn born_cancelled(&self, err: Error, done: Option<SharedExtra>) {
        let old = std::mem::replace(&mut lock(&self.inner).extra, done);
        self.state.store(encode(err), Ordering::Release);
        drop(old); // user code (a cause's `Drop`): unlocked
    }

    #[inline]
    pub(crate) fn err(&self) -> Option<Error> {
        decode(self.state.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) != LIVE
    }

    /// True if this node was cancelled by dropping its handle.
    pub(crate) fn handle_dropped(&self) -> bool {
        self.state.load(Ordering::Acquire) == DROPPED
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

    /// The extra of a done node (its shared cause), for a child born under it.
    fn done_extra(&self) -> Option<SharedExtra> {
        let inner = lock(&self.inner);
        inner
            .extra
            .as_ref()
            .filter(|extra| matches!(***extra, Extra::Done(_)))
            .cloned()
    }

    pub(crate) fn cause(&self) -> Option<Cause> {
        let err = self.err()?;
        Some(match self.done_extra().as_deref() {
            Some(Extra::Done(cause)) => cause.clone(),
            _ => err.into(),
        })
    }

    /// Cancels this node and every descendant. Returns false if it was
    /// already done. A panic of user code met on the way is resumed once the
    /// cancellation is complete.
    pub(crate) fn cancel(&self, err: Error, cause: Option<Cause>) -> bool {
        self.cancel_with(encode(err), |_| cause)
            .map(Panic::resume)
            .is_some()
    }

    /// Cancels with `Canceled` because the handle was dropped.
    pub(crate) fn cancel_dropped(&self) -> bool {
        self.cancel_with(DROPPED, |_| None)
            .map(Panic::resume)
            .is_some()
    }

    /// The node's own deadline fired: cancel with `DeadlineExceeded` and the
    /// cause given to `with_deadline_cause`, if any. Called by timers, which
    /// must survive user code: a panic met on the way is dropped.
    pub(crate) fn expire(&self) -> bool {
        self.cancel_with(DEADLINE_EXCEEDED, |live| live?.deadline_cause.clone())
            .map(Panic::discard)
            .is_some()
    }

    /// Stores the armed timer, unless the node was cancelled meanwhile (then the
    /// timer is dropped, which disarms it).
    #[cfg_attr(ctx_loom, allow(dead_code))]
    pub(crate) fn set_timer(&self, timer: Timer) {
        let mut inner = lock(&self.inner);
        let unused = if self.is_done() {
            Some(timer)
        } else {
            inner.timer.replace(timer)
        };
        drop(inner);
        drop(unused);
    }

    /// `None` if the node was already done.
    fn cancel_with(
        &self,
        state: u8,
        cause: impl FnOnce(Option<&Live>) -> Option<Cause>,
    ) -> Option<Panic> {
        // Most handles are dropped after their context is done: no lock then.
        if self.is_done() {
            return None;
        }
        let mut inner = lock(&self.inner);
        if self.is_done() {
            return None;
        }
        let live = match inner.extra.as_deref() {
            Some(Extra::Live(live)) => Some(live),
            _ => None,
        };
        // A cause's clone is a reference count: no user code under the lock.
        let done = cause(live).map(|cause| Arc::new(Extra::Done(cause)));
        let taken = Taken::take(&mut inner, &self.state, state, done.clone());
        drop(inner);
        // We leave the parent's list ourselves; our descendants leave ours
        // wholesale, with the entries `take` took.
        self.unlink();
        if taken.is_empty() {
            // Nothing listed, armed or held: the common leaf.
            return Some(Panic::default());
        }
        Some(taken.propagate(decode(state).unwrap_or(Error::Canceled), done))
    }

    /// Lists `entry` unless the node is done; then hands it back, for the
    /// caller to deal with (and drop) outside the lock.
    pub(crate) fn add_entry(&self, entry: Entry) -> Result<u32, Entry> {
        let mut inner = lock(&self.inner);
        if self.is_done() {
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
        if self.is_done() {
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

/// What a cancellation took out of one node, to notify once unlocked.
struct Taken {
    entries: Slab<Entry>,
    timer: Option<Timer>,
    /// The extras the node held while live (a deadline's cause, tokens).
    old_extra: Option<SharedExtra>,
}

impl Taken {
    /// The locked part of a cancellation: record it and take what must be
    /// notified.
    fn take(inner: &mut Inner, state: &AtomicU8, code: u8, done: Option<SharedExtra>) -> Taken {
        let old_extra = std::mem::replace(&mut inner.extra, done);
        state.store(code, Ordering::Release);
        Taken {
            entries: std::mem::take(&mut inner.entries),
            timer: inner.timer.take(),
            old_extra,
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.timer.is_none() && self.old_extra.is_none()
    }

    /// Phase 1 marks the live descendants done, phase 2 runs what they and
    /// this node were waiting for (see the module docs).
    fn propagate(self, err: Error, done: Option<SharedExtra>) -> Panic {
        let mut nodes: Vec<Arc<CancelNode>> = Vec::new();
        let mut rest: Vec<Taken> = Vec::new();
        collect_children(&self.entries, &mut nodes);
        let mut next = 0;
        while next < nodes.len() {
            let taken = {
                let node = &nodes[next];
                let mut inner = lock(&node.inner);
                // A node done already is completed by whoever cancelled it.
                (!node.is_done())
                    .then(|| Taken::take(&mut inner, &node.state, encode(err), done.clone()))
            };
            next += 1;
            if let Some(taken) = taken {
                collect_children(&taken.entries, &mut nodes);
                if !taken.is_empty() {
                    rest.push(taken);
                }
            }
        }
        let mut panic = Panic::default();
        self.notify(&mut panic);
        for taken in rest {
            taken.notify(&mut panic);
        }
        for node in nodes {
            panic.catch(|| drop(node)); // the last reference may drop values
        }
        panic
    }

    fn notify(self, panic: &mut Panic) {
        let Taken {
            mut entries,
            timer,
            old_extra,
        } = self;
        drop(timer);
        entries.drain(|entry| match entry {
            Entry::Waiter(waker) => panic.catch(|| waker.wake()),
            Entry::AfterFunc(after) => panic.catch(|| after.fire()),
            Entry::Node(_) => {} // a `Weak`: dropping it runs nothing
        });
        if let Some(old) = old_extra {
            #[cfg(feature = "tokio-util")]
            if let Extra::Live(Live {
                token: Some(token), ..
            }) = &*old
            {
                panic.catch(|| token.cancel()); // wakes its waiters: user code
            }
            panic.catch(|| drop(old)); // a deadline cause's `Drop`
        }
    }
}

/// The bridge to tokio-util's `CancellationToken`, both ways.
#[cfg(feature = "tokio-util")]
impl CancelNode {
    /// A token cancelled when this node is done: a child of one token the
    /// node keeps (so a user cancelling theirs cancels nothing else).
    pub(crate) fn cancellation_token(&self) -> tokio_util::sync::CancellationToken {
        use tokio_util::sync::CancellationToken;
        let mut inner = lock(&self.inner);
        if self.is_done() {
            drop(inner);
            let token = CancellationToken::new();
            token.cancel();
            return token;
        }
        let Some(live) = live_mut(&mut inner.extra) else {
            return CancellationToken::new();
        };
        let token = live
            .token
            .get_or_insert_with(CancellationToken::new)
            .clone();
        drop(inner);
        token.child_token()
    }

    /// Cancels this node when `token` is cancelled, without a task: the
    /// token's wait is polled once, here, with a waker that cancels the node,
    /// and kept in the node until the node is done (then dropped, which
    /// deregisters it from the token).
    pub(crate) fn watch_token(self: &Arc<Self>, token: tokio_util::sync::CancellationToken) {
        use std::future::Future;
        let waker = Waker::from(Arc::new(TokenWaker(Arc::downgrade(self))));
        let mut wait = Box::pin(token.cancelled_owned());
        let polled = wait
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        if polled.is_ready() {
            self.token_cancelled();
            return;
        }
        let mut inner = lock(&self.inner);
        let unused = match live_mut(&mut inner.extra) {
            Some(live) if !self.is_done() => live.watch.replace(wait),
            _ => Some(wait),
        };
        drop(inner);
        drop(unused);
    }

    fn token_cancelled(&self) {
        let cause = Cause::new(crate::bridge::TokenCancelled);
        // On the thread that cancelled the token, inside tokio-util: a user
        // panic met here is not that thread's to receive.
        if let Some(panic) = self.cancel_with(CANCELED, |_| Some(cause)) {
            panic.discard();
        }
    }
}

/// Wakes when a watched token is cancelled: cancels the node, if it is still there.
#[cfg(feature = "tokio-util")]
struct TokenWaker(Weak<CancelNode>);

#[cfg(feature = "tokio-util")]
impl std::task::Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(node) = self.0.upgrade() {
            node.token_cancelled();
            // Ours may be the last reference: its drop may run values' `Drop`s.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(node)));
        }
    }
}

/// The live extras, made if missing. `None` cannot happen: live extras are
/// never shared (only a done node's cause is), so the `Arc` is ours.
#[cfg(feature = "tokio-util")]
fn live_mut(extra: &mut Option<SharedExtra>) -> Option<&mut Live> {
    let extra = extra.get_or_insert_with(|| Arc::new(Extra::Live(Live::default())));
    match Arc::get_mut(extra) {
        Some(Extra::Live(live)) => Some(live),
        _ => None,
    }
}

/// The extras of a new live node: only if it has something to hold.
fn live_extra(deadline_cause: Option<Cause>) -> Option<SharedExtra> {
    deadline_cause.map(|cause| {
        Arc::new(Extra::Live(Live {
            deadline_cause: Some(cause),
            #[cfg(feature = "tokio-util")]
            token: None,
            #[cfg(feature = "tokio-util")]
            watch: None,
        }))
    })
}

fn collect_children(entries: &Slab<Entry>, nodes: &mut Vec<Arc<CancelNode>>) {
    entries.for_each(|entry| {
        if let Entry::Node(weak) = entry {
            nodes.extend(weak.upgrade());
        }
    });
}

/// The first panic of user code met during a cancellation, held until the
/// cancellation is complete.
#[derive(Default)]
#[must_use]
pub(crate) struct Panic(Option<Box<dyn Any + Send>>);

impl Panic {
    #[inline]
    fn catch(&mut self, f: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            match self.0 {
                None => self.0 = Some(payload),
                Some(_) => Panic(Some(payload)).discard(),
            }
        }
    }

    /// Passes the panic on to the caller, unless this thread is already
    /// unwinding (a second panic would abort the process).
    #[inline]
    pub(crate) fn resume(self) {
        if self.0.is_some() {
            self.resume_slow();
        }
    }

    #[cold]
    fn resume_slow(self) {
        match self.0 {
            Some(payload) if !std::thread::panicking() => resume_unwind(payload),
            _ => self.discard(),
        }
    }

    /// Drops the panic (the hook has reported it).
    pub(crate) fn discard(self) {
        if let Some(payload) = self.0 {
            // A payload's own `Drop` is user code too.
            let _ = catch_unwind(AssertUnwindSafe(|| drop(payload)));
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
        let _ = catch_unwind(AssertUnwindSafe(move || drop(self)));
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
