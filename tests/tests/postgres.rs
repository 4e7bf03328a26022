//! `ctx_runtime::postgres` against a real PostgreSQL server (issue 13): the
//! statement stops on the server when its context ends, the connection is
//! usable afterwards, and a transaction whose context ends commits nothing.
//!
//! The server: `DATABASE_URL` (scripts/test starts a throwaway cluster and
//! sets it), or a throwaway cluster started by this binary. No sleep
//! synchronises anything: the tests wait for the server to report the query
//! in `pg_stat_activity` before they cancel, and poll it, bounded, after.

mod pg_support;

use std::time::Duration;

use ctx_runtime::postgres::{ClientExt, TlsCancel};
use ctx_runtime::{Context, Error, Instant};
use pg_support::{Monitor, backend_pid, connect, unique_table};
use tokio_postgres::error::SqlState;

const SLEEP_30: &str = "SELECT pg_sleep(30)";

/// The budget for the statement to leave `pg_stat_activity`.
const GONE_WITHIN: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_pg_sleep_returns_the_context_error_and_stops_on_the_server() {
    let client = connect().await;
    let pid = backend_pid(&client).await;
    let monitor = Monitor::new().await;
    let (ctx, cancel) = Context::background().with_cancel();

    let start = Instant::now();
    let query = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            let result = client.query_ctx(&ctx, SLEEP_30, &[]).await;
            (result.map(|rows| rows.len()), client)
        }
    });
    monitor.wait_active(pid, "pg_sleep(30)").await;
    // The scenario: the client leaves after about 100 ms.
    let running_for = start.elapsed();
    if running_for < Duration::from_millis(100) {
        tokio::time::sleep(Duration::from_millis(100) - running_for).await;
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let (result, client) = query.await.unwrap();
    let returned_after = cancelled_at.elapsed();
    let err = result.unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled), "{err:?}");
    assert!(!err.is_timeout());
    // Long before the server's 30 s: the call waited for the cancel, not the sleep.
    assert!(
        returned_after < Duration::from_secs(5),
        "{returned_after:?}"
    );

    let gone = monitor.gone_within(pid, "pg_sleep(30)", GONE_WITHIN).await;
    assert!(
        gone.is_some(),
        "pg_sleep(30) still running {GONE_WITHIN:?} after the call returned"
    );
    eprintln!("returned {returned_after:?} after cancel; idle on the server {gone:?} after that");

    // The same connection answers the next query.
    let row = client
        .query_one_ctx(&Context::background(), "SELECT 41 + 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
}

/// The negative control: without ctx, dropping tokio-postgres's future
/// leaves the statement running on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tokio_postgres_leaves_the_query_running_after_its_future_is_dropped() {
    let client = connect().await;
    let pid = backend_pid(&client).await;
    let monitor = Monitor::new().await;

    let (ctx, cancel) = Context::background().with_cancel();
    let query = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            // What `ctx.run` (or a dropped request handler) does: drop the future.
            let result = ctx.run(client.query(SLEEP_30, &[])).await;
            (result.is_err(), client)
        }
    });
    monitor.wait_active(pid, "pg_sleep(30)").await;
    cancel.cancel();
    let (dropped, _client) = query.await.unwrap();
    assert!(dropped, "the future should have been dropped by ctx.run");

    // Given the same budget as the feature (and then some), it is still there.
    let gone = monitor
        .gone_within(pid, "pg_sleep(30)", GONE_WITHIN * 3)
        .await;
    assert_eq!(
        gone, None,
        "without the feature the server should still be sleeping"
    );
    assert!(
        monitor
            .active_query(pid)
            .await
            .is_some_and(|q| q.contains("pg_sleep(30)"))
    );
    monitor.terminate(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_cancels_a_slow_query_with_deadline_exceeded() {
    let client = connect().await;
    let pid = backend_pid(&client).await;
    let monitor = Monitor::new().await;

    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(100));
    let start = Instant::now();
    let err = client.execute_ctx(&ctx, SLEEP_30, &[]).await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.context_error(), Some(Error::DeadlineExceeded));
    assert!(err.is_timeout());
    assert!(err.as_postgres().is_none());
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        monitor
            .gone_within(pid, "pg_sleep(30)", GONE_WITHIN)
            .await
            .is_some()
    );
    eprintln!("deadline 100 ms: returned after {took:?}");

    let n: i64 = client
        .query_one_ctx(&Context::background(), "SELECT count(*) FROM pg_class", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_finishes_before_its_deadline_is_untouched() {
    let client = connect().await;
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(30));
    let rows = client
        .query_ctx(&ctx, "SELECT pg_sleep(0.05), $1::int", &[&7i32])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(1), 7);
    assert_eq!(ctx.err(), None);
    // No cancel request went out that could hit the next statement: a
    // statement longer than the settling window completes.
    client
        .batch_execute_ctx(&ctx, "SELECT pg_sleep(0.7)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_done_context_sends_nothing() {
    let client = connect().await;
    let monitor = Monitor::new().await;
    let table = unique_table("done_ctx");
    monitor.run(&format!("CREATE TABLE {table} (v int)")).await;

    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let insert = format!("INSERT INTO {table} VALUES (1)");
    let err = client.execute_ctx(&ctx, &insert, &[]).await.unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));
    let err = client.batch_execute_ctx(&ctx, &insert).await.unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));
    assert_eq!(monitor.count(&table).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_error_is_not_a_context_error() {
    let client = connect().await;
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(30));
    let err = client
        .query_one_ctx(&ctx, "SELECT 1 / $1::int", &[&0i32])
        .await
        .unwrap_err();
    assert_eq!(err.context_error(), None);
    assert!(!err.is_timeout());
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO));
    // Transparent: tokio-postgres's words, and its source.
    let inner = err.as_postgres().unwrap();
    assert_eq!(err.to_string(), inner.to_string());
    assert!(std::error::Error::source(&err).is_some());
}

/// The cancel request lands a little after it is sent. When the statement
/// finishes first, the request must not kill the next statement on the
/// connection. Contexts end at moments spread around the statement's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_loses_the_race_does_not_kill_the_next_statement() {
    let client = connect().await;
    let mut finished_first = 0;
    for i in 0..60u64 {
        // The statement takes 20 ms; the deadline falls between 14 and 26 ms.
        let (ctx, _cancel) =
            Context::background().with_timeout(Duration::from_micros(14_000 + i * 200));
        match client.query_ctx(&ctx, "SELECT pg_sleep(0.02)", &[]).await {
            Ok(_) => finished_first += 1,
            Err(err) => assert_eq!(err.context_error(), Some(Error::DeadlineExceeded), "{err}"),
        }
        let next = client
            .query_one_ctx(&Context::background(), "SELECT pg_sleep(0.005), 1", &[])
            .await;
        assert!(
            next.is_ok(),
            "iteration {i}: the next statement failed: {next:?}"
        );
    }
    eprintln!("{finished_first} of 60 statements finished before their deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_cancelled_before_commit_leaves_no_row() {
    let mut client = connect().await;
    let monitor = Monitor::new().await;
    let table = unique_table("tx_commit");
    monitor.run(&format!("CREATE TABLE {table} (v int)")).await;

    let (ctx, cancel) = Context::background().with_cancel();
    let tx = client.transaction_ctx(&ctx).await.unwrap();
    assert_eq!(
        tx.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&1i32])
            .await
            .unwrap(),
        1
    );
    cancel.cancel(); // the client went away before commit
    let err = tx.commit().await.unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));
    assert_eq!(monitor.count(&table).await, 0);

    // The connection is out of the transaction and usable.
    let live = Context::background();
    let tx = client.transaction_ctx(&live).await.unwrap();
    tx.execute(&format!("INSERT INTO {table} VALUES (2)"), &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(monitor.count(&table).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_context_ends_mid_statement_is_cancelled_and_rolled_back() {
    let mut client = connect().await;
    let pid = backend_pid(&client).await;
    let monitor = Monitor::new().await;
    let table = unique_table("tx_mid");
    monitor.run(&format!("CREATE TABLE {table} (v int)")).await;

    let (ctx, cancel) = Context::background().with_cancel();
    let work = tokio::spawn({
        let table = table.clone();
        async move {
            let tx = client.transaction_ctx(&ctx).await.unwrap();
            tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
                .await
                .unwrap();
            let slow = tx.query(SLEEP_30, &[]).await.map(|rows| rows.len());
            // Once ended, the transaction refuses everything, and commit rolls back.
            let after = tx
                .execute(&format!("INSERT INTO {table} VALUES (2)"), &[])
                .await
                .map(|_| ());
            let commit = tx.commit().await;
            (slow, after, commit, client)
        }
    });
    monitor.wait_active(pid, "pg_sleep(30)").await;
    cancel.cancel();
    let (slow, after, commit, client) = work.await.unwrap();
    assert_eq!(slow.unwrap_err().context_error(), Some(Error::Canceled));
    assert_eq!(after.unwrap_err().context_error(), Some(Error::Canceled));
    assert_eq!(commit.unwrap_err().context_error(), Some(Error::Canceled));
    assert!(
        monitor
            .gone_within(pid, "pg_sleep(30)", GONE_WITHIN)
            .await
            .is_some()
    );
    assert_eq!(monitor.count(&table).await, 0);

    // Not left inside a (failed) transaction block: a plain insert commits.
    client
        .execute_ctx(
            &Context::background(),
            &format!("INSERT INTO {table} VALUES (3)"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(monitor.count(&table).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_is_usable_after_a_cancelled_query() {
    let mut config = deadpool_postgres::Config::new();
    config.url = Some(pg_support::server().url().to_owned());
    config.pool = Some(deadpool_postgres::PoolConfig::new(1));
    let pool = config
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .unwrap();
    let monitor = Monitor::new().await;

    let conn = pool.get().await.unwrap();
    let pid = backend_pid(&conn).await;
    let (ctx, cancel) = Context::background().with_cancel();
    let query = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            // deadpool's Object derefs to tokio_postgres::Client: ClientExt applies.
            let result = conn.query_ctx(&ctx, SLEEP_30, &[]).await.map(|r| r.len());
            drop(conn); // back to the pool
            result
        }
    });
    monitor.wait_active(pid, "pg_sleep(30)").await;
    cancel.cancel();
    let err = query.await.unwrap().unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));

    // The pool's one connection: the same backend, idle, answering.
    let mut conn = pool.get().await.unwrap();
    assert_eq!(backend_pid(&conn).await, pid);
    let live = Context::background();
    let one: i32 = conn
        .query_one_ctx(&live, "SELECT 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    let tx = conn.transaction_ctx(&live).await.unwrap();
    tx.batch_execute("SELECT 1").await.unwrap();
    tx.commit().await.unwrap();
}

/// `TlsCancel` sends the cancel request through the connector it was given
/// (`NoTls` here: the path is the same for a real TLS connector).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_wrapped_in_tls_cancel_stops_the_query_too() {
    let mut client = connect().await;
    let pid = backend_pid(&client).await;
    let monitor = Monitor::new().await;
    let (ctx, cancel) = Context::background().with_cancel();
    let query = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            let mut wrapped = TlsCancel::new(&mut client, tokio_postgres::NoTls);
            let slow = wrapped
                .query_ctx(&ctx, SLEEP_30, &[])
                .await
                .map(|r| r.len());
            let tx = wrapped
                .transaction_ctx(&Context::background())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            drop(wrapped);
            (slow, client)
        }
    });
    monitor.wait_active(pid, "pg_sleep(30)").await;
    cancel.cancel();
    let (slow, client) = query.await.unwrap();
    assert_eq!(slow.unwrap_err().context_error(), Some(Error::Canceled));
    assert!(
        monitor
            .gone_within(pid, "pg_sleep(30)", GONE_WITHIN)
            .await
            .is_some()
    );
    client.query_one("SELECT 1", &[]).await.unwrap();
}
