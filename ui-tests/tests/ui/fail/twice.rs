use ctx_runtime::{Context, Error, cancellable};

#[cancellable]
#[cancellable(timeout = "1s")]
async fn fetch(ctx: &Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
