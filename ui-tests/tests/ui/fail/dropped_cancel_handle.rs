// `let (x, _) = parent.with_cancel()` drops the handle, which cancels `x`
// at once: an error inside a `#[cancellable]` fn, closures and blocks included.
use std::time::Duration;

use ctx_runtime::{Context, Error, cancellable};

async fn work(_: &Context) {}

#[cancellable]
async fn fetch(ctx: &Context) -> Result<(), Error> {
    let (child, _) = ctx.with_cancel();
    work(&child).await;
    let spawned = async {
        let (quick, ..) = ctx.with_timeout(Duration::from_millis(100));
        work(&quick).await;
    };
    ctx.run(spawned).await?;
    Ok(())
}

fn main() {}
