//! `ctx_runtime::rusqlite` (issue 13): SQLite work under a context, its
//! statement interrupted, its transaction rolled back and its connection
//! free again when the context ends. The closures report what happened to
//! them through channels, so nothing here waits on a timer.

use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use ctx_runtime::rusqlite::Connection;
use ctx_runtime::{Context, Error};
use rusqlite::ErrorCode;
use rusqlite::functions::FunctionFlags;
use tokio::sync::oneshot;

/// Counts to a billion: minutes of work for SQLite.
const LONG_COUNT: &str = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000) SELECT count(*) FROM c";

fn long_count(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row(LONG_COUNT, [], |row| row.get(0))
}

fn is_interrupted(result: &rusqlite::Result<i64>) -> bool {
    matches!(result, Err(err) if err.sqlite_error_code() == Some(ErrorCode::OperationInterrupted))
}

async fn table(db: &Connection) {
    db.call(&Context::background(), |conn| {
        conn.execute_batch("CREATE TABLE t (v INTEGER)")
    })
    .await
    .unwrap();
}

async fn count(db: &Connection) -> i64 {
    db.call(&Context::background(), |conn| {
        conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_recursive_query_is_interrupted() {
    let db = Connection::open_in_memory().unwrap();
    let (ctx, cancel) = Context::background().with_cancel();
    let (started_tx, started) = oneshot::channel();
    let (ended_tx, ended) = oneshot::channel();
    let call = tokio::spawn({
        let db = db.clone();
        async move {
            db.call(&ctx, move |conn| {
                let _ = started_tx.send(());
                let result = long_count(conn);
                let _ = ended_tx.send(is_interrupted(&result));
                result
            })
            .await
        }
    });
    started.await.unwrap();
    cancel.cancel();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));
    // The statement itself was stopped, not left to count on.
    assert!(
        ended.await.unwrap(),
        "the statement should fail with SQLITE_INTERRUPT"
    );
    // And the connection is free.
    let one: i64 = db
        .call(&Context::background(), |conn| {
            conn.query_row("SELECT 1", [], |r| r.get(0))
        })
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_interrupts_with_deadline_exceeded() {
    let db = Connection::open_in_memory().unwrap();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(50));
    let err = db.call(&ctx, |conn| long_count(conn)).await.unwrap_err();
    assert!(err.is_timeout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_transaction_is_rolled_back() {
    let db = Connection::open_in_memory().unwrap();
    table(&db).await;
    let (ctx, cancel) = Context::background().with_cancel();
    let (started_tx, started) = oneshot::channel();
    let call = tokio::spawn({
        let db = db.clone();
        async move {
            db.call(&ctx, move |conn| {
                // A raw BEGIN: nothing of rusqlite's would roll it back.
                conn.execute_batch("BEGIN; INSERT INTO t VALUES (1)")?;
                let _ = started_tx.send(());
                long_count(conn)?;
                conn.execute_batch("COMMIT")
            })
            .await
        }
    });
    started.await.unwrap();
    cancel.cancel();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));
    assert_eq!(count(&db).await, 0);
    let autocommit = db
        .call(&Context::background(), |conn| Ok(conn.is_autocommit()))
        .await
        .unwrap();
    assert!(autocommit, "no transaction left open");
}

/// A closure that ignores the interruption: the call returns at once, and
/// the closure, still running, can no longer commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_that_ignores_the_context_commits_nothing() {
    let db = Connection::open_in_memory().unwrap();
    table(&db).await;
    let (ctx, cancel) = Context::background().with_cancel();
    let (started_tx, started) = oneshot::channel();
    let (go_on_tx, go_on) = std_mpsc::channel::<()>();
    let (outcome_tx, outcome) = oneshot::channel();
    let call = tokio::spawn({
        let db = db.clone();
        async move {
            db.call(&ctx, move |conn| {
                let tx = conn.transaction()?;
                tx.execute("INSERT INTO t VALUES (1)", [])?;
                let _ = started_tx.send(());
                go_on.recv().unwrap(); // deaf to the context until told
                let insert = tx.execute("INSERT INTO t VALUES (2)", []).map(|_| ());
                let commit = tx.commit();
                let _ = outcome_tx.send((insert.is_ok(), commit.is_ok()));
                Ok(())
            })
            .await
        }
    });
    started.await.unwrap();
    cancel.cancel();
    // Returns while the closure is still blocked: the call does not wait for it.
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));
    go_on_tx.send(()).unwrap();
    let (_insert_ok, commit_ok) = outcome.await.unwrap();
    assert!(
        !commit_ok,
        "the commit hook refuses a commit after the context ended"
    );
    assert_eq!(count(&db).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_done_context_never_runs_the_closure() {
    let db = Connection::open_in_memory().unwrap();
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let err = db
        .call(&ctx, move |_| {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));
    assert!(!ran.load(Ordering::SeqCst));
}

/// A call waiting for the connection gives up when its context ends, and
/// its cancellation does not interrupt the statement of the call that holds
/// the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_call_gives_up_without_interrupting_the_running_one() {
    let db = Connection::open_in_memory().unwrap();
    let (running_tx, running) = oneshot::channel::<()>();
    let first = tokio::spawn({
        let db = db.clone();
        async move {
            db.call(&Context::background(), move |conn| {
                // `running()` reports from inside the statement that it runs.
                let running_tx = Mutex::new(Some(running_tx));
                conn.create_scalar_function("running", 0, FunctionFlags::SQLITE_UTF8, move |_| {
                    if let Some(tx) = running_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                    Ok(1)
                })?;
                conn.query_row(
                    "WITH RECURSIVE c(n) AS (SELECT running() UNION ALL SELECT n + 1 FROM c WHERE n < 2000000) SELECT count(*) FROM c",
                    [],
                    |row| row.get::<_, i64>(0),
                )
            })
            .await
        }
    });
    running.await.unwrap();

    // Queued behind the first call (polled once: it has handed its closure
    // to the blocking pool and waits), then cancelled while the first one's
    // statement runs.
    let (ctx, cancel) = Context::background().with_cancel();
    let ran = Arc::new(AtomicBool::new(false));
    let mut second = Box::pin(db.call(&ctx, {
        let ran = Arc::clone(&ran);
        move |_| {
            ran.store(true, Ordering::SeqCst);
            Ok(())
        }
    }));
    let polled = poll_fn(|cx| Poll::Ready(second.as_mut().poll(cx).is_pending())).await;
    assert!(
        polled,
        "the second call cannot finish while the first holds the connection"
    );
    cancel.cancel();
    let err = second.await.unwrap_err();
    assert_eq!(err.context_error(), Some(Error::Canceled));
    assert_eq!(first.await.unwrap().unwrap(), 2_000_000);
    // Once every call queued before it is done: the second closure never ran.
    let _ = count_free(&db).await;
    assert!(!ran.load(Ordering::SeqCst));
}

/// Returns once every call queued before it has finished.
async fn count_free(db: &Connection) -> i64 {
    db.call(&Context::background(), |conn| {
        conn.query_row("SELECT 1", [], |r| r.get(0))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_the_closure_are_sqlite_errors() {
    let db = Connection::open_in_memory().unwrap();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(30));
    let err = db
        .call(&ctx, |conn| conn.execute_batch("NOT SQL"))
        .await
        .unwrap_err();
    assert_eq!(err.context_error(), None);
    assert!(err.as_sqlite().is_some());
    assert_eq!(err.to_string(), err.as_sqlite().unwrap().to_string());
}
