//! A tree of tasks under one request context, cancelled three ways:
//! the client leaves, a deadline passes, the server shuts down.
//!
//! Run it with `cargo run -p ctx-runtime --example cancel_tree`.

use std::time::Duration;

use ctx_runtime::{Context, Error, Instant};
use tokio::task::JoinSet;

/// Prints a line of the timeline, with the time since the demo started.
fn log(start: Instant, who: &str, what: impl std::fmt::Display) {
    println!("{:>6.0?}  {who:<22} {what}", start.elapsed());
}

/// Work that takes `secs` unless its context ends first.
async fn slow_step(ctx: &Context, start: Instant, who: &str, took: Duration) -> Result<(), Error> {
    log(start, who, format!("started ({took:?} of work)"));
    match ctx.run(tokio::time::sleep(took)).await {
        Ok(()) => {
            log(start, who, "finished");
            Ok(())
        }
        Err(err) => {
            let cause = ctx.cause().map(|c| c.to_string()).unwrap_or_default();
            log(start, who, format!("STOPPED: {err} (cause: {cause})"));
            Err(err)
        }
    }
}

/// A request handler: three tasks under one child context of the request.
fn handle(request: &Context, start: Instant, name: &'static str, tasks: &mut JoinSet<()>) {
    let steps = [
        ("fetch upstream", Duration::from_millis(800)),
        ("render page", Duration::from_millis(50)),
        ("write audit row", Duration::from_millis(600)),
    ];
    for (step, took) in steps {
        let ctx = request.clone();
        let who = format!("{name}/{step}");
        tasks.spawn(async move {
            let _ = slow_step(&ctx, start, &who, took).await;
        });
    }
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    println!("  time  task                   event");
    let (server, shutdown) = Context::background().with_cancel();
    let mut tasks = JoinSet::new();

    // 1. The client closes the tab after 100 ms: its request context is
    //    cancelled with a cause, and every task under it stops at once.
    let (req1, client_gone) = server.with_cancel();
    handle(&req1, start, "req1", &mut tasks);
    tokio::time::sleep(Duration::from_millis(100)).await;
    log(start, "req1", "client disconnected -> cancel_with_cause");
    client_gone.cancel_with_cause("client disconnected");

    // 2. A request with a 300 ms budget: the slow steps hit the deadline.
    let (req2, _req2_done) = server.with_timeout(Duration::from_millis(300));
    log(start, "req2", "arrives with a 300ms deadline");
    handle(&req2, start, "req2", &mut tasks);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(req2.err(), Some(Error::DeadlineExceeded));

    // 3. A request in flight when the server shuts down: cancelling the root
    //    cancels it too, and after_func runs the cleanup.
    let (req3, _req3_done) = server.with_cancel();
    let (cleaned_tx, cleaned_rx) = tokio::sync::oneshot::channel();
    let _cleanup = req3.after_func(move || {
        let _ = cleaned_tx.send(());
    });
    handle(&req3, start, "req3", &mut tasks);
    tokio::time::sleep(Duration::from_millis(100)).await;
    log(start, "server", "shutting down -> cancel the root");
    shutdown.cancel_with_cause("server shutting down");

    while tasks.join_next().await.is_some() {}
    cleaned_rx.await.expect("after_func ran");
    log(start, "req3", "after_func cleanup ran");
    println!();
    println!("req1: {:?}", req1);
    println!("req2: {:?}", req2);
    println!("req3: {:?}", req3);
    println!(
        "demo over after {:?}: no task outlived its context",
        start.elapsed()
    );
}
