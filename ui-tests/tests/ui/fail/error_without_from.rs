use ctx_runtime::{Context, cancellable};

#[derive(Debug)]
enum FetchError {
    NotFound,
}

#[cancellable]
async fn fetch(ctx: &Context, id: u32) -> Result<u32, FetchError> {
    if id == 0 {
        return Err(FetchError::NotFound);
    }
    Ok(id)
}

fn main() {}
