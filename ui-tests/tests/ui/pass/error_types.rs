// Every error type with `From<ctx_runtime::Error>` works.
#![deny(warnings)]

use ctx_runtime::{Context, Error, cancellable};

#[derive(Debug)]
enum AppError {
    Context(Error),
}

impl From<Error> for AppError {
    fn from(err: Error) -> Self {
        AppError::Context(err)
    }
}

#[cancellable]
async fn own_error(ctx: &Context) -> Result<(), AppError> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable]
async fn context_error(ctx: &Context) -> Result<(), ctx_runtime::Error> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable]
async fn io_error(ctx: &Context) -> std::io::Result<()> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable]
async fn anyhow_error(ctx: &Context) -> anyhow::Result<()> {
    tokio::task::yield_now().await;
    Ok(())
}

#[cancellable]
async fn boxed_error(ctx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tokio::task::yield_now().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert!(matches!(
        own_error(&ctx).await,
        Err(AppError::Context(Error::Canceled))
    ));
    assert_eq!(context_error(&ctx).await, Err(Error::Canceled));
    assert!(io_error(&ctx).await.is_err());
    assert!(anyhow_error(&ctx).await.is_err());
    assert!(boxed_error(&ctx).await.is_err());
}
