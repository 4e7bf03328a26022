//! What `#[cancellable]` expands to: the only items its generated code calls,
//! always as `::ctx_runtime::__private::...`. Not public API: no semver guarantees.

pub use crate::context::{AsContext, Context};
pub use crate::done::{Watch, race};
pub use crate::error::Error;
pub use core::time::Duration;

/// The return types a `#[cancellable]` fn may have: `Result<T, E>` whose
/// error can be made from a context [`Error`].
#[diagnostic::on_unimplemented(
    message = "a `#[cancellable]` fn must return `Result<_, E>`, not `{Self}`",
    label = "this must be a `Result` so that cancellation can be returned as an error",
    note = "on cancellation the fn returns `Err(E::from(ctx_runtime::Error::Canceled))`",
    note = "use e.g. `-> Result<{Self}, ctx_runtime::Error>`, or any error type with `From<ctx_runtime::Error>`"
)]
pub trait CancelReturn {
    /// The value returned when the context is done.
    fn from_ctx_error(err: Error) -> Self;
}

impl<T, E: FromContextError> CancelReturn for Result<T, E> {
    #[inline]
    fn from_ctx_error(err: Error) -> Self {
        Err(E::from_context_error(err))
    }
}

/// Error types a cancellation can be converted into.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold a context cancellation: `{Self}: From<ctx_runtime::Error>` is not implemented",
    label = "the error type of a `#[cancellable]` fn must implement `From<ctx_runtime::Error>`",
    note = "add `impl From<ctx_runtime::Error> for {Self}` (or a `#[from] ctx_runtime::Error` variant with thiserror)",
    note = "`ctx_runtime::Error`, `std::io::Error`, `Box<dyn Error + Send + Sync>` and `anyhow::Error` already work"
)]
pub trait FromContextError {
    /// `From::from`.
    fn from_context_error(err: Error) -> Self;
}

#[diagnostic::do_not_recommend]
impl<E: From<Error>> FromContextError for E {
    #[inline]
    fn from_context_error(err: Error) -> Self {
        E::from(err)
    }
}

/// The function that turns a cancellation into `R`; instantiating it once,
/// at the user's return type, is where a bad return type is reported.
#[inline]
pub fn exit_fn<R: CancelReturn>() -> fn(Error) -> R {
    R::from_ctx_error
}

/// `ctx.as_context()`, spanned at the user's `ctx` type so that a
/// non-context type is reported there.
#[inline]
pub fn as_context<C: AsContext + ?Sized>(ctx: &C) -> &Context {
    ctx.as_context()
}
