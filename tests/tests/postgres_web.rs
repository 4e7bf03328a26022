//! The seed's story end to end (issue 13): an HTTP client hangs up, CtxLayer
//! cancels the request's context, and the query its task sent stops on the
//! PostgreSQL server, not just in Rust.

mod pg_support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use ctx_runtime::http::{ClientDisconnected, CtxLayer};
use ctx_runtime::postgres::ClientExt;
use ctx_runtime::{Context, Error, Instant};
use pg_support::{Monitor, backend_pid, connect};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

type Outcome = (Result<usize, ctx_runtime::postgres::Error>, Option<bool>);

#[derive(Clone)]
struct App {
    db: Arc<tokio_postgres::Client>,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

/// Hands the query to a detached task under the request's context, as real
/// handlers hand work to the background: only the context ties them.
async fn report(State(app): State<App>, ctx: Context) -> String {
    let task = tokio::spawn(async move {
        let result = app
            .db
            .query_ctx(&ctx, "SELECT pg_sleep(30)", &[])
            .await
            .map(|rows| rows.len());
        let disconnected = ctx.cause().map(|c| c.is::<ClientDisconnected>());
        let _ = app.outcomes.send((result, disconnected));
    });
    let _ = task.await;
    "done".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_stops_the_query_on_the_server() {
    let db = connect().await;
    let pid = backend_pid(&db).await;
    let db = Arc::new(db);
    let monitor = Monitor::new().await;
    let (outcomes, mut outcome) = mpsc::unbounded_channel();

    let (root, _shutdown) = Context::background().with_cancel();
    let router = Router::new()
        .route("/report", get(report))
        .with_state(App {
            db: Arc::clone(&db),
            outcomes,
        })
        .layer(CtxLayer::new(root));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /report HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    monitor.wait_active(pid, "pg_sleep(30)").await;
    let hung_up = Instant::now();
    drop(client); // the user closes the tab

    let (result, disconnected) = tokio::time::timeout(Duration::from_secs(10), outcome.recv())
        .await
        .expect("the task should stop long before the server's 30 s")
        .unwrap();
    let stopped_after = hung_up.elapsed();
    assert_eq!(result.unwrap_err().context_error(), Some(Error::Canceled));
    assert_eq!(disconnected, Some(true), "the cause is ClientDisconnected");
    let gone = monitor
        .gone_within(pid, "pg_sleep(30)", Duration::from_millis(200))
        .await;
    assert!(gone.is_some(), "pg_sleep(30) still running on the server");
    eprintln!("task stopped {stopped_after:?} after the hang-up; server idle {gone:?} later");

    // The shared connection serves the next request's query.
    let row = db
        .query_one_ctx(&Context::background(), "SELECT 'still here'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "still here");
}
