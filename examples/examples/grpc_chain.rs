//! Three gRPC services, A -> B -> C (tonic), each with `CtxLayer` on its
//! server and `ctx_runtime::tonic::request` on its client: the deadline
//! travels as `grpc-timeout` and shrinks hop by hop, and when the caller
//! leaves, every hop stops. First with time to spare, then with a budget too
//! small for three hops, then with a caller that gives up while C is still
//! busy.
//!
//! Run it with `cargo run --example grpc_chain`.

use std::process::ExitCode;
use std::time::Duration;

use ctx_examples::hop::{self, Events, HopRequest, Log};
use ctx_runtime::{Context, Instant};
use tokio::sync::mpsc;

/// Each hop works this long before calling the next.
const WORK_MS: u32 = 50;

#[tokio::main]
async fn main() -> ExitCode {
    let start = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let first = hop::start_chain(Log::since(start).events(tx))
        .await
        .expect("start the chain");
    let mut events = Events::from(rx);

    println!("call 1: a 1 s budget, {WORK_MS} ms of work per hop");
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(1));
    let ok = match hop::call_chain(&ctx, first, WORK_MS).await {
        Ok(reply) => {
            println!("\n  hop  received     spent       sent");
            for h in &reply.hops {
                println!(
                    "  {:<4} {:<12} {:>6.1} ms   {}",
                    h.name,
                    h.received,
                    h.spent_us as f64 / 1000.0,
                    if h.sent.is_empty() { "-" } else { &h.sent }
                );
            }
            reply.hops.len() == 3
        }
        Err(status) => {
            println!("unexpected: {status:?}");
            false
        }
    };

    println!("\ncall 2: a 120 ms budget, {WORK_MS} ms of work per hop (it runs out on the way)");
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(120));
    let failed = match hop::call_chain(&ctx, first, WORK_MS).await {
        Ok(reply) => {
            println!("unexpected success: {reply:?}");
            false
        }
        Err(status) => {
            println!(
                "{:>6} ms  caller  got {:?}: {}",
                start.elapsed().as_millis(),
                status.code(),
                status.message()
            );
            status.code() == tonic::Code::DeadlineExceeded
        }
    };

    // Let the hops print how they stopped (a demo's pause for its output,
    // not synchronisation: which hop runs out first depends on the time
    // each request spends on the wire).
    tokio::time::sleep(Duration::from_millis(50)).await;
    events.clear();

    println!("\ncall 3: no deadline, C holds; the caller leaves once C has started");
    let (ctx, leave) = Context::background().with_cancel();
    let hold = HopRequest {
        work_ms: 0,
        hold_last: true,
    };
    let call = tokio::spawn(async move { hop::call_chain_with(&ctx, first, hold).await });
    events.started("C").await;
    println!("{:>6} ms  caller  leaves", start.elapsed().as_millis());
    leave.cancel_with_cause("the caller left");
    let left = matches!(call.await, Ok(Err(status)) if status.code() == tonic::Code::Cancelled);
    for _ in 0..3 {
        events.stopped().await;
    }

    if ok && failed && left {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
