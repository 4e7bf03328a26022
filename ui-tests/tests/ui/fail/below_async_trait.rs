use async_trait::async_trait;
use ctx_runtime::{Context, Error, cancellable};

#[async_trait]
trait Fetch {
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, Error>;
}

struct Client;

// Wrong order: `#[async_trait]` runs first and hides the `async fn`.
#[async_trait]
#[cancellable]
impl Fetch for Client {
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, Error> {
        Ok(id)
    }
}

struct Other;

#[async_trait]
impl Fetch for Other {
    // Same on a method: `#[async_trait]` on the impl ran first.
    #[cancellable]
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, Error> {
        Ok(id)
    }
}

fn main() {}
