//! One statement raced against its context, and what happens when the
//! context wins: the cancel request, the wait for the statement's own
//! answer, and the settling of a cancel that came too late.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{CancelToken, Client, NoTls, Socket};

use super::Error;
use crate::Context;

/// How long the cancel request may take to send, and then how long the
/// cancelled statement may take to answer, before the call gives up waiting
/// and returns the context's error anyway.
pub(super) const GRACE: Duration = Duration::from_secs(5);

/// The statement queued after a cancel, for late signals to stop (see
/// [`settle`]): it sleeps until 100 ms have passed or it has caught the two
/// signals of one cancel request, catching each (`query_canceled`) so that
/// the next doesn't fall on the statement after it. Inside a transaction
/// the catch is a subtransaction: the transaction survives it.
const SENTINEL: &str = "DO $ctx_settle$
DECLARE
    settled timestamptz := clock_timestamp() + interval '100 milliseconds';
    caught int := 0;
BEGIN
    WHILE caught < 2 AND clock_timestamp() < settled LOOP
        BEGIN
            PERFORM pg_sleep(extract(epoch FROM settled - clock_timestamp()));
        EXCEPTION WHEN query_canceled THEN
            caught := caught + 1;
        END;
    END LOOP;
END
$ctx_settle$";

type PgResult<T> = Result<T, tokio_postgres::Error>;

/// How a cancel request reaches the server: tokio-postgres's connector for
/// the connection's TLS mode. `None` is `NoTls`, which needs no allocation.
#[derive(Clone, Default)]
pub(super) struct Canceller(Option<Arc<dyn SendCancel>>);

/// What a `NoTls` client uses (every [`ClientExt`](super::ClientExt) call on
/// a plain `Client`).
pub(super) static NO_TLS: Canceller = Canceller(None);

trait SendCancel: Send + Sync {
    fn send(&self, token: CancelToken) -> Pin<Box<dyn Future<Output = PgResult<()>> + Send>>;
}

struct Tls<T>(T);

impl<T> SendCancel for Tls<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn send(&self, token: CancelToken) -> Pin<Box<dyn Future<Output = PgResult<()>> + Send>> {
        let tls = self.0.clone();
        Box::pin(async move { token.cancel_query(tls).await })
    }
}

impl Canceller {
    pub(super) fn tls<T>(tls: T) -> Canceller
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::TlsConnect: Send,
        T::Stream: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        Canceller(Some(Arc::new(Tls(tls))))
    }

    async fn send(&self, token: CancelToken) -> PgResult<()> {
        match &self.0 {
            None => token.cancel_query(NoTls).await,
            Some(tls) => tls.send(token).await,
        }
    }
}

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Tls" } else { "NoTls" })
    }
}

/// Polls `call` until it completes (`Ok`) or `ctx` is done (`Err`), leaving
/// `call` alive in the second case: its answer is still needed.
pub(super) async fn first<F: Future>(
    ctx: &Context,
    mut call: Pin<&mut F>,
) -> Result<F::Output, crate::Error> {
    let mut done = pin!(ctx.done());
    poll_fn(|cx| {
        if let Poll::Ready(out) = call.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        done.as_mut().poll(cx).map(Err)
    })
    .await
}

/// What became of a statement whose context ended while it ran.
pub(super) struct Stopped<R> {
    /// Its own answer, or `None` if it gave none within [`GRACE`].
    pub(super) result: Option<PgResult<R>>,
    /// The cancel request was sent: its signals may still land, and must be
    /// [`settle`]d before the connection runs anything that matters.
    pub(super) sent: bool,
}

/// True if `err` is the server stopping a statement on a cancel request
/// (or on its `statement_timeout`, which has the same SQLSTATE).
pub(super) fn is_cancel(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::QUERY_CANCELED)
}

/// Sends PostgreSQL's cancel request for whatever `token`'s connection runs
/// (which is `call`: our caller holds the connection for it), then waits,
/// bounded by [`GRACE`] each, for `call`'s own answer.
///
/// Waiting for the answer is what makes the connection usable afterwards:
/// the cancelled statement's error, or its rows if it won the race, are
/// still in the pipe, and the next statement must not be sent before the
/// cancel has either stopped this one or missed it.
pub(super) async fn stop<F, R>(
    token: CancelToken,
    cancel: &Canceller,
    call: Pin<&mut F>,
) -> Stopped<R>
where
    F: Future<Output = PgResult<R>>,
{
    let sent = matches!(
        tokio::time::timeout(GRACE, cancel.send(token)).await,
        Ok(Ok(()))
    );
    Stopped {
        result: tokio::time::timeout(GRACE, call).await.ok(),
        sent,
    }
}

/// Lets the signals of a cancel request land harmlessly.
///
/// PostgreSQL's cancel request names a backend, not a statement, and is
/// handled asynchronously: tokio-postgres returns once it has written it,
/// and the server process that receives it signals the backend *twice*
/// (`kill` to the process, then to its process group). A signal that lands
/// while the backend is idle is discarded; one that lands during the *next*
/// statement kills that statement. Both happen: when the statement finished
/// before the request arrived, and when the process delivering it is
/// preempted between its two signals (a busy machine), so that the second
/// one comes after the statement has already died of the first.
///
/// libpq avoids this by waiting for the server to close the cancel
/// connection, which tokio-postgres does not expose. So a sentinel (a
/// `DO` block that sleeps and catches `query_canceled`, twice at most) is
/// queued on the connection, ahead of anything sent after it, for late
/// signals to land on instead. It is sent, not awaited: the call returns at
/// once, and the connection's next statement waits for it on the server, up
/// to 100 ms (less when both signals land in it).
pub(super) fn settle(client: &Client) {
    let mut sentinel = pin!(client.batch_execute(SENTINEL));
    // The first poll puts the request on the connection's queue; the answer,
    // dropped unread, is of no interest (a cancelled sentinel is the point).
    let _ = sentinel
        .as_mut()
        .poll(&mut std::task::Context::from_waker(Waker::noop()));
}

/// Runs `call` on `client` under `ctx`: the body of every
/// [`ClientExt`](super::ClientExt) method.
pub(super) async fn run<F, R>(
    client: &Client,
    cancel: &Canceller,
    ctx: &Context,
    call: F,
) -> Result<R, Error>
where
    F: Future<Output = PgResult<R>>,
{
    // A context that is already done sends nothing.
    ctx.check()?;
    let mut call = pin!(call);
    let ctx_err = match first(ctx, call.as_mut()).await {
        Ok(result) => return Ok(result?),
        Err(err) => err,
    };
    // Boxed: the cancel path's futures (a socket connect, two timers) would
    // otherwise make every call's future larger, and slower to move.
    let stopped = Box::pin(stop(client.cancel_token(), cancel, call)).await;
    if stopped.sent {
        settle(client);
    }
    match stopped.result {
        // The statement finished before the cancel reached it: its effects
        // happened, so its result is the truth.
        Some(Ok(value)) => Ok(value),
        Some(Err(err)) if !is_cancel(&err) => Err(err.into()),
        _ => Err(ctx_err.into()),
    }
}
