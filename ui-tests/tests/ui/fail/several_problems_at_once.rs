// Every problem of a signature is reported in the same compile.
use ctx_runtime::{Context, cancellable};

#[cancellable(timeout = "soon")]
async fn fetch(id: u32, ctx: &mut Context) {
    println!("{id}");
}

fn main() {}
