use ctx_runtime::{Context, Error, cancellable};

#[cancellable]
async fn fetch(id: u32, ctx: &Context) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
