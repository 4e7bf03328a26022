// Every problem of a fn in one compile: `ctx` out of place and a return
// type that cannot carry a cancellation are two errors, not one then the other.
use ctx_runtime::{Context, cancellable};

#[cancellable]
async fn fetch(id: u32, ctx: &Context) -> u32 {
    id
}

fn main() {}
