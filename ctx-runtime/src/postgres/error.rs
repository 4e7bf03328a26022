//! The one error type of the `postgres` module.

use std::error::Error as StdError;
use std::fmt;

use tokio_postgres::error::SqlState;

/// Why a call of [`ClientExt`](super::ClientExt) or
/// [`Transaction`](super::Transaction) failed: its context ended, or the
/// database (or the connection to it) failed.
///
/// It is a transparent wrapper: `Display` shows the context's error
/// (`context canceled`) or tokio-postgres's, and `source()` is that error's
/// own source, so an error chain prints each message once.
///
/// ```
/// use ctx_runtime::postgres::Error;
///
/// let err = Error::from(ctx_runtime::Error::DeadlineExceeded);
/// assert_eq!(err.to_string(), "context deadline exceeded");
/// assert_eq!(err.context_error(), Some(ctx_runtime::Error::DeadlineExceeded));
/// assert!(err.is_timeout());
/// assert!(err.as_postgres().is_none());
/// ```
#[derive(Debug)]
pub struct Error(Repr);

#[derive(Debug)]
enum Repr {
    Context(crate::Error),
    Db(tokio_postgres::Error),
}

impl Error {
    /// The context's error, if the call failed because its context ended
    /// (before the call was sent, or while the server ran it: then the
    /// statement was cancelled on the server).
    ///
    /// ```
    /// use ctx_runtime::postgres::Error;
    ///
    /// let err = Error::from(ctx_runtime::Error::Canceled);
    /// assert!(err.context_error().is_some_and(|e| e.is_canceled()));
    /// ```
    pub fn context_error(&self) -> Option<crate::Error> {
        match &self.0 {
            Repr::Context(err) => Some(*err),
            Repr::Db(_) => None,
        }
    }

    /// True if the call's context passed its deadline
    /// ([`DeadlineExceeded`](crate::Error::DeadlineExceeded)). A server-side
    /// `statement_timeout` is a database error, not this.
    ///
    /// ```
    /// use ctx_runtime::postgres::Error;
    ///
    /// assert!(Error::from(ctx_runtime::Error::DeadlineExceeded).is_timeout());
    /// assert!(!Error::from(ctx_runtime::Error::Canceled).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.context_error().is_some_and(|err| err.is_timeout())
    }

    /// The database's error, if that is why the call failed.
    ///
    /// ```no_run
    /// # async fn f(client: &tokio_postgres::Client) {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::postgres::ClientExt;
    /// use tokio_postgres::error::SqlState;
    ///
    /// let ctx = Context::background();
    /// let err = client.execute_ctx(&ctx, "INSERT INTO t VALUES (1)", &[]).await.unwrap_err();
    /// if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
    ///     println!("already there: {}", err.as_postgres().unwrap());
    /// }
    /// # }
    /// ```
    pub fn as_postgres(&self) -> Option<&tokio_postgres::Error> {
        match &self.0 {
            Repr::Context(_) => None,
            Repr::Db(err) => Some(err),
        }
    }

    /// The database's error, or `self` back if the context ended.
    ///
    /// ```
    /// use ctx_runtime::postgres::Error;
    ///
    /// let err = Error::from(ctx_runtime::Error::Canceled);
    /// assert!(err.into_postgres().is_err());
    /// ```
    pub fn into_postgres(self) -> Result<tokio_postgres::Error, Error> {
        match self.0 {
            Repr::Db(err) => Ok(err),
            Repr::Context(_) => Err(self),
        }
    }

    /// The SQLSTATE of a database error (`None` for a context error, or a
    /// connection failure).
    ///
    /// ```
    /// use ctx_runtime::postgres::Error;
    ///
    /// assert_eq!(Error::from(ctx_runtime::Error::Canceled).code(), None);
    /// ```
    pub fn code(&self) -> Option<&SqlState> {
        self.as_postgres().and_then(tokio_postgres::Error::code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Context(err) => fmt::Display::fmt(err, f),
            Repr::Db(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.0 {
            Repr::Context(_) => None,
            Repr::Db(err) => err.source(),
        }
    }
}

impl From<crate::Error> for Error {
    fn from(err: crate::Error) -> Self {
        Error(Repr::Context(err))
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        Error(Repr::Db(err))
    }
}
