use ctx_runtime::{cancellable, Context, Error};

#[cancellable]
async fn fetch(ctx: &mut Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
