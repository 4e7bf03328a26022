use ctx_runtime::{Error, cancellable};

#[cancellable]
async fn fetch(ctx: String, id: u32) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
