// A foreign error type cannot be given `From<ctx_runtime::Error>` here (the
// orphan rule): the message says what does work instead.
use ctx_runtime::{Context, cancellable};

#[cancellable]
async fn fetch(ctx: &Context, id: u32) -> Result<u32, String> {
    if id == 0 {
        return Err("no such id".to_owned());
    }
    Ok(id)
}

fn main() {}
