use ctx_runtime::{cancellable, Context, Error};

#[cancellable]
async fn fetch(id: u32, ctx: &Context) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
