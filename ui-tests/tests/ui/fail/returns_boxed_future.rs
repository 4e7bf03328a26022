// A future boxed by hand hides its awaits: the fix is an `async fn`, not a
// `Result` around the box.
use std::future::Future;
use std::pin::Pin;

use ctx_runtime::{Context, Error, cancellable};

#[cancellable]
fn fetch(ctx: &Context, id: u32) -> Pin<Box<dyn Future<Output = Result<u32, Error>> + Send + '_>> {
    Box::pin(async move { Ok(id) })
}

fn main() {}
