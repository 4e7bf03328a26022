use ctx_runtime::{cancellable, Error};

#[cancellable]
async fn fetch() -> Result<(), Error> {
    Ok(())
}

fn main() {}
