// `#[cancellable]` above `#[async_trait]` sees the `async fn`s.
#![deny(warnings)]

use async_trait::async_trait;
use ctx_runtime::{Context, Error, cancellable};

#[async_trait]
trait Fetch {
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, Error>;
}

struct Client;

#[cancellable]
#[async_trait]
impl Fetch for Client {
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, Error> {
        tokio::task::yield_now().await;
        Ok(id)
    }
}

#[cancellable]
#[async_trait]
trait Warm: Sync {
    async fn warm(&self, ctx: Context) -> Result<(), Error> {
        tokio::task::yield_now().await;
        Ok(())
    }

    #[cancellable(timeout = "100ms")]
    async fn warm_quickly(&self, ctx: &Context) -> Result<bool, Error> {
        tokio::task::yield_now().await;
        Ok(ctx.deadline().is_some())
    }
}

impl Warm for Client {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::background();
    let client: Box<dyn Fetch + Send + Sync> = Box::new(Client);
    assert_eq!(client.fetch(&ctx, 5).await, Ok(5));
    Client.warm(ctx.clone()).await.unwrap();
    assert_eq!(Client.warm_quickly(&ctx).await, Ok(true));

    let (cancelled, cancel) = ctx.with_cancel();
    cancel.cancel();
    assert_eq!(client.fetch(&cancelled, 5).await, Err(Error::Canceled));
}
