use std::future::Future;

use ctx_runtime::{Context, Error, cancellable};

async fn inner(id: u32) -> Result<u32, Error> {
    Ok(id)
}

#[cancellable]
fn fetch(ctx: &Context, id: u32) -> impl Future<Output = Result<u32, Error>> {
    inner(id)
}

fn main() {}
