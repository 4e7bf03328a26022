//! Three gRPC services, A -> B -> C (tonic), each with `CtxLayer` on its
//! server and `ctx_runtime::tonic::request` on its client: the deadline
//! travels as `grpc-timeout` and shrinks hop by hop. First with time to
//! spare, then with a budget too small for three hops.
//!
//! Run it with `cargo run --example grpc_chain`.

use std::process::ExitCode;
use std::time::Duration;

use ctx_examples::hop::{self, Log};
use ctx_runtime::{Context, Instant};

/// Each hop works this long before calling the next.
const WORK_MS: u32 = 50;

#[tokio::main]
async fn main() -> ExitCode {
    let start = Instant::now();
    let first = hop::start_chain(Log::since(start))
        .await
        .expect("start the chain");

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

    println!("\ncall 2: a 120 ms budget, {WORK_MS} ms of work per hop (C runs out)");
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

    // Let the hops print how they stopped before the process exits (a demo's
    // pause for its output, not synchronisation).
    tokio::time::sleep(Duration::from_millis(50)).await;

    if ok && failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
