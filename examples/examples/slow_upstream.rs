//! The story, with real parts: a slow upstream, our axum service with
//! `CtxLayer`, a task per request that fetches with reqwest and writes to
//! SQLite, and three clients: one waits, one leaves, one sets a deadline.
//!
//! Run it with `cargo run --example slow_upstream`.

use std::process::ExitCode;
use std::time::Duration;

use ctx_examples::demo::{self, Answer, App, CLIENT_HEADER, Event, Mode, Server};
use ctx_runtime::Error;

/// How long the upstream takes to answer.
const UPSTREAM_DELAY: Duration = Duration::from_millis(800);
/// When client 2 gives up.
const CLIENT_2_PATIENCE: Duration = Duration::from_millis(300);

#[tokio::main]
async fn main() -> ExitCode {
    let (timeline, mut events) = demo::timeline(true);
    let upstream = demo::start_upstream(Answer::After(UPSTREAM_DELAY), timeline.clone())
        .await
        .expect("start the upstream");
    let app = App::new(upstream, timeline.clone()).expect("open SQLite");
    let server = Server::start(&app, Mode::WithCtxLayer)
        .await
        .expect("start our service");
    let url = format!("http://{}/report", server.addr);
    let http = reqwest::Client::new();

    println!(
        "upstream on {upstream} (answers after {UPSTREAM_DELAY:?}), our service on {}\n",
        server.addr
    );

    // Client 1 waits for its data.
    timeline.client("client 1", "GET /report, and waits");
    let response = http
        .get(&url)
        .header(CLIENT_HEADER, "client 1")
        .send()
        .await
        .expect("client 1's request");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    timeline.client("client 1", format!("got {status}: {body:?}"));
    println!();

    // Client 2 closes the tab: its request future is dropped mid-request,
    // which closes its connection.
    timeline.client(
        "client 2",
        format!("GET /report, gives up after {CLIENT_2_PATIENCE:?}"),
    );
    let request = http.get(&url).header(CLIENT_HEADER, "client 2").send();
    if tokio::time::timeout(CLIENT_2_PATIENCE, request)
        .await
        .is_err()
    {
        timeline.client(
            "client 2",
            "closes the tab (drops the request and its connection)",
        );
    }
    let stopped = events
        .wait_for("client 2", "the task stopping", |e| {
            matches!(e, Event::TaskStopped { .. } | Event::RowWritten { .. })
        })
        .await;
    events
        .wait_for("client 2", "the upstream call released", |e| {
            matches!(
                e,
                Event::UpstreamDropped { .. } | Event::UpstreamAnswered { .. }
            )
        })
        .await;
    println!();

    // Client 3 allows 200 ms.
    timeline.client("client 3", "GET /report with x-request-timeout: 200");
    let response = http
        .get(&url)
        .header(CLIENT_HEADER, "client 3")
        .header("x-request-timeout", "200")
        .send()
        .await
        .expect("client 3's request");
    timeline.client("client 3", format!("got {}", response.status()));
    let timed_out = events
        .wait_for("client 3", "the task stopping", |e| {
            matches!(e, Event::TaskStopped { .. } | Event::RowWritten { .. })
        })
        .await;
    events
        .wait_for("client 3", "the upstream call released", |e| {
            matches!(
                e,
                Event::UpstreamDropped { .. } | Event::UpstreamAnswered { .. }
            )
        })
        .await;
    println!();

    let rows = app.rows();
    println!("rows in SQLite: {rows} (expected 1: only client 1 stayed)");
    server.shutdown().await.expect("shut down");

    let client_2_ok = matches!(&stopped, Event::TaskStopped { err: Error::Canceled, cause, .. }
        if demo::is_client_disconnected(cause.as_ref()));
    let client_3_ok = matches!(
        timed_out,
        Event::TaskStopped {
            err: Error::DeadlineExceeded,
            ..
        }
    );
    if rows == 1 && client_2_ok && client_3_ok {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "unexpected outcome: rows={rows}, client 2: {stopped:?}, client 3: {timed_out:?}"
        );
        ExitCode::FAILURE
    }
}
