//! Why a context ended: [`Error`] (Go's `ctx.Err()`) and [`Cause`] (Go's `context.Cause`).

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// Why a context is done: the value of [`Context::err`](crate::Context::err).
///
/// Go has the same two: `context.Canceled` and `context.DeadlineExceeded`.
/// Match on it to tell a user's cancellation from a timeout:
///
/// ```
/// use ctx_runtime::{Context, Error};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel();
/// match ctx.err() {
///     Some(Error::Canceled) => println!("the caller gave up"),
///     Some(Error::DeadlineExceeded) => println!("too slow"),
///     None => println!("still running"),
/// }
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The context was cancelled: its [`CancelHandle`](crate::CancelHandle) was
    /// used or dropped, or an ancestor was cancelled.
    Canceled,
    /// The context's deadline, or an ancestor's, passed.
    DeadlineExceeded,
}

impl Error {
    /// True for [`Error::DeadlineExceeded`], like Go's `Timeout()` method.
    ///
    /// ```
    /// assert!(ctx_runtime::Error::DeadlineExceeded.is_timeout());
    /// assert!(!ctx_runtime::Error::Canceled.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::DeadlineExceeded)
    }

    /// True for [`Error::Canceled`].
    ///
    /// ```
    /// assert!(ctx_runtime::Error::Canceled.is_canceled());
    /// ```
    pub fn is_canceled(&self) -> bool {
        matches!(self, Error::Canceled)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl StdError for Error {}

/// Converts to an I/O error so `?` works in functions returning `io::Result`.
///
/// `DeadlineExceeded` becomes [`ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut);
/// `Canceled` becomes [`ErrorKind::Other`](std::io::ErrorKind::Other), *not*
/// `Interrupted`, because std's `read_exact`/`write_all` silently retry on
/// `Interrupted` and a cancellation must not be retried. The [`Error`] is kept
/// as the inner error, so `io_err.get_ref()` and `downcast` find it.
///
/// ```
/// use std::io;
/// let e: io::Error = ctx_runtime::Error::DeadlineExceeded.into();
/// assert_eq!(e.kind(), io::ErrorKind::TimedOut);
/// assert_eq!(e.to_string(), "context deadline exceeded");
/// ```
impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        let kind = match err {
            Error::Canceled => std::io::ErrorKind::Other,
            Error::DeadlineExceeded => std::io::ErrorKind::TimedOut,
        };
        std::io::Error::new(kind, err)
    }
}

/// The reason a context was cancelled, beyond [`Error`]: Go's `context.Cause`.
///
/// A `Cause` is given to [`CancelHandle::cancel_with_cause`](crate::CancelHandle::cancel_with_cause)
/// or to the `*_cause` deadline constructors and read back with
/// [`Context::cause`](crate::Context::cause). It wraps any error; cloning it is
/// a reference-count bump (or a copy, for the plain [`Error`] causes).
///
/// ```
/// use ctx_runtime::{Cause, Context};
///
/// #[derive(Debug)]
/// struct ClientGone;
/// impl std::fmt::Display for ClientGone {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("client disconnected")
///     }
/// }
/// impl std::error::Error for ClientGone {}
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause(Cause::new(ClientGone));
/// let cause = ctx.cause().unwrap();
/// assert!(cause.is::<ClientGone>());
/// assert_eq!(cause.to_string(), "client disconnected");
///
/// // Strings work too.
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause("shutting down");
/// assert_eq!(ctx.cause().unwrap().to_string(), "shutting down");
/// ```
#[derive(Clone)]
pub struct Cause(Repr);

#[derive(Clone)]
enum Repr {
    // The plain errors need no allocation: most contexts are cancelled without a cause.
    Context(Error),
    Other(Arc<dyn StdError + Send + Sync>),
}

/// The error type behind `Cause::from(&str)` and `Cause::from(String)`.
struct Message(Box<str>);

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

impl Cause {
    /// Wraps any error as a cause.
    ///
    /// ```
    /// let cause = ctx_runtime::Cause::new(std::io::Error::other("upstream reset"));
    /// assert!(cause.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn new<E: StdError + Send + Sync + 'static>(error: E) -> Cause {
        Cause(Repr::Other(Arc::new(error)))
    }

    /// The wrapped error, if it is an `E`.
    ///
    /// ```
    /// use ctx_runtime::{Cause, Error};
    /// let cause = Cause::from(Error::Canceled);
    /// assert_eq!(cause.downcast_ref::<Error>(), Some(&Error::Canceled));
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.as_error().downcast_ref::<E>()
    }

    /// True if the wrapped error is an `E`.
    ///
    /// ```
    /// assert!(ctx_runtime::Cause::from(ctx_runtime::Error::Canceled).is::<ctx_runtime::Error>());
    /// ```
    pub fn is<E: StdError + 'static>(&self) -> bool {
        self.downcast_ref::<E>().is_some()
    }

    /// The wrapped error.
    ///
    /// ```
    /// let cause = ctx_runtime::Cause::from("bye");
    /// assert_eq!(cause.as_error().to_string(), "bye");
    /// ```
    pub fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        match &self.0 {
            Repr::Context(err) => err,
            Repr::Other(err) => &**err,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_error(), f)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cause").field(&self.as_error()).finish()
    }
}

/// `Cause` is transparent: its source is the wrapped error's source.
impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.as_error().source()
    }
}

impl From<Error> for Cause {
    fn from(err: Error) -> Self {
        Cause(Repr::Context(err))
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::new(Message(message.into()))
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause::new(Message(message.into_boxed_str()))
    }
}

impl From<Box<dyn StdError + Send + Sync>> for Cause {
    fn from(error: Box<dyn StdError + Send + Sync>) -> Self {
        Cause(Repr::Other(Arc::from(error)))
    }
}

impl From<Arc<dyn StdError + Send + Sync>> for Cause {
    fn from(error: Arc<dyn StdError + Send + Sync>) -> Self {
        Cause(Repr::Other(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_go() {
        assert_eq!(Error::Canceled.to_string(), "context canceled");
        assert_eq!(
            Error::DeadlineExceeded.to_string(),
            "context deadline exceeded"
        );
    }

    #[test]
    fn io_error_keeps_the_context_error_and_is_not_retryable() {
        let io: std::io::Error = Error::Canceled.into();
        assert_ne!(io.kind(), std::io::ErrorKind::Interrupted);
        let inner = io.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert_eq!(inner, Some(&Error::Canceled));
    }

    #[test]
    fn cause_from_string_displays_and_debugs_the_message() {
        let cause = Cause::from(String::from("client disconnected"));
        assert_eq!(cause.to_string(), "client disconnected");
        assert_eq!(format!("{cause:?}"), "Cause(\"client disconnected\")");
        assert!(!cause.is::<Error>());
    }

    #[test]
    fn cause_source_is_the_inner_source() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let cause = Cause::new(Outer(std::io::Error::other("inner")));
        assert_eq!(
            cause.source().map(|s| s.to_string()).as_deref(),
            Some("inner")
        );
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(Error::DeadlineExceeded);
        assert_eq!(
            Cause::from(boxed).downcast_ref::<Error>(),
            Some(&Error::DeadlineExceeded)
        );
    }
}
