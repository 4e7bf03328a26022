use ctx_runtime::{Error, cancellable};

#[cancellable]
async fn fetch() -> Result<(), Error> {
    Ok(())
}

fn main() {}
