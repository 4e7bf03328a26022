use ctx_runtime::{cancellable, Context, Error};

#[cancellable]
async fn fetch(context: &Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
