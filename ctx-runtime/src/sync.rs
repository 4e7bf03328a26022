//! The synchronisation primitives the runtime is built on, in one place so that
//! `--cfg ctx_loom` can swap them for loom's model-checked versions.
//!
//! The cfg is `ctx_loom`, not the customary `loom`, because a global
//! `--cfg loom` also reaches tokio, which then fails to build.
//!
//! Only the primitives whose interleavings matter are swapped: the node locks and
//! the state atomics. `Arc`/`Weak` stay std's (loom's `Arc` has no `Weak`), which
//! is sound: their reference counts are not part of our protocol.

#[cfg(ctx_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicU32, Ordering};
#[cfg(ctx_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// loom's `AtomicWaker`, with the `register(&Waker)` of the `atomic-waker` crate.
#[cfg(ctx_loom)]
#[derive(Default)]
pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

#[cfg(ctx_loom)]
impl AtomicWaker {
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.0.register_by_ref(waker);
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}

#[cfg(ctx_loom)]
impl std::fmt::Debug for AtomicWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtomicWaker")
    }
}

#[cfg(not(ctx_loom))]
pub(crate) use atomic_waker::AtomicWaker;
#[cfg(not(ctx_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
#[cfg(not(ctx_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poison.
///
/// No code of ours panics while holding a lock; a panic inside user code (a
/// `Waker`'s drop, say) must not turn every later `cancel()` into a panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` on a thread of its own.
#[cfg(not(ctx_loom))]
pub(crate) fn spawn_thread<F: FnOnce() + Send + 'static>(name: &str, f: F) -> bool {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .is_ok()
}

/// Under loom, runs `f` inline: a model can then check its effects once the
/// cancelling thread is joined. Whether `f` runs is decided before this call,
/// by the compare-and-swap that the models exercise.
#[cfg(ctx_loom)]
pub(crate) fn spawn_thread<F: FnOnce() + Send + 'static>(_name: &str, f: F) -> bool {
    f();
    true
}

/// A handle to unpark the current thread (std's, or loom's under loom).
#[derive(Clone, Debug)]
pub(crate) struct Parker(
    #[cfg(not(ctx_loom))] std::thread::Thread,
    #[cfg(ctx_loom)] loom::thread::Thread,
);

impl Parker {
    pub(crate) fn current() -> Self {
        #[cfg(not(ctx_loom))]
        return Parker(std::thread::current());
        #[cfg(ctx_loom)]
        return Parker(loom::thread::current());
    }

    pub(crate) fn unpark(&self) {
        self.0.unpark();
    }
}

/// Parks the current thread until unparked or `deadline` (`None`: no
/// deadline). Returns false once the deadline has passed. May return early
/// (spurious wake-ups), like `std::thread::park`.
pub(crate) fn park_until(deadline: Option<std::time::Instant>) -> bool {
    let left = match deadline {
        None => None,
        Some(at) => match at.checked_duration_since(std::time::Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return false,
        },
    };
    #[cfg(not(ctx_loom))]
    match left {
        None => std::thread::park(),
        Some(left) => std::thread::park_timeout(left),
    }
    // loom has no `park_timeout`: a timed wait yields instead (the models
    // wait without a timeout).
    #[cfg(ctx_loom)]
    match left {
        None => loom::thread::park(),
        Some(_) => loom::thread::yield_now(),
    }
    true
}
