use ctx_runtime::{Context, cancellable};

#[cancellable]
async fn fetch(ctx: &Context, id: u32) -> Option<u32> {
    Some(id)
}

fn main() {}
