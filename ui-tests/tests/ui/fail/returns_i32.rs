use ctx_runtime::{Context, cancellable};

#[cancellable]
async fn fetch(ctx: &Context, id: u32) -> i32 {
    id as i32
}

fn main() {}
