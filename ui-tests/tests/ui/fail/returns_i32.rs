use ctx_runtime::{cancellable, Context};

#[cancellable]
async fn fetch(ctx: &Context, id: u32) -> i32 {
    id as i32
}

fn main() {}
