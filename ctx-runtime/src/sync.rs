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
