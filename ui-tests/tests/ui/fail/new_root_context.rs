// A fn that has `ctx` must not start a new root: its work would outlive the
// caller's cancellation and deadline (Go's contextcheck).
use ctx_runtime::{Context, Error, cancellable};

async fn work(_: &Context) {}

#[cancellable]
async fn fetch(ctx: &Context) -> Result<(), Error> {
    work(&Context::background()).await;
    let other = ctx_runtime::Context::todo();
    work(&other).await;
    Ok(())
}

fn main() {}
