// Methods: `#[cancellable]` on a method, on an impl block, on a trait impl
// and on a trait with default bodies.
#![deny(warnings)]

use ctx_runtime::{Context, Error, cancellable};

struct Client {
    base: u32,
}

impl Client {
    #[cancellable]
    async fn get(&self, ctx: &Context, n: u32) -> Result<u32, Error> {
        tokio::task::yield_now().await;
        Ok(self.base + n)
    }

    #[cancellable]
    async fn consume(self, ctx: Context) -> Result<u32, Error> {
        tokio::task::yield_now().await;
        Ok(self.base)
    }

    #[cancellable]
    async fn associated(ctx: &Context) -> Result<Self, Error> {
        tokio::task::yield_now().await;
        Ok(Client { base: 1 })
    }

    #[cancellable]
    fn sync_method(&mut self, ctx: &Context) -> Result<(), Error> {
        self.base += 1;
        Ok(())
    }
}

struct Pool;

#[cancellable]
impl Pool {
    pub async fn acquire(&self, ctx: &Context) -> Result<u32, Error> {
        tokio::task::yield_now().await;
        Ok(1)
    }

    #[cancellable(timeout = "30s")]
    pub(crate) async fn acquire_within(&self, ctx: &Context) -> Result<u32, Error> {
        self.acquire(ctx).await
    }

    #[cancellable(skip)]
    async fn size(&self) -> usize {
        1
    }

    fn sync_without_ctx(&self) -> usize {
        2
    }

    fn sync_with_ctx_first(&self, ctx: &Context) -> bool {
        ctx.is_done()
    }

    #[cancellable]
    fn sync_opted_in(&self, ctx: &Context) -> Result<(), Error> {
        Ok(())
    }

    const LIMIT: usize = 4;
}

trait Storage {
    async fn load(&self, ctx: &Context, key: &str) -> Result<String, Error>;
}

struct Memory;

#[cancellable]
impl Storage for Memory {
    async fn load(&self, ctx: &Context, key: &str) -> Result<String, Error> {
        tokio::task::yield_now().await;
        Ok(key.to_owned())
    }
}

struct Disk;

impl Storage for Disk {
    #[cancellable(timeout = "1s")]
    async fn load(&self, ctx: &Context, key: &str) -> Result<String, Error> {
        tokio::task::yield_now().await;
        Ok(key.to_uppercase())
    }
}

#[cancellable]
trait Retry {
    async fn attempt(&self, ctx: &Context) -> Result<u32, Error>;

    async fn retry(&self, ctx: &Context, times: u32) -> Result<u32, Error> {
        let mut last = 0;
        for _ in 0..times {
            last = self.attempt(ctx).await?;
            tokio::task::yield_now().await;
        }
        Ok(last)
    }

    #[cancellable(skip)]
    async fn name(&self) -> &'static str {
        "retry"
    }

    fn helper(&self) -> u32 {
        0
    }
}

impl Retry for Memory {
    async fn attempt(&self, _ctx: &Context) -> Result<u32, Error> {
        Ok(3)
    }
}

trait Declared {
    // A declaration: the signature is checked, there is nothing to rewrite.
    #[cancellable]
    async fn declared(&self, ctx: &Context) -> Result<bool, Error>;
}

// Options on the block are the default of its methods.
#[cancellable(timeout = "1s")]
impl Declared for Pool {
    async fn declared(&self, ctx: &Context) -> Result<bool, Error> {
        tokio::task::yield_now().await;
        Ok(ctx.deadline().is_some())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::background();
    let mut client = Client::associated(&ctx).await.unwrap();
    assert_eq!(client.get(&ctx, 1).await, Ok(2));
    client.sync_method(&ctx).unwrap();
    assert_eq!(client.consume(ctx.clone()).await, Ok(2));

    let pool = Pool;
    assert_eq!(pool.acquire(&ctx).await, Ok(1));
    assert_eq!(pool.acquire_within(&ctx).await, Ok(1));
    assert_eq!(pool.size().await + pool.sync_without_ctx() + Pool::LIMIT, 7);
    assert!(!pool.sync_with_ctx_first(&ctx));
    pool.sync_opted_in(&ctx).unwrap();
    assert_eq!(pool.declared(&ctx).await, Ok(true));

    assert_eq!(Memory.load(&ctx, "k").await.unwrap(), "k");
    assert_eq!(Disk.load(&ctx, "k").await.unwrap(), "K");
    assert_eq!(Memory.retry(&ctx, 2).await, Ok(3));
    assert_eq!(Memory.name().await, "retry");
    assert_eq!(Memory.helper(), 0);

    let (cancelled, cancel) = ctx.with_cancel();
    cancel.cancel();
    assert_eq!(Memory.retry(&cancelled, 2).await, Err(Error::Canceled));
    assert_eq!(pool.acquire(&cancelled).await, Err(Error::Canceled));
}
