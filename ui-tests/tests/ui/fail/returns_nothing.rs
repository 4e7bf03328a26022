use ctx_runtime::{Context, cancellable};

#[cancellable]
async fn fetch(ctx: &Context, id: u32) {
    println!("{id}");
}

fn main() {}
