use ctx_runtime::{cancellable, Context};

#[cancellable]
async fn fetch(ctx: &Context, id: u32) -> () {
    println!("{id}");
}

fn main() {}
