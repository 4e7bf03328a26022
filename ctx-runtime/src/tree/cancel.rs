//! A cancellation's two phases (see the module docs of `tree`): mark the
//! subtree done, then notify what it was waiting for; and the [`Panic`] that
//! holds a user's panic until both are complete.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

use super::{CancelNode, ERR, Entry, Extra, INHERITED, Inner, LINKED, encode};
use crate::deadline::Timer;
use crate::error::Error;
use crate::slab::Slab;
use crate::sync::{Ordering, lock};

/// What a cancellation took out of one node, to notify once unlocked.
pub(super) struct Taken {
    entries: Slab<Entry>,
    timer: Option<Timer>,
    /// The extras the node held while live (a deadline's cause, tokens).
    old_extra: Option<Arc<Extra>>,
}

impl Taken {
    /// The locked part of a cancellation, once the state says done: record
    /// why (`done`: the cause, where the cancellation starts) and take what
    /// must be notified.
    pub(super) fn take(inner: &mut Inner, done: Option<Arc<Extra>>) -> Taken {
        Taken {
            old_extra: std::mem::replace(&mut inner.extra, done),
            entries: std::mem::take(&mut inner.entries),
            timer: inner.timer.take(),
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.timer.is_none() && self.old_extra.is_none()
    }

    /// Phase 1 marks the live descendants done, phase 2 runs what they and
    /// this node were waiting for.
    pub(super) fn propagate(self, err: Error) -> Panic {
        if self.is_empty() {
            return Panic::default(); // nothing listed, armed or held
        }
        let code = encode(err) | INHERITED | LINKED;
        let mut nodes: Vec<Arc<CancelNode>> = Vec::new();
        let mut rest: Vec<Taken> = Vec::new();
        collect_children(&self.entries, &mut nodes);
        let mut next = 0;
        while next < nodes.len() {
            let taken = {
                let node = &nodes[next];
                // Linked, so `LINKED` is set. One that never listed anything:
                // one CAS, no lock.
                if node
                    .state
                    .compare_exchange(LINKED, code, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    None
                } else {
                    let mut inner = lock(&node.inner);
                    let state = node.state.load(Ordering::Acquire);
                    // A node done already is completed by whoever cancelled
                    // it; a LISTED one changes state only under this lock.
                    (state & ERR == 0).then(|| {
                        node.state.store(code, Ordering::Release);
                        Taken::take(&mut inner, None)
                    })
                }
            };
            // Marked done (or found so): off the timer thread's queue.
            crate::deadline::disarm(&nodes[next]);
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
            if let Extra::Live(super::Live {
                token: Some(token), ..
            }) = &*old
            {
                panic.catch(|| token.cancel()); // wakes its waiters: user code
            }
            panic.catch(|| drop(old)); // a deadline cause's `Drop`
        }
    }
}

fn collect_children(entries: &Slab<Entry>, nodes: &mut Vec<Arc<CancelNode>>) {
    entries.for_each(|entry| {
        if let Entry::Node(weak) = entry {
            nodes.extend(weak.upgrade());
        }
    });
}

/// Drops `node` on a thread that must not unwind (a timer's, tokio's time
/// driver): if it was the last reference, its drop runs values' `Drop`s.
pub(crate) fn drop_quietly(node: Arc<CancelNode>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(node)));
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
