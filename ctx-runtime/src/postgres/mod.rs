//! PostgreSQL calls that stop on the server when their [`Context`] ends
//! (feature `postgres`): Go's `db.QueryContext(ctx, ...)` and
//! `db.BeginTx(ctx, ...)` for tokio-postgres.
//!
//! Dropping a tokio-postgres future stops the Rust side only: the statement
//! already sent keeps running on the server, holding its locks and a
//! backend, until it finishes or the server's own `statement_timeout` fires.
//! [`ClientExt`] races each call against `ctx`, and when `ctx` ends first:
//!
//! 1. sends PostgreSQL's cancel request for the connection
//!    ([`Client::cancel_token`]), over the connection's TLS mode (a client
//!    connected with `NoTls` needs nothing else; wrap a TLS client in
//!    [`TlsCancel`] to hand over its connector);
//! 2. waits for the cancelled statement's own answer (bounded: 5 s for the
//!    cancel request to be sent, 5 s for the answer), so that the connection
//!    is handed back idle and usable: the next query on it succeeds;
//! 3. returns the context's error ([`Error::context_error`]).
//!
//! A cancel request names a connection, not a statement, and the server
//! acts on it a little later. If the statement finishes before it lands,
//! the request could stop the *next* statement on the connection instead;
//! so in that case the call runs a short sentinel `pg_sleep` for the request
//! to stop, before returning (and returns the statement's result, since its
//! effects happened). A statement that does not answer within the bound
//! (the server unreachable) is left behind: the call returns the context's
//! error, and the connection's next statement waits behind it.
//!
//! A transaction begun with [`ClientExt::transaction_ctx`] keeps its
//! context: when the context ends before [`Transaction::commit`], the
//! statement in flight is cancelled and the transaction rolled back.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ctx_runtime::Context;
//! use ctx_runtime::postgres::ClientExt;
//! use std::time::Duration;
//!
//! let (client, connection) =
//!     tokio_postgres::connect("postgres://app@127.0.0.1/app", tokio_postgres::NoTls).await?;
//! tokio::spawn(connection);
//!
//! let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(100));
//! let err = client.query_ctx(&ctx, "SELECT pg_sleep(30)", &[]).await.unwrap_err();
//! assert!(err.is_timeout()); // after 100 ms; and the server is no longer sleeping
//! client.query_one_ctx(&Context::background(), "SELECT 1", &[]).await?; // still usable
//! # Ok(()) }
//! ```
//!
//! # What these calls do not cover
//!
//! * A *dropped* call (its future dropped before it completes, by
//!   `ctx.run`, `select!`, or a handler that hyper drops) does what
//!   tokio-postgres does: nothing on the server. The cancel needs the call
//!   to be polled when `ctx` ends, so run database work in a task under the
//!   request's context ([`spawn`](crate::spawn), a [`TaskTracker`](crate::TaskTracker)),
//!   not in a future that can be dropped.
//! * Inside a transaction opened by hand (`BEGIN` through `batch_execute`),
//!   a cancelled statement aborts the transaction, and the sentinel that
//!   catches late signals is refused there: use
//!   [`transaction_ctx`](ClientExt::transaction_ctx), which rolls back first.
//!
//! # One statement at a time per connection
//!
//! A cancel request stops whatever the connection is running. tokio-postgres
//! lets several tasks share one `Client` and pipelines their statements: a
//! cancel meant for one of them can stop another's. Give each task its own
//! connection, from a pool such as deadpool-postgres, whose connections
//! dereference to `Client` and so have these methods:
//!
//! ```ignore
//! let conn = pool.get().await?; // deadpool_postgres::Object
//! let rows = conn.query_ctx(&ctx, "SELECT * FROM big_report($1)", &[&user]).await?;
//! ```

mod error;
mod stop;
mod transaction;

use std::future::Future;
use std::ops::{Deref, DerefMut};

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Socket, ToStatement};

use crate::Context;
pub use error::Error;
use stop::{Canceller, NO_TLS};
pub use transaction::Transaction;

/// tokio-postgres calls under a [`Context`]: `query_ctx(&ctx, ...)` and
/// friends, for [`tokio_postgres::Client`] and anything that dereferences
/// to one (a pool's connection).
///
/// Each takes the same arguments as the tokio-postgres method of the same
/// name without `_ctx`, with `ctx` first, and returns [`Error`]. A `ctx`
/// that is already done fails the call without sending anything; one that
/// ends while the server runs the statement cancels it on the server (see
/// [the module documentation](self)).
///
/// ```no_run
/// # async fn f(client: &tokio_postgres::Client) -> Result<(), ctx_runtime::postgres::Error> {
/// use ctx_runtime::Context;
/// use ctx_runtime::postgres::ClientExt;
/// use std::time::Duration;
///
/// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(2));
/// let rows = client.query_ctx(&ctx, "SELECT name FROM users WHERE id = $1", &[&7i32]).await?;
/// # Ok(()) }
/// ```
pub trait ClientExt {
    /// [`Client::query`] under `ctx`.
    ///
    /// ```no_run
    /// # async fn f(client: &tokio_postgres::Client, ctx: &ctx_runtime::Context)
    /// # -> Result<(), ctx_runtime::postgres::Error> {
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// for row in client.query_ctx(ctx, "SELECT id, name FROM users", &[]).await? {
    ///     let (id, name): (i32, &str) = (row.get(0), row.get(1));
    /// }
    /// # Ok(()) }
    /// ```
    fn query_ctx<T>(
        &self,
        ctx: &Context,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// [`Client::query_one`] under `ctx`.
    ///
    /// ```no_run
    /// # async fn f(client: &tokio_postgres::Client, ctx: &ctx_runtime::Context)
    /// # -> Result<(), ctx_runtime::postgres::Error> {
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// let n: i64 = client.query_one_ctx(ctx, "SELECT count(*) FROM users", &[]).await?.get(0);
    /// # Ok(()) }
    /// ```
    fn query_one_ctx<T>(
        &self,
        ctx: &Context,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// [`Client::execute`] under `ctx`: the number of rows affected.
    ///
    /// ```no_run
    /// # async fn f(client: &tokio_postgres::Client, ctx: &ctx_runtime::Context)
    /// # -> Result<(), ctx_runtime::postgres::Error> {
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// let n = client.execute_ctx(ctx, "UPDATE users SET seen = now() WHERE id = $1", &[&7i32]).await?;
    /// # Ok(()) }
    /// ```
    fn execute_ctx<T>(
        &self,
        ctx: &Context,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// [`Client::batch_execute`] under `ctx`: several statements separated
    /// by semicolons, in the simple query protocol.
    ///
    /// ```no_run
    /// # async fn f(client: &tokio_postgres::Client, ctx: &ctx_runtime::Context)
    /// # -> Result<(), ctx_runtime::postgres::Error> {
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// client.batch_execute_ctx(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)").await?;
    /// # Ok(()) }
    /// ```
    fn batch_execute_ctx(
        &self,
        ctx: &Context,
        query: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Begins a transaction bound to `ctx` (Go's `BeginTx`): see
    /// [`Transaction`].
    ///
    /// `BEGIN` itself is sent only if `ctx` is live, and is not raced (it
    /// takes no locks and does no work; dropping it half-way would leave the
    /// connection inside a transaction nobody owns). If `ctx` ends while it
    /// runs, the transaction is rolled back at once and the context's error
    /// returned.
    ///
    /// ```no_run
    /// # async fn f(client: &mut tokio_postgres::Client, ctx: &ctx_runtime::Context)
    /// # -> Result<(), ctx_runtime::postgres::Error> {
    /// use ctx_runtime::postgres::ClientExt;
    ///
    /// let tx = client.transaction_ctx(ctx).await?;
    /// tx.execute("INSERT INTO audit (what) VALUES ($1)", &[&"login"]).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    fn transaction_ctx(
        &mut self,
        ctx: &Context,
    ) -> impl Future<Output = Result<Transaction<'_>, Error>> + Send;
}

/// What every [`ClientExt`] call needs of its client: the `Client`, and how
/// its cancel requests travel. One implementation of the trait serves all.
trait Parts: Send + Sync {
    fn client(&self) -> &Client;
    fn client_mut(&mut self) -> &mut Client;
    fn canceller(&self) -> &Canceller;
}

impl Parts for Client {
    fn client(&self) -> &Client {
        self
    }
    fn client_mut(&mut self) -> &mut Client {
        self
    }
    fn canceller(&self) -> &Canceller {
        &NO_TLS
    }
}

impl<C> Parts for TlsCancel<C>
where
    C: DerefMut<Target = Client> + Send + Sync,
{
    fn client(&self) -> &Client {
        &self.client
    }
    fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }
    fn canceller(&self) -> &Canceller {
        &self.cancel
    }
}

// Parts is the seal: only our two clients have it.
impl<P: Parts> ClientExt for P {
    fn query_ctx<T>(
        &self,
        ctx: &Context,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
    {
        let client = self.client();
        stop::run(
            client,
            self.canceller(),
            ctx,
            client.query(statement, params),
        )
    }

    fn query_one_ctx<T>(
        &self,
        ctx: &Context,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
    {
        let client = self.client();
        stop::run(
            client,
            self.canceller(),
            ctx,
            client.query_one(statement, params),
        )
    }

    fn execute_ctx<T>(
        &self,
        ctx: &Context,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
    {
        let client = self.client();
        stop::run(
            client,
            self.canceller(),
            ctx,
            client.execute(statement, params),
        )
    }

    fn batch_execute_ctx(
        &self,
        ctx: &Context,
        query: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let client = self.client();
        stop::run(client, self.canceller(), ctx, client.batch_execute(query))
    }

    fn transaction_ctx(
        &mut self,
        ctx: &Context,
    ) -> impl Future<Output = Result<Transaction<'_>, Error>> + Send {
        let cancel = self.canceller().clone();
        begin(self.client_mut(), ctx, cancel)
    }
}

async fn begin<'a>(
    client: &'a mut Client,
    ctx: &Context,
    cancel: Canceller,
) -> Result<Transaction<'a>, Error> {
    ctx.check()?;
    let tx = client.transaction().await?;
    if let Some(err) = ctx.err() {
        let _ = tokio::time::timeout(stop::GRACE, tx.rollback()).await;
        return Err(err.into());
    }
    Ok(Transaction::new(tx, ctx.clone(), cancel))
}

/// A client whose context-bound calls send their cancel requests through a
/// TLS connector: for connections made with TLS, whose server may refuse a
/// cancel request in plain text.
///
/// `C` is anything that dereferences mutably to [`Client`]: `&mut Client`,
/// `Box<Client>`, a pool's connection. `TlsCancel<C>` dereferences to the
/// `Client` too, and implements [`ClientExt`] with the connector. A client
/// connected with `NoTls` needs none of this.
///
/// ```no_run
/// # async fn f<T>(connector: T) -> Result<(), Box<dyn std::error::Error>>
/// # where
/// #     T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Send + Sync + 'static,
/// #     T::TlsConnect: Send,
/// #     T::Stream: Send,
/// #     <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
/// # {
/// use ctx_runtime::Context;
/// use ctx_runtime::postgres::{ClientExt, TlsCancel};
///
/// // `connector`: e.g. postgres-openssl's MakeTlsConnector, or tokio-postgres-rustls's.
/// let (mut client, connection) =
///     tokio_postgres::connect("postgres://db.internal/app?sslmode=require", connector.clone()).await?;
/// tokio::spawn(connection);
/// let client = TlsCancel::new(&mut client, connector);
/// let ctx = Context::background();
/// client.query_ctx(&ctx, "SELECT 1", &[]).await?;
/// # Ok(()) }
/// ```
pub struct TlsCancel<C> {
    client: C,
    cancel: Canceller,
}

impl<C> TlsCancel<C> {
    /// Wraps `client`, whose cancel requests will go through `tls`.
    ///
    /// ```
    /// # fn f(client: tokio_postgres::Client) {
    /// use ctx_runtime::postgres::TlsCancel;
    /// // NoTls stands in for a real connector here.
    /// let client = TlsCancel::new(client, tokio_postgres::NoTls);
    /// # }
    /// ```
    pub fn new<T>(client: C, tls: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::TlsConnect: Send,
        T::Stream: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        TlsCancel {
            client,
            cancel: Canceller::tls(tls),
        }
    }

    /// The client back.
    ///
    /// ```
    /// # fn f(client: tokio_postgres::Client) {
    /// use ctx_runtime::postgres::TlsCancel;
    /// let client: tokio_postgres::Client = TlsCancel::new(client, tokio_postgres::NoTls).into_inner();
    /// # }
    /// ```
    pub fn into_inner(self) -> C {
        self.client
    }
}

impl<C: std::fmt::Debug> std::fmt::Debug for TlsCancel<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCancel")
            .field("client", &self.client)
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl<C: Deref<Target = Client>> Deref for TlsCancel<C> {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl<C: DerefMut<Target = Client>> DerefMut for TlsCancel<C> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}
