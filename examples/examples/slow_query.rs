//! The story against PostgreSQL: our axum service with `CtxLayer` hands each
//! request to a task that opens a transaction, inserts a row, then runs a
//! slow report query (800 ms) before committing. Three clients: one waits,
//! one leaves, one sets a deadline. For the two that do not wait, the query
//! stops *on the server* (PostgreSQL's cancel request), the transaction is
//! rolled back, and nothing is committed.
//!
//! Run it with `cargo run --example slow_query`. It uses `DATABASE_URL` when
//! set, and otherwise starts a throwaway cluster with `scripts/postgres`
//! (PostgreSQL must be installed: `apt-get install postgresql`), removed at
//! the end.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use ctx_examples::pg::Server;
use ctx_runtime::http::{ClientDisconnected, CtxLayer};
use ctx_runtime::postgres::{self, ClientExt};
use ctx_runtime::{Context, Instant, TaskTracker};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How long the report query runs on the server.
const QUERY: &str = "SELECT pg_sleep(0.8)";
/// When client 2 gives up.
const CLIENT_2_PATIENCE: Duration = Duration::from_millis(300);
const TABLE: &str = "ctx_slow_query_reports";

/// Prints the timeline.
struct Log(Instant);

impl Log {
    fn line(&self, who: &str, what: impl std::fmt::Display) {
        println!("{:>6} ms  {who:<9} {what}", self.0.elapsed().as_millis());
    }
}

/// How a task ended, for `main` to wait on: `Err` holds the context's
/// error, if that is why it failed.
struct Ended {
    who: String,
    result: Result<(), Option<ctx_runtime::Error>>,
}

#[derive(Clone)]
struct App {
    db: Arc<Server>,
    log: Arc<Log>,
    ended: mpsc::UnboundedSender<Ended>,
    tracker: TaskTracker,
}

async fn report(State(app): State<App>, ctx: Context, headers: HeaderMap) -> (StatusCode, String) {
    let who = headers
        .get("x-client")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous")
        .to_owned();
    match ctx.remaining() {
        Some(left) => app.log.line(
            &who,
            format!("server: handler starts, deadline in {left:.0?}"),
        ),
        None => app.log.line(&who, "server: handler starts, no deadline"),
    }
    // Detached: only the request's context ties the task to the request.
    let tracker = app.tracker.clone();
    let job = tracker
        .spawn(&ctx, move |ctx| async move {
            let result = write_report(&app, &ctx, &who).await;
            let _ = app.ended.send(Ended {
                who,
                result: result.as_ref().map(|_| ()).map_err(|e| e.context_error()),
            });
            result
        })
        .detach();
    match job.await {
        Ok(Ok(())) => (StatusCode::OK, "report committed".to_owned()),
        Ok(Err(err)) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

/// The task: BEGIN; INSERT; the slow query; COMMIT, all under `ctx`.
async fn write_report(app: &App, ctx: &Context, who: &str) -> Result<(), postgres::Error> {
    let mut db = app.db.connect().await?;
    let pid: i32 = db.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    let tx = db.transaction_ctx(ctx).await?;
    tx.execute(
        &format!("INSERT INTO {TABLE} (client) VALUES ($1)"),
        &[&who],
    )
    .await?;
    app.log.line(
        who,
        format!("task: BEGIN; INSERT; {QUERY} on backend {pid}"),
    );
    let outcome = async {
        tx.query(QUERY, &[]).await?;
        tx.commit().await
    }
    .await;
    match &outcome {
        Ok(()) => app.log.line(who, "task: COMMIT: row committed"),
        Err(err) => {
            let cause = match ctx.cause() {
                Some(c) if c.is::<ClientDisconnected>() => " (cause: client disconnected)",
                _ => "",
            };
            app.log.line(
                who,
                format!("task: STOPPED: {err}{cause}; rolled back, nothing committed"),
            );
            let monitor = app.db.connect().await?;
            let row = monitor
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query = $2 AND state = 'active'",
                    &[&pid, &QUERY],
                )
                .await?;
            let running: i64 = row.get(0);
            app.log.line(
                "",
                format!(
                    "postgres: backend {pid} {}",
                    if running == 0 {
                        "no longer runs the query (cancelled on the server)"
                    } else {
                        "STILL runs the query"
                    }
                ),
            );
        }
    }
    outcome
}

async fn wait_end(ended: &mut mpsc::UnboundedReceiver<Ended>, who: &str) -> Ended {
    loop {
        let end = ended.recv().await.expect("tasks report their end");
        if end.who == who {
            return end;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let server = match Server::get() {
        Ok(server) => Arc::new(server),
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let setup = match server.connect().await {
        Ok(client) => client,
        Err(err) => {
            eprintln!("cannot connect to {}: {err}", server.url());
            return ExitCode::FAILURE;
        }
    };
    setup
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} (id serial PRIMARY KEY, client text NOT NULL)"
        ))
        .await
        .expect("create the table");

    let log = Arc::new(Log(Instant::now()));
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let tracker = TaskTracker::new();
    let (root, shutdown) = Context::background().with_cancel();
    let app = App {
        db: Arc::clone(&server),
        log: Arc::clone(&log),
        ended: ended_tx,
        tracker: tracker.clone(),
    };
    let router = Router::new()
        .route("/report", get(report))
        .with_state(app)
        .layer(CtxLayer::new(root).tracker(tracker.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("http://{addr}/report");
    let http = reqwest::Client::new();
    println!(
        "PostgreSQL at {} ({}), our service on {addr}; the report query takes 800 ms\n",
        server.url(),
        if server.is_throwaway() {
            "a throwaway cluster"
        } else {
            "DATABASE_URL"
        }
    );

    // Client 1 waits.
    log.line("client 1", "GET /report, and waits");
    let response = http.get(&url).header("x-client", "client 1").send().await;
    let status = response
        .map(|r| r.status().to_string())
        .unwrap_or_else(|e| e.to_string());
    log.line("client 1", format!("got {status}"));
    let client_1 = wait_end(&mut ended, "client 1").await;
    println!();

    // Client 2 closes the tab.
    log.line(
        "client 2",
        format!("GET /report, gives up after {CLIENT_2_PATIENCE:?}"),
    );
    let request = http.get(&url).header("x-client", "client 2").send();
    if tokio::time::timeout(CLIENT_2_PATIENCE, request)
        .await
        .is_err()
    {
        log.line(
            "client 2",
            "closes the tab (drops the request and its connection)",
        );
    }
    let client_2 = wait_end(&mut ended, "client 2").await;
    println!();

    // Client 3 allows 200 ms.
    log.line("client 3", "GET /report with x-request-timeout: 200");
    let response = http
        .get(&url)
        .header("x-client", "client 3")
        .header("x-request-timeout", "200")
        .send()
        .await;
    let status = response
        .map(|r| r.status().to_string())
        .unwrap_or_else(|e| e.to_string());
    log.line("client 3", format!("got {status}"));
    let client_3 = wait_end(&mut ended, "client 3").await;
    println!();

    let rows: i64 = setup
        .query_one(&format!("SELECT count(*) FROM {TABLE}"), &[])
        .await
        .expect("count rows")
        .get(0);
    println!("rows committed in PostgreSQL: {rows} (expected 1: only client 1 stayed)");
    let _ = setup.batch_execute(&format!("DROP TABLE {TABLE}")).await;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;

    let ok = rows == 1
        && client_1.result.is_ok()
        && client_2.result == Err(Some(ctx_runtime::Error::Canceled))
        && client_3.result == Err(Some(ctx_runtime::Error::DeadlineExceeded));
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("unexpected outcome: rows={rows}");
        ExitCode::FAILURE
    }
}
