use ctx_runtime::{Context, Error, cancellable};

// `skip` is for a method of a `#[cancellable]` impl block or trait.
#[cancellable(skip)]
async fn fetch(ctx: &Context, id: u32) -> Result<u32, Error> {
    Ok(id)
}

struct Client;

#[cancellable(skip)]
impl Client {
    async fn get(&self, ctx: &Context) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
