use ctx_runtime::{Context, Error, cancellable};

#[cancellable(timout = "500ms")]
async fn fetch(ctx: &Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
