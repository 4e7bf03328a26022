//! The wakers of every [`Group::wait`](super::Group::wait) in progress,
//! behind the one waker that the group's `JoinSet` keeps.
//!
//! A `JoinSet` remembers a single waker: the last one it was polled with.
//! Two waits polling it with their own wakers would steal each other's
//! wake-ups, and handing it a user's waker would clone and drop user code
//! while our lock is held. So the set only ever sees [`Waiters`] as its waker,
//! and waking that wakes every registered wait.
//!
//! The set may wake its waker *while* a wait polls it under the group's lock
//! (tokio's cooperative budget runs out mid-poll): a user's waker must not run
//! then, since it may re-enter the group. A wake that comes while any wait is
//! polling is only noted, and the last poller to leave delivers it, after
//! every lock is released. User code (a waker's clone, wake or drop) never
//! runs under a lock of ours.

use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};

#[derive(Default)]
pub(super) struct Waiters {
    list: Mutex<List>,
}

#[derive(Default)]
struct List {
    /// One entry per registered wait, keyed by its id; taken when woken.
    wakers: Vec<(u64, Waker)>,
    next_id: u64,
    /// Waits polling the task set right now, under the group's lock.
    polling: usize,
    /// A wake came while `polling > 0`: whoever brings `polling` to 0 delivers it.
    missed: bool,
}

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, List> {
        // Nothing panics while the list is locked; a poisoned lock still
        // holds a consistent list.
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place in the list for one wait.
    pub(super) fn waiter(self: &Arc<Self>) -> Waiter {
        let mut list = self.lock();
        let id = list.next_id;
        list.next_id += 1;
        Waiter {
            waiters: Arc::clone(self),
            id,
        }
    }

    fn wake_all(&self) {
        let woken = {
            let mut list = self.lock();
            if list.polling > 0 {
                list.missed = true;
                return;
            }
            mem::take(&mut list.wakers)
        };
        for (_, waker) in woken {
            waker.wake();
        }
    }
}

impl Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_all();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_all();
    }
}

/// One wait's entry in [`Waiters`]; leaves the list when dropped.
pub(super) struct Waiter {
    waiters: Arc<Waiters>,
    id: u64,
}

impl Waiter {
    /// Registers `waker` for the next wake-up and marks this wait as polling
    /// until the returned guard drops. Register before polling the set, so
    /// that a task ending after the poll finds this waker.
    pub(super) fn enter(&self, waker: &Waker) -> Polling<'_> {
        let mut list = self.waiters.lock();
        let current = list
            .wakers
            .iter()
            .any(|(id, w)| *id == self.id && w.will_wake(waker));
        let mut replaced = None;
        if !current {
            drop(list);
            let waker = waker.clone(); // user code: outside the lock
            list = self.waiters.lock();
            match list.wakers.iter_mut().find(|(id, _)| *id == self.id) {
                Some((_, old)) => replaced = Some(mem::replace(old, waker)),
                None => list.wakers.push((self.id, waker)),
            }
        }
        list.polling += 1;
        drop(list);
        drop(replaced); // user code: outside the lock
        Polling {
            waiters: &self.waiters,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let removed = {
            let mut list = self.waiters.lock();
            let at = list.wakers.iter().position(|(id, _)| *id == self.id);
            at.map(|at| list.wakers.swap_remove(at))
        };
        drop(removed); // user code: outside the lock
    }
}

/// A wait polling the task set; delivers the wakes it held back when dropped.
pub(super) struct Polling<'a> {
    waiters: &'a Waiters,
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        let woken = {
            let mut list = self.waiters.lock();
            list.polling -= 1;
            if list.polling > 0 || !mem::take(&mut list.missed) {
                return;
            }
            mem::take(&mut list.wakers)
        };
        for (_, waker) in woken {
            waker.wake();
        }
    }
}
