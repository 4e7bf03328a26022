// When the item does not parse, it is emitted unchanged along with the
// error, so that the compiler (and an IDE) still sees the rest of it.
use ctx_runtime::{cancellable, Context, Error};

#[cancellable]
async fn fetch(ctx: &Context, id: u32) -> Result<u32, Error> {
    let n = id +;
    Ok(n)
}

fn main() {
    let _ = fetch;
}
