// The body keeps its spans: the compiler's own errors point at the user's
// code, as they would without `#[cancellable]`.
use ctx_runtime::{Context, Error, cancellable};

async fn count() -> u64 {
    7
}

#[cancellable]
async fn wrong_type(ctx: &Context) -> Result<u32, Error> {
    let n: u32 = count().await;
    Ok(n)
}

#[cancellable]
async fn not_a_future(ctx: &Context, n: u32) -> Result<u32, Error> {
    let m = n.await;
    Ok(m)
}

fn main() {}
