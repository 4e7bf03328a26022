// Free functions of every supported shape, with no warning.
#![deny(warnings)]

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use ctx_runtime::{AsContext, Context, Error, cancellable};

#[cancellable]
async fn plain(ctx: &Context) -> Result<(), Error> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable]
pub(crate) async fn visible(ctx: &Context, n: u32) -> Result<u32, Error> {
    Ok(n)
}

#[cancellable]
pub async fn generic<'a, T, U: Clone>(
    ctx: &'a Context,
    items: &'a [T],
    extra: U,
) -> Result<Vec<(&'a T, U)>, Error>
where
    T: Display + Sync,
    U: Send,
{
    let mut out = Vec::new();
    for item in items {
        tokio::task::yield_now().await;
        out.push((item, extra.clone()));
    }
    Ok(out)
}

#[cancellable]
async fn impl_trait_args(
    ctx: &Context,
    show: impl Display,
    each: impl Fn(u32) -> u32,
) -> Result<String, Error> {
    tokio::task::yield_now().await;
    Ok(format!("{show}{}", each(1)))
}

#[cancellable]
async fn by_value(ctx: Context) -> Result<Context, Error> {
    tokio::task::yield_now().await;
    Ok(ctx)
}

#[cancellable]
async fn mut_by_value(mut ctx: Context) -> Result<(), Error> {
    tokio::task::yield_now().await;
    ctx = ctx.with_value(1u8);
    drop(ctx);
    Ok(())
}

#[cancellable]
async fn arc(ctx: Arc<Context>) -> Result<(), Error> {
    tokio::task::yield_now().await;
    Ok(())
}

struct Request {
    ctx: Context,
}

impl AsContext for Request {
    fn as_context(&self) -> &Context {
        &self.ctx
    }
}

#[cancellable]
async fn own_type(ctx: &Request) -> Result<(), Error> {
    tokio::task::yield_now().await;
    Ok(())
}

type Ctx = Context;
type Res<T> = Result<T, Error>;

#[cancellable]
async fn aliases(ctx: &Ctx) -> Res<()> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable]
async fn generic_ctx<C: AsContext>(ctx: &C) -> Result<(), Error> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable]
async fn opaque_value(ctx: &Context) -> Result<impl Display, Error> {
    tokio::task::yield_now().await;
    Ok(1)
}

#[cancellable]
async fn no_awaits(ctx: &Context) -> Result<u8, Error> {
    Ok(1)
}

#[cancellable]
fn sync(ctx: &Context, n: u32) -> Result<u32, Error> {
    Ok(n)
}

#[cancellable(timeout = "1.5s")]
fn sync_with_timeout(ctx: &Context) -> Result<bool, Error> {
    Ok(ctx.deadline().is_some())
}

#[cancellable]
fn returns_future(ctx: &Context, n: u32) -> impl Future<Output = Result<u32, Error>> + Send + '_ {
    let doubled = n * 2;
    async move {
        tokio::task::yield_now().await;
        let _ = ctx;
        Ok(doubled)
    }
}

#[cancellable(timeout = "250ms")]
async fn timeout_by_ref(ctx: &Context) -> Result<(), Error> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable(timeout = "2m")]
async fn timeout_unused_ctx(ctx: Context) -> Result<(), Error> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable(timeout = "1h")]
async fn timeout_mut(mut ctx: Context) -> Result<(), Error> {
    ctx = ctx.with_value(2u16);
    tokio::task::yield_now().await;
    assert_eq!(ctx.value::<u16>(), Some(&2));
    Ok(())
}

#[cancellable]
async unsafe fn unsafe_fn(ctx: &Context) -> Result<(), Error> {
    tokio::task::yield_now().await;
    Ok(())
}

fn assert_send<T: Send>(_: T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::background();
    plain(&ctx).await.unwrap();
    assert_eq!(visible(&ctx, 2).await, Ok(2));
    assert_eq!(generic(&ctx, &[1, 2], "x").await.unwrap().len(), 2);
    assert_eq!(impl_trait_args(&ctx, "n=", |n| n + 1).await.unwrap(), "n=2");
    by_value(ctx.clone()).await.unwrap();
    mut_by_value(ctx.clone()).await.unwrap();
    arc(Arc::new(ctx.clone())).await.unwrap();
    own_type(&Request { ctx: ctx.clone() }).await.unwrap();
    aliases(&ctx).await.unwrap();
    generic_ctx(&ctx).await.unwrap();
    assert_eq!(opaque_value(&ctx).await.unwrap().to_string(), "1");
    assert_eq!(no_awaits(&ctx).await, Ok(1));
    assert_eq!(sync(&ctx, 3), Ok(3));
    assert_eq!(sync_with_timeout(&ctx), Ok(true));
    assert_eq!(returns_future(&ctx, 4).await, Ok(8));
    timeout_by_ref(&ctx).await.unwrap();
    timeout_unused_ctx(ctx.clone()).await.unwrap();
    timeout_mut(ctx.clone()).await.unwrap();
    unsafe { unsafe_fn(&ctx) }.await.unwrap();

    assert_send(plain(&ctx));
    assert_send(generic(&ctx, &[1], 1));
    assert_send(returns_future(&ctx, 1));
    assert_send(timeout_by_ref(&ctx));
    assert_send(by_value(ctx.clone()));

    let (cancelled, cancel) = ctx.with_cancel();
    cancel.cancel();
    assert_eq!(plain(&cancelled).await, Err(Error::Canceled));
    assert_eq!(no_awaits(&cancelled).await, Err(Error::Canceled));
    assert_eq!(sync(&cancelled, 1), Err(Error::Canceled));
    assert_eq!(returns_future(&cancelled, 1).await, Err(Error::Canceled));
}
