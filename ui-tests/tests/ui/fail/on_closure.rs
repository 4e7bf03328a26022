use ctx_runtime::{Context, Error, cancellable};

fn main() {
    let fetch = #[cancellable]
    async |ctx: &Context| -> Result<(), Error> { Ok(()) };
    let _ = fetch;
}
