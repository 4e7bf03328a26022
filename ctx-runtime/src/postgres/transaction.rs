//! A transaction bound to the context it was begun with: Go's `BeginTx`.

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, ToStatement};

use super::Error;
use super::stop::{Canceller, GRACE, first, is_cancel, settle, stop};
use crate::Context;

/// A transaction that keeps the context it was begun with, from
/// [`ClientExt::transaction_ctx`](super::ClientExt::transaction_ctx): Go's
/// `db.BeginTx(ctx, nil)`.
///
/// Its statements take the same arguments as tokio-postgres's
/// [`Transaction`](tokio_postgres::Transaction) and are raced against that
/// context. When the context ends:
///
/// * during a statement: the statement is cancelled on the server, the
///   transaction rolled back, and the call returns the context's error
///   (even if the statement had finished: its effects are rolled back);
/// * between statements: the next statement, or [`commit`](Self::commit),
///   rolls back and returns the context's error without sending anything
///   else. An idle transaction has no task of its own to roll it back at
///   the very moment the context ends: it holds its locks until the next
///   call on it, or until it is dropped (which rolls back, as tokio-postgres
///   does).
///
/// ```no_run
/// # async fn f(client: &mut tokio_postgres::Client, ctx: &ctx_runtime::Context)
/// # -> Result<(), ctx_runtime::postgres::Error> {
/// use ctx_runtime::postgres::ClientExt;
///
/// let tx = client.transaction_ctx(ctx).await?;
/// tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = 1", &[&10i64]).await?;
/// tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = 2", &[&10i64]).await?;
/// tx.commit().await?; // the context's error, and nothing committed, if ctx has ended
/// # Ok(()) }
/// ```
pub struct Transaction<'a> {
    inner: tokio_postgres::Transaction<'a>,
    ctx: Context,
    cancel: Canceller,
    /// Set once a `ROLLBACK` has been sent for this transaction.
    rolled_back: AtomicBool,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("ctx", &self.ctx)
            .field("rolled_back", &self.rolled_back.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<'a> Transaction<'a> {
    pub(super) fn new(
        inner: tokio_postgres::Transaction<'a>,
        ctx: Context,
        cancel: Canceller,
    ) -> Self {
        Transaction {
            inner,
            ctx,
            cancel,
            rolled_back: AtomicBool::new(false),
        }
    }

    /// The context this transaction was begun with.
    ///
    /// ```no_run
    /// # async fn f(client: &mut tokio_postgres::Client) -> Result<(), ctx_runtime::postgres::Error> {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// let ctx = Context::background();
    /// let tx = client.transaction_ctx(&ctx).await?;
    /// assert!(tx.ctx().same(&ctx));
    /// # Ok(()) }
    /// ```
    pub fn ctx(&self) -> &Context {
        &self.ctx
    }

    /// tokio-postgres's transaction, for what this type does not wrap
    /// (`prepare`, `copy_in`, `savepoint`, ...). Calls made through it are
    /// not raced against the context.
    ///
    /// ```no_run
    /// # async fn f(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// let ctx = Context::background();
    /// let tx = client.transaction_ctx(&ctx).await?;
    /// let insert = tx.as_inner().prepare("INSERT INTO t (v) VALUES ($1)").await?;
    /// tx.execute(&insert, &[&1i32]).await?; // raced against ctx
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub fn as_inner(&self) -> &tokio_postgres::Transaction<'a> {
        &self.inner
    }

    /// [`tokio_postgres::Transaction::query`] under the transaction's context.
    ///
    /// ```no_run
    /// # async fn f(tx: &ctx_runtime::postgres::Transaction<'_>) -> Result<(), ctx_runtime::postgres::Error> {
    /// let rows = tx.query("SELECT id FROM jobs WHERE state = $1 FOR UPDATE", &[&"queued"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.run(self.inner.query(statement, params)).await
    }

    /// [`tokio_postgres::Transaction::query_one`] under the transaction's context.
    ///
    /// ```no_run
    /// # async fn f(tx: &ctx_runtime::postgres::Transaction<'_>) -> Result<(), ctx_runtime::postgres::Error> {
    /// let row = tx.query_one("SELECT count(*) FROM jobs", &[]).await?;
    /// let n: i64 = row.get(0);
    /// # Ok(()) }
    /// ```
    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.run(self.inner.query_one(statement, params)).await
    }

    /// [`tokio_postgres::Transaction::execute`] under the transaction's context.
    ///
    /// ```no_run
    /// # async fn f(tx: &ctx_runtime::postgres::Transaction<'_>) -> Result<(), ctx_runtime::postgres::Error> {
    /// let n = tx.execute("DELETE FROM jobs WHERE state = $1", &[&"done"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.run(self.inner.execute(statement, params)).await
    }

    /// [`tokio_postgres::Transaction::batch_execute`] under the transaction's
    /// context.
    ///
    /// ```no_run
    /// # async fn f(tx: &ctx_runtime::postgres::Transaction<'_>) -> Result<(), ctx_runtime::postgres::Error> {
    /// tx.batch_execute("LOCK TABLE jobs; UPDATE jobs SET state = 'queued'").await?;
    /// # Ok(()) }
    /// ```
    pub async fn batch_execute(&self, query: &str) -> Result<(), Error> {
        self.run(self.inner.batch_execute(query)).await
    }

    /// Commits, unless the context has ended: then rolls back and returns
    /// the context's error. Consumes the transaction either way.
    ///
    /// `COMMIT` itself is not raced: once it is sent, its outcome is
    /// awaited and returned as the server gives it (a cancel cannot undo a
    /// commit, and a context error then would not say whether it happened).
    ///
    /// ```no_run
    /// # async fn f(client: &mut tokio_postgres::Client) -> Result<(), ctx_runtime::postgres::Error> {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let tx = client.transaction_ctx(&ctx).await?;
    /// tx.execute("INSERT INTO t (v) VALUES (1)", &[]).await?;
    /// cancel.cancel(); // the client went away
    /// let err = tx.commit().await.unwrap_err();
    /// assert_eq!(err.context_error(), Some(ctx_runtime::Error::Canceled)); // rolled back
    /// # Ok(()) }
    /// ```
    pub async fn commit(self) -> Result<(), Error> {
        if let Some(err) = self.ctx.err() {
            self.finish_rollback().await;
            return Err(err.into());
        }
        Ok(self.inner.commit().await?)
    }

    /// Rolls back, whatever the context's state. Dropping the transaction
    /// also rolls back, without waiting for the server.
    ///
    /// ```no_run
    /// # async fn f(client: &mut tokio_postgres::Client) -> Result<(), ctx_runtime::postgres::Error> {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// let tx = client.transaction_ctx(&Context::background()).await?;
    /// tx.execute("DELETE FROM t", &[]).await?;
    /// tx.rollback().await?;
    /// # Ok(()) }
    /// ```
    pub async fn rollback(self) -> Result<(), Error> {
        if self.rolled_back.load(Ordering::Acquire) {
            return Ok(());
        }
        Ok(self.inner.rollback().await?)
    }

    async fn finish_rollback(self) {
        if !self.rolled_back.load(Ordering::Acquire) {
            let _ = tokio::time::timeout(GRACE, self.inner.rollback()).await;
        }
        // Else dropping `inner` sends one more ROLLBACK, which the server
        // answers with a warning that no transaction is in progress.
    }

    /// The race of one statement, and the rollback when the context wins.
    async fn run<F, R>(&self, call: F) -> Result<R, Error>
    where
        F: Future<Output = Result<R, tokio_postgres::Error>>,
    {
        if let Some(err) = self.ctx.err() {
            self.roll_back(false).await;
            return Err(err.into());
        }
        let mut call = pin!(call);
        let ctx_err = match first(&self.ctx, call.as_mut()).await {
            Ok(result) => return Ok(result?),
            Err(err) => err,
        };
        // Boxed, as in `stop::run`: the cold path out of the hot future.
        let stopped = Box::pin(stop(self.inner.cancel_token(), &self.cancel, call)).await;
        if stopped.result.is_some() {
            self.roll_back(stopped.sent).await;
        }
        // Whatever the statement did is rolled back: the context's error is
        // the whole truth, even if the statement had finished.
        Err(ctx_err.into())
    }

    /// Sends `ROLLBACK` once, then settles the signals of a cancel request
    /// (`cancel_sent`) after it, outside the transaction block: a sentinel
    /// inside a failed block would be refused without catching anything.
    async fn roll_back(&self, cancel_sent: bool) {
        if self.rolled_back.swap(true, Ordering::AcqRel) {
            return;
        }
        // A late signal can stop the ROLLBACK itself: then send it again.
        for _ in 0..3 {
            match tokio::time::timeout(GRACE, self.inner.batch_execute("ROLLBACK")).await {
                Ok(Err(err)) if is_cancel(&err) => continue,
                _ => break,
            }
        }
        if cancel_sent {
            settle(self.inner.client());
        }
    }
}
