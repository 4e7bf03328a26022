use ctx_runtime::{Context, Error, cancellable};

#[cancellable(timeout = "5 seconds")]
async fn fetch(ctx: &Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

#[cancellable(timeout = "500")]
async fn fetch_again(ctx: &Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

#[cancellable(timeout = 500)]
async fn fetch_once_more(ctx: &Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

fn main() {}
