use ctx_runtime::{cancellable, Context, Error};

fn main() {
    let fetch = #[cancellable]
    async |ctx: &Context| -> Result<(), Error> { Ok(()) };
    let _ = fetch;
}
