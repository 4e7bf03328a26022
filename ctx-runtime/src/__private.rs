//! What `#[cancellable]` expands to: the only items its generated code calls,
//! always as `::ctx_runtime::__private::...`. Not public API: no semver guarantees.
//!
//! The checks of a signature are trait paths (`<R as CancelReturn>::exit`,
//! `FromContextError::FROM`, `IsContext::context(&ctx)`), not calls of
//! functions with bounds, so that a wrong type is reported once, at the
//! user's type, in the words of `on_unimplemented`, without a "required by a
//! bound in ..." note that sends the reader into this module.

pub use crate::context::{AsContext, Context};
pub use crate::done::{Watch, race};
pub use crate::error::Error;
pub use core::time::Duration;

use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::{Context as TaskContext, Poll};
use futures_core::future::FusedFuture;

/// The return types a `#[cancellable]` fn may have: `Result<T, E>`. Whether
/// `E` can hold a cancellation is [`FromContextError`]'s question, asked apart
/// so that each mistake gets its own message, once.
#[diagnostic::on_unimplemented(
    message = "a `#[cancellable]` fn must return a `Result`, not `{Self}`",
    label = "this must be a `Result<T, E>` so that a cancellation can be returned as an error",
    note = "a `#[cancellable]` fn takes its context first, named `ctx`, and returns `Err(E::from(ctx_runtime::Error::Canceled))` when `ctx` is cancelled",
    note = "return e.g. `Result<{Self}, ctx_runtime::Error>`, or a `Result` whose error type implements `From<ctx_runtime::Error>`"
)]
pub trait CancelReturn: Sized {
    /// `E` of `Result<T, E>`.
    type Err;

    /// `Err`, as a value: a wrong return type is reported once, at the
    /// path, and leaves nothing for the early returns to report again.
    const WRAP: fn(Self::Err) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T, E> CancelReturn for Result<T, E> {
    type Err = E;

    const WRAP: fn(E) -> Self = Err;
}

/// The early return of a cancelled call: `wrap(from(err))` (`Err(E::from(err))`),
/// and, with the `tracing` feature, a `debug` event naming `function`.
#[cold]
#[inline(never)]
pub fn exit<R, E>(wrap: fn(E) -> R, from: fn(Error) -> E, function: &'static str, err: Error) -> R {
    on_cancel(function, &err);
    wrap(from(err))
}

/// The checks of `exit`'s arguments alone, for an item emitted unchanged
/// next to other errors.
#[inline]
pub fn check<R, E>(wrap: fn(E) -> R, from: fn(Error) -> E) {
    let _ = (wrap, from);
}

/// Error types a cancellation can be converted into.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold a context cancellation: `{Self}: From<ctx_runtime::Error>` is not implemented",
    label = "the error type of a `#[cancellable]` fn must implement `From<ctx_runtime::Error>`",
    note = "use an error type of your own with `impl From<ctx_runtime::Error>` (a `#[from] ctx_runtime::Error` variant with thiserror), or `ctx_runtime::Error`, `std::io::Error`, `Box<dyn std::error::Error + Send + Sync>` or `anyhow::Error`, which already work",
    note = "a type of another crate (`String`, `&str`, ...) cannot be given that impl in yours: wrap it in an error type of your own"
)]
pub trait FromContextError: Sized {
    /// `From::from`, as a value: a wrong error type is reported once, at
    /// the path, and leaves nothing for the early returns to report again.
    const FROM: fn(Error) -> Self;
}

#[diagnostic::do_not_recommend]
impl<E: From<Error>> FromContextError for E {
    const FROM: fn(Error) -> Self = E::from;
}

/// Types `ctx` may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a context",
    label = "expected `Context`, `&Context` or a type implementing `AsContext`",
    note = "a `#[cancellable]` fn takes its context first, named `ctx`: `ctx: &Context` (or `ctx: Context`)",
    note = "to pass your own type as `ctx`, implement `ctx_runtime::AsContext` for it"
)]
pub trait IsContext {
    /// `AsContext::as_context`.
    fn context(&self) -> &Context;
}

#[diagnostic::do_not_recommend]
impl<C: AsContext + ?Sized> IsContext for C {
    #[inline]
    fn context(&self) -> &Context {
        self.as_context()
    }
}

/// Called on every early return of a `#[cancellable]` fn. With the
/// `tracing` feature, a `debug` event (target `ctx_runtime::cancellable`)
/// with the fn's path and the error; without it, nothing at all.
#[cfg(feature = "tracing")]
#[cold]
#[inline(never)]
pub fn on_cancel(function: &'static str, err: &Error) {
    tracing::debug!(
        target: "ctx_runtime::cancellable",
        function,
        error = %err,
        "{function} returned early: {err}"
    );
}

/// Called on every early return of a `#[cancellable]` fn: nothing without
/// the `tracing` feature.
#[cfg(not(feature = "tracing"))]
#[inline(always)]
pub fn on_cancel(function: &'static str, err: &Error) {
    let _ = (function, err);
}

/// The shared state of one `select!` that `#[cancellable]` raced: how many
/// of the user's branches are still live. The watch branch it adds gives up
/// (resolves to `None` under tokio, is terminated under futures) once none
/// is, so that `else =>` / `complete =>` run, or the macro panics, exactly
/// as they would without it.
///
/// Polled on one task only, so plain loads and stores suffice; atomics only
/// make it `Sync`, so that a fn holding `&Select` across the select's await
/// stays `Send`.
#[derive(Debug)]
pub struct Select {
    live: AtomicU32,
}

impl Select {
    /// A select with `unconditional` branches that have no `if` precondition.
    #[inline]
    pub const fn new(unconditional: u32) -> Select {
        Select {
            live: AtomicU32::new(unconditional),
        }
    }

    /// A tokio precondition, evaluated once (by tokio, in its order), that
    /// counts its branch as live when true.
    #[inline]
    pub fn enable(&self, precondition: bool) -> bool {
        if precondition {
            self.add();
        }
        precondition
    }

    #[inline]
    fn add(&self) {
        let live = self.live.load(Ordering::Relaxed);
        self.live.store(live.saturating_add(1), Ordering::Relaxed);
    }

    /// One branch is out; true if it was the last.
    #[inline]
    fn remove(&self) -> bool {
        let live = self.live.load(Ordering::Relaxed).saturating_sub(1);
        self.live.store(live, Ordering::Relaxed);
        live == 0
    }

    #[inline]
    fn none_live(&self) -> bool {
        self.live.load(Ordering::Relaxed) == 0
    }
}

/// Polls `watch` for cancellation without a future of its own: ready with
/// the error once the context is done, and otherwise registered (once per
/// call of the fn, as every raced await) to be woken then.
#[inline]
fn poll_done(watch: &mut Watch, cx: &mut TaskContext<'_>) -> Poll<Error> {
    let mut never = core::future::pending::<core::convert::Infallible>();
    match watch.poll_race(Pin::new(&mut never), cx) {
        Poll::Ready(Err(err)) => Poll::Ready(err),
        Poll::Ready(Ok(never)) => match never {},
        Poll::Pending => Poll::Pending,
    }
}

/// The branch `#[cancellable]` adds to a `tokio::select!`:
/// `Some(err) = select_watch(..) => return Err(..)`.
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct SelectWatch<'a> {
    watch: &'a mut Watch,
    select: &'a Select,
}

/// The watch branch of a `tokio::select!` over `watch`'s context.
#[inline]
pub fn select_watch<'a>(watch: &'a mut Watch, select: &'a Select) -> SelectWatch<'a> {
    SelectWatch { watch, select }
}

impl Future for SelectWatch<'_> {
    type Output = Option<Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Error>> {
        let this = self.get_mut();
        if let Err(err) = this.watch.check() {
            return Poll::Ready(Some(err));
        }
        // Every enabled branch completed without matching its pattern: the
        // select would now run `else` (or panic); `None` fails the watch's
        // pattern, which disables it, and lets it.
        if this.select.none_live() {
            return Poll::Ready(None);
        }
        poll_done(this.watch, cx).map(Some)
    }
}

pin_project_lite::pin_project! {
    /// A user's branch of a raced `tokio::select!`: the future as it was,
    /// which also tells the select's watch when it completed without
    /// matching its pattern.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct SelectBranch<'a, F, P> {
        select: &'a Select,
        matches: P,
        #[pin]
        fut: F,
    }
}

/// Wraps the future of a `tokio::select!` branch; `matches` tests its
/// output against the branch's pattern.
#[inline]
pub fn select_branch<F, P>(
    select: &Select,
    fut: F,
    matches: P,
) -> SelectBranch<'_, F::IntoFuture, P>
where
    F: IntoFuture,
    P: FnMut(&F::Output) -> bool,
{
    SelectBranch {
        select,
        matches,
        fut: fut.into_future(),
    }
}

impl<F: Future, P: FnMut(&F::Output) -> bool> Future for SelectBranch<'_, F, P> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = core::task::ready!(this.fut.poll(cx));
        // A match ends the select; only a mismatch can leave the watch as
        // the last branch, and the watch may already have been polled in
        // this pass: poll the select once more, so that it sees it.
        if !(this.matches)(&out) && this.select.remove() {
            cx.waker().wake_by_ref();
        }
        Poll::Ready(out)
    }
}

/// The branch `#[cancellable]` adds to a `futures::select!` or
/// `select_biased!`: `err = fused_watch(..) => return Err(..)`.
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct FusedWatch<'a> {
    watch: &'a mut Watch,
    select: &'a Select,
    register: bool,
}

/// The watch branch of a futures select over `watch`'s context. `register`
/// is false under `default =>`, whose single poll uses a no-op waker.
#[inline]
pub fn fused_watch<'a>(watch: &'a mut Watch, select: &'a Select, register: bool) -> FusedWatch<'a> {
    FusedWatch {
        watch,
        select,
        register,
    }
}

impl Future for FusedWatch<'_> {
    type Output = Error;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let this = self.get_mut();
        if this.register {
            poll_done(this.watch, cx)
        } else {
            match this.watch.check() {
                Err(err) => Poll::Ready(err),
                Ok(()) => Poll::Pending,
            }
        }
    }
}

impl FusedFuture for FusedWatch<'_> {
    /// Terminated once every user future is (so that `complete =>` runs, or
    /// the macro panics, as without the watch), unless the context is done.
    #[inline]
    fn is_terminated(&self) -> bool {
        self.select.none_live() && self.watch.check().is_ok()
    }
}

pin_project_lite::pin_project! {
    /// A user's branch of a raced futures select: the future as it was,
    /// counted as live by the select's watch unless it was terminated when
    /// the select began.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct FusedBranch<F> {
        #[pin]
        fut: F,
    }
}

/// Wraps the future of a futures select branch. (A branch completes only by
/// ending the select, so the count is never lowered.)
#[inline]
pub fn fused_branch<F>(select: &Select, fut: F) -> FusedBranch<F::IntoFuture>
where
    F: IntoFuture,
    F::IntoFuture: FusedFuture,
{
    let fut = fut.into_future();
    if !fut.is_terminated() {
        select.add();
    }
    FusedBranch { fut }
}

impl<F: Future> Future for FusedBranch<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.project().fut.poll(cx)
    }
}

impl<F: FusedFuture> FusedFuture for FusedBranch<F> {
    #[inline]
    fn is_terminated(&self) -> bool {
        self.fut.is_terminated()
    }
}

/// What `#[cancellable]` warns about: an `.await` (or a `select!`/`join!`)
/// it does not race against `ctx`. Stable Rust has no warnings of its own
/// for procedural macros: each is the use of one of these deprecated items,
/// spanned at the user's `.await`. `#[cancellable(allow_unraced)]` on the fn
/// silences them.
pub mod unraced {
    /// An `.await` in an `async` block not awaited where it is written.
    #[deprecated(
        note = "this `.await` is not raced against `ctx`: it is in an `async` block that is not awaited where it is written, which `#[cancellable]` leaves alone; await the block where it is written, race it with `ctx.run(fut).await?`, or run it as a task with `ctx_runtime::spawn(&ctx, |ctx| async move { .. })`; `#[cancellable(allow_unraced)]` silences this"
    )]
    pub const fn in_an_async_block() {}

    /// An `.await` in a closure.
    #[deprecated(
        note = "this `.await` is not raced against `ctx`: it is in a closure, which `#[cancellable]` leaves alone (a `return` there would leave the closure, not the fn); race the future with `ctx.run(fut).await?`, or make the closure's work a `#[cancellable]` fn that takes `ctx`; `#[cancellable(allow_unraced)]` silences this"
    )]
    pub const fn in_a_closure() {}

    /// An `.await` in a task spawned on its own.
    #[deprecated(
        note = "this `.await` is not raced against `ctx`: it is in a spawned task, which runs on when the fn returns; spawn it under the context with `ctx_runtime::spawn(&ctx, |ctx| async move { .. })` (dropping its handle cancels it), or race the future with `ctx.run(fut).await?`; `#[cancellable(allow_unraced)]` silences this"
    )]
    pub const fn in_a_spawned_task() {}

    /// An `.await` inside a macro whose input `#[cancellable]` cannot read.
    #[deprecated(
        note = "this `.await` is not raced against `ctx`: it is inside a macro whose input `#[cancellable]` cannot read (braces, or not a list of expressions); race the future with `ctx.run(fut).await?`, or move the await out of the macro; `#[cancellable(allow_unraced)]` silences this"
    )]
    pub const fn in_a_macro() {}

    /// An `.await` in the future of a `biased;` select branch.
    #[deprecated(
        note = "this `.await` is not raced against `ctx`: it is in the future expression of a branch of a `biased;` `select!`, where `#[cancellable]`'s own branch already watches `ctx`; await it into a variable before the `select!`; `#[cancellable(allow_unraced)]` silences this"
    )]
    pub const fn in_a_biased_select_future() {}

    /// A `select!` or `join!` in an `async` block, a closure or a task.
    #[deprecated(
        note = "this `select!`/`join!` is not raced against `ctx`: it is in an `async` block not awaited where it is written, a closure or a spawned task, which `#[cancellable]` leaves alone; race the block with `ctx.run(fut).await?`, or add a branch `err = ctx.done() => return Err(err.into())`; `#[cancellable(allow_unraced)]` silences this"
    )]
    pub const fn select_or_join_not_raced() {}

    /// A `select!`-like macro `#[cancellable]` does not know.
    #[deprecated(
        note = "this `select!` is not raced against `ctx`: `#[cancellable]` races `tokio::select!`, `futures::select!` and `futures::select_biased!` (and a bare `select!` read as tokio's), and could not read this one; add a branch `err = ctx.done() => return Err(err.into())`; `#[cancellable(allow_unraced)]` silences this"
    )]
    pub const fn unknown_select() {}
}
