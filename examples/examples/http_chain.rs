//! Three HTTP services, A -> B -> C (axum), each with `CtxLayer` on its
//! server and `send_ctx` on its client: the deadline travels as
//! `x-request-timeout` and shrinks hop by hop, and when the caller leaves,
//! every hop stops. First with time to spare, then with a budget too small
//! for three hops, then with a caller that gives up while C is still busy.
//!
//! Run it with `cargo run --example http_chain` (add `-- --http2` for
//! HTTP/2 between the hops).

use std::process::ExitCode;
use std::time::Duration;

use ctx_examples::hop::http::{self, Protocol, Work};
use ctx_examples::hop::{Events, Log};
use ctx_runtime::{Context, Instant};
use tokio::sync::mpsc;

/// Each hop works this long before calling the next.
const WORK_MS: u32 = 50;

#[tokio::main]
async fn main() -> ExitCode {
    let protocol = if std::env::args().any(|a| a == "--http2") {
        Protocol::Http2
    } else {
        Protocol::Http1
    };
    let start = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let first = http::start_chain(protocol, Log::since(start).events(tx))
        .await
        .expect("start the chain");
    let mut events = Events::from(rx);
    let client = http::client(protocol);
    println!("the hops speak {protocol:?}\n");

    println!("call 1: a 1 s budget, {WORK_MS} ms of work per hop");
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(1));
    let work = Work {
        work_ms: WORK_MS,
        hold_last: false,
    };
    let ok = match http::call_chain(&ctx, &client, first, work).await {
        Ok((status, body)) => {
            println!("\n  {status}\n{}", indent(&body));
            status == 200
        }
        Err(err) => {
            println!("unexpected: {err}");
            false
        }
    };

    println!("call 2: a 120 ms budget, {WORK_MS} ms of work per hop (it runs out on the way)");
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(120));
    let failed = match http::call_chain(&ctx, &client, first, work).await {
        Ok((status, body)) => {
            let at = start.elapsed().as_millis();
            println!("{at:>6} ms  caller  got {status}: {}\n", body.trim());
            status == 504
        }
        Err(err) => {
            let at = start.elapsed().as_millis();
            println!("{at:>6} ms  caller  gave up: {err}\n");
            err.context_error().is_some()
        }
    };
    // Let the hops print how they stopped (a demo's pause for its output,
    // not synchronisation: which hop runs out first depends on the time
    // each request spends on the wire).
    tokio::time::sleep(Duration::from_millis(50)).await;
    events.clear();

    println!("call 3: no deadline, C holds; the caller leaves once C has started");
    let (ctx, leave) = Context::background().with_cancel();
    let hold = Work {
        work_ms: 0,
        hold_last: true,
    };
    let call = tokio::spawn({
        let client = client.clone();
        async move { http::call_chain(&ctx, &client, first, hold).await }
    });
    events.started("C").await;
    println!("{:>6} ms  caller  leaves", start.elapsed().as_millis());
    leave.cancel_with_cause("the caller left");
    let left = matches!(call.await, Ok(Err(err)) if err.context_error().is_some());
    let mut stopped = 0;
    while stopped < 3 {
        events.stopped().await;
        stopped += 1;
    }

    if ok && failed && left {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
