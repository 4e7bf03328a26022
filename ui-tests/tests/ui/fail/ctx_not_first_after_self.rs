use ctx_runtime::{Context, Error, cancellable};

struct Client;

impl Client {
    #[cancellable]
    async fn fetch(&self, id: u32, ctx: &Context) -> Result<u32, Error> {
        Ok(id)
    }
}

fn main() {}
