use ctx_runtime::{Context, Error, cancellable};

#[cancellable]
async fn fetch(context: &Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
