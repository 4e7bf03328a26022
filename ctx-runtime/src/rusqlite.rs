//! SQLite work under a [`Context`] with rusqlite (feature `rusqlite`): the
//! running statement interrupted, and the open transaction rolled back, when
//! the context ends.
//!
//! rusqlite is synchronous, so a [`Connection`] runs each closure you give
//! to [`call`](Connection::call) on tokio's blocking pool, one at a time.
//! When the call's context ends:
//!
//! * the statement running is interrupted (rusqlite's
//!   [`InterruptHandle`](rusqlite::InterruptHandle)), and a statement started
//!   later fails within a thousand SQLite instructions (a progress handler
//!   watches the context), with `SQLITE_INTERRUPT`;
//! * no transaction commits any more (a commit hook turns `COMMIT` into a
//!   rollback), and a transaction the closure leaves open is rolled back
//!   before the connection runs anything else;
//! * `call` returns the context's error at once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use ctx_runtime::Context;
//! use ctx_runtime::rusqlite::Connection;
//! use std::time::Duration;
//!
//! let db = Connection::open_in_memory().unwrap();
//! let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(50));
//! // Counts to a billion: minutes of work, stopped after 50 ms.
//! let err = db
//!     .call(&ctx, |conn| {
//!         conn.query_row(
//!             "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000)
//!              SELECT count(*) FROM c",
//!             [],
//!             |row| row.get::<_, i64>(0),
//!         )
//!     })
//!     .await
//!     .unwrap_err();
//! assert!(err.is_timeout());
//! // The connection is free again.
//! let one: i64 = db
//!     .call(&Context::background(), |conn| conn.query_row("SELECT 1", [], |row| row.get(0)))
//!     .await
//!     .unwrap();
//! assert_eq!(one, 1);
//! # }
//! ```
//!
//! # A closure that ignores interruption
//!
//! A thread cannot be stopped from outside, so the closure keeps its thread
//! until it returns. `call` does not wait for it: it returns the context's
//! error as soon as the context ends. A closure that carries on (it retries
//! after the interruption error, or computes in Rust between statements)
//! runs to its end on the blocking pool, holding the connection, but it can
//! no longer change the database: each of its statements fails
//! with `SQLITE_INTERRUPT` once it has run a thousand instructions, every
//! commit is turned into a rollback, and a transaction left open is rolled
//! back when it returns. The connection's next `call` waits until then.

use std::fmt;
use std::future::poll_fn;
use std::path::Path;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use rusqlite::ErrorCode;

use crate::Context;

/// How many SQLite virtual-machine instructions run between two looks at the
/// context: a look is one atomic load, a thousand instructions a few microseconds.
const PROGRESS_OPS: i32 = 1000;

/// A SQLite connection whose closures run under a [`Context`]: see
/// [the module documentation](self).
///
/// Cloning it is cheap and shares the connection; calls run one at a time,
/// in the order they get the connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ctx_runtime::rusqlite::Error> {
/// use ctx_runtime::Context;
/// use ctx_runtime::rusqlite::Connection;
///
/// let db = Connection::open_in_memory()?;
/// let ctx = Context::background();
/// db.call(&ctx, |conn| conn.execute_batch("CREATE TABLE t (v INTEGER)")).await?;
/// db.call(&ctx, |conn| conn.execute("INSERT INTO t VALUES (?1)", [7])).await?;
/// let v: i64 = db.call(&ctx, |conn| conn.query_row("SELECT v FROM t", [], |r| r.get(0))).await?;
/// assert_eq!(v, 7);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

struct Shared {
    conn: Mutex<rusqlite::Connection>,
    interrupt: rusqlite::InterruptHandle,
    /// The id of the call whose closure runs now (0: none). The interrupt is
    /// sent under this lock, so that it cannot reach the next call's
    /// statement once this call's closure has returned.
    running: Mutex<u64>,
    next_id: AtomicU64,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let running = *self
            .shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Connection")
            .field("busy", &(running != 0))
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Wraps an open connection.
    ///
    /// ```
    /// let conn = rusqlite::Connection::open_in_memory().unwrap();
    /// conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    /// let db = ctx_runtime::rusqlite::Connection::new(conn);
    /// ```
    pub fn new(conn: rusqlite::Connection) -> Connection {
        let interrupt = conn.get_interrupt_handle();
        Connection {
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                interrupt,
                running: Mutex::new(0),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Opens the database file at `path` ([`rusqlite::Connection::open`]).
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("ctx-doc-{}.db", std::process::id()));
    /// let db = ctx_runtime::rusqlite::Connection::open(&dir).unwrap();
    /// # drop(db); std::fs::remove_file(dir).unwrap();
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Connection, Error> {
        Ok(Connection::new(rusqlite::Connection::open(path)?))
    }

    /// Opens a new in-memory database ([`rusqlite::Connection::open_in_memory`]).
    ///
    /// ```
    /// let db = ctx_runtime::rusqlite::Connection::open_in_memory().unwrap();
    /// ```
    pub fn open_in_memory() -> Result<Connection, Error> {
        Ok(Connection::new(rusqlite::Connection::open_in_memory()?))
    }

    /// Runs `f` on the connection, on tokio's blocking pool, under `ctx`.
    ///
    /// * If `ctx` is already done, or ends while the call waits for the
    ///   connection, `f` never runs.
    /// * If `ctx` ends while `f` runs, its statement is interrupted, nothing
    ///   commits, the transaction it left open is rolled back, and `call`
    ///   returns the context's error without waiting for `f` to return.
    /// * Otherwise, `f`'s result. An error of `f` caused by the context
    ///   ending (interrupted, commit refused) is reported as the context's
    ///   error.
    ///
    /// A panic in `f` is resumed in the caller.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error};
    /// use ctx_runtime::rusqlite::Connection;
    ///
    /// let db = Connection::open_in_memory().unwrap();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// let err = db.call(&ctx, |conn| conn.execute_batch("CREATE TABLE t (v)")).await.unwrap_err();
    /// assert_eq!(err.context_error(), Some(Error::Canceled));
    /// # }
    /// ```
    pub async fn call<F, R>(&self, ctx: &Context, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        ctx.check()?;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&self.shared);
        let job_ctx = ctx.clone();
        let mut job = tokio::task::spawn_blocking(move || shared.run(id, &job_ctx, f));
        let mut done = pin!(ctx.done());
        let first = poll_fn(|cx| {
            if let Poll::Ready(joined) = Pin::new(&mut job).poll(cx) {
                return Poll::Ready(Ok(joined));
            }
            done.as_mut().poll(cx).map(Err)
        })
        .await;
        match first {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => match join.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // The runtime is shutting down: the call did not run.
                Err(_) => Err(crate::Error::Canceled.into()),
            },
            Err(ctx_err) => {
                self.shared.interrupt(id);
                Err(ctx_err.into())
            }
        }
    }

    /// Runs `f` on the connection on *this* thread, under `ctx`: for
    /// synchronous code (a plain thread, a blocking task, a test's setup).
    ///
    /// The same rules as [`call`](Self::call), except that nothing can
    /// return early: it waits for the connection, then for `f`. A statement
    /// of `f` still fails within a thousand SQLite instructions once `ctx`
    /// ends, commits are refused, and the transaction left open is rolled
    /// back.
    ///
    /// ```
    /// use ctx_runtime::Context;
    /// use ctx_runtime::rusqlite::Connection;
    ///
    /// let db = Connection::open_in_memory().unwrap();
    /// let n: i64 = db
    ///     .call_blocking(&Context::background(), |conn| conn.query_row("SELECT 6 * 7", [], |r| r.get(0)))
    ///     .unwrap();
    /// assert_eq!(n, 42);
    /// ```
    pub fn call_blocking<F, R>(&self, ctx: &Context, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<R>,
    {
        ctx.check()?;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.run(id, ctx, f)
    }
}

impl Shared {
    fn interrupt(&self, id: u64) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if *running == id {
            self.interrupt.interrupt();
        }
    }

    /// The blocking half of [`Connection::call`].
    fn run<F, R>(&self, id: u64, ctx: &Context, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<R>,
    {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        // Waiting for the connection may have outlasted the context.
        ctx.check()?;
        let result = {
            let _running = Running::enter(self, id);
            watch(&mut conn, Some(ctx));
            let result = f(&mut conn);
            watch(&mut conn, None);
            result
        };
        let Some(ctx_err) = ctx.err() else {
            return Ok(result?);
        };
        let rolled_back = !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_ok();
        match result {
            Ok(_) if rolled_back => Err(ctx_err.into()),
            Ok(value) => Ok(value),
            Err(err) if stopped_by_context(&err) => Err(ctx_err.into()),
            Err(err) => Err(err.into()),
        }
    }
}

/// Marks a call's closure as the one running, until dropped.
struct Running<'a>(&'a Shared);

impl<'a> Running<'a> {
    fn enter(shared: &'a Shared, id: u64) -> Running<'a> {
        *shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = id;
        Running(shared)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self
            .0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = 0;
    }
}

/// Installs (or, with `None`, removes) the progress handler that interrupts
/// statements and the commit hook that refuses commits once `ctx` is done.
fn watch(conn: &mut rusqlite::Connection, ctx: Option<&Context>) {
    // Neither registration can fail (they only store the callback).
    match ctx {
        Some(ctx) => {
            let progress = ctx.clone();
            let _ = conn.progress_handler(PROGRESS_OPS, Some(move || progress.is_done()));
            let commit = ctx.clone();
            let _ = conn.commit_hook(Some(move || commit.is_done()));
        }
        None => {
            let _ = conn.progress_handler(0, None::<fn() -> bool>);
            let _ = conn.commit_hook(None::<fn() -> bool>);
        }
    }
}

/// Interrupted, or a commit refused by our commit hook.
fn stopped_by_context(err: &rusqlite::Error) -> bool {
    match err.sqlite_error() {
        Some(e) => {
            e.code == ErrorCode::OperationInterrupted
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_COMMITHOOK
        }
        None => false,
    }
}

/// Why [`Connection::call`] failed: its context ended, or SQLite (or the
/// closure) failed.
///
/// A transparent wrapper, like `ctx_runtime::postgres::Error`: its
/// `Display` is the wrapped error's, its `source()` the wrapped error's source.
///
/// ```
/// use ctx_runtime::rusqlite::Error;
///
/// let err = Error::from(ctx_runtime::Error::DeadlineExceeded);
/// assert!(err.is_timeout());
/// assert_eq!(err.to_string(), "context deadline exceeded");
/// let err = Error::from(rusqlite::Error::QueryReturnedNoRows);
/// assert!(err.context_error().is_none());
/// assert!(matches!(err.as_sqlite(), Some(rusqlite::Error::QueryReturnedNoRows)));
/// ```
#[derive(Debug)]
pub struct Error(Repr);

#[derive(Debug)]
enum Repr {
    Context(crate::Error),
    Sqlite(rusqlite::Error),
}

impl Error {
    /// The context's error, if that is why the call failed.
    ///
    /// ```
    /// let err = ctx_runtime::rusqlite::Error::from(ctx_runtime::Error::Canceled);
    /// assert_eq!(err.context_error(), Some(ctx_runtime::Error::Canceled));
    /// ```
    pub fn context_error(&self) -> Option<crate::Error> {
        match &self.0 {
            Repr::Context(err) => Some(*err),
            Repr::Sqlite(_) => None,
        }
    }

    /// True if the call's context passed its deadline.
    ///
    /// ```
    /// let err = ctx_runtime::rusqlite::Error::from(ctx_runtime::Error::Canceled);
    /// assert!(!err.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.context_error().is_some_and(|err| err.is_timeout())
    }

    /// rusqlite's error, if that is why the call failed.
    ///
    /// ```
    /// let err = ctx_runtime::rusqlite::Error::from(rusqlite::Error::InvalidQuery);
    /// assert!(err.as_sqlite().is_some());
    /// ```
    pub fn as_sqlite(&self) -> Option<&rusqlite::Error> {
        match &self.0 {
            Repr::Context(_) => None,
            Repr::Sqlite(err) => Some(err),
        }
    }

    /// rusqlite's error, or `self` back if the context ended.
    ///
    /// ```
    /// let err = ctx_runtime::rusqlite::Error::from(rusqlite::Error::InvalidQuery);
    /// assert!(matches!(err.into_sqlite(), Ok(rusqlite::Error::InvalidQuery)));
    /// ```
    pub fn into_sqlite(self) -> Result<rusqlite::Error, Error> {
        match self.0 {
            Repr::Sqlite(err) => Ok(err),
            Repr::Context(_) => Err(self),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Context(err) => fmt::Display::fmt(err, f),
            Repr::Sqlite(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Repr::Context(_) => None,
            Repr::Sqlite(err) => std::error::Error::source(err),
        }
    }
}

impl From<crate::Error> for Error {
    fn from(err: crate::Error) -> Self {
        Error(Repr::Context(err))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error(Repr::Sqlite(err))
    }
}
