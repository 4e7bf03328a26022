//! `#[cancellable]` on every supported shape of item, context type and
//! error type, each cancelled for real (the compile-only variants live in
//! `ui-tests/tests/ui/pass`).

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ctx_runtime::{AsContext, Context, Error, cancellable};

const HOUR: Duration = Duration::from_secs(3600);

fn cancelled() -> Context {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    ctx
}

fn assert_send<T: Send>(_: T) {}

/// Cancels `ctx` after a millisecond of (paused) time.
fn cancel_soon() -> Context {
    let (ctx, cancel) = Context::background().with_cancel();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        cancel.cancel();
    });
    ctx
}

struct Store {
    name: &'static str,
}

#[cancellable]
impl Store {
    async fn get(&self, ctx: &Context, key: u32) -> Result<String, Error> {
        tokio::time::sleep(HOUR).await;
        Ok(format!("{}:{key}", self.name))
    }

    #[cancellable(timeout = "10ms")]
    async fn get_quickly(&self, ctx: &Context, key: u32) -> Result<String, Error> {
        self.get(ctx, key).await
    }

    #[cancellable(skip)]
    async fn name(&self) -> &'static str {
        self.name
    }

    /// Sync methods are left alone unless marked.
    fn len(&self) -> usize {
        self.name.len()
    }

    #[cancellable]
    fn check_first(&self, ctx: &Context) -> Result<usize, Error> {
        Ok(self.len())
    }
}

#[tokio::test(start_paused = true)]
async fn an_impl_block_applies_to_each_async_method() {
    let store = Store { name: "s" };
    assert_eq!(store.get(&cancel_soon(), 1).await, Err(Error::Canceled));
    assert_eq!(
        store.get_quickly(&Context::background(), 1).await,
        Err(Error::DeadlineExceeded)
    );
    assert_eq!(store.name().await, "s");
    assert_eq!(store.check_first(&cancelled()), Err(Error::Canceled));
    assert_eq!(store.check_first(&Context::background()), Ok(1));
    assert_send(store.get(&Context::background(), 1));
}

/// A trait with `async fn`s, implemented under `#[cancellable]`.
trait Fetch {
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, Error>;
}

struct Slow;

#[cancellable]
impl Fetch for Slow {
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, Error> {
        tokio::time::sleep(HOUR).await;
        Ok(id)
    }
}

#[tokio::test(start_paused = true)]
async fn a_trait_impl_block() {
    assert_eq!(Slow.fetch(&cancel_soon(), 1).await, Err(Error::Canceled));
}

/// A trait whose default bodies are rewritten.
#[cancellable]
trait Poll {
    async fn poll_once(&self, ctx: &Context) -> Result<u32, Error>;

    async fn poll_forever(&self, ctx: &Context) -> Result<u32, Error> {
        let mut total = 0;
        while total < 1_000_000 {
            total += self.poll_once(ctx).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(total)
    }
}

struct Counter;

impl Poll for Counter {
    async fn poll_once(&self, _ctx: &Context) -> Result<u32, Error> {
        Ok(1)
    }
}

#[tokio::test(start_paused = true)]
async fn a_trait_with_default_bodies() {
    assert_eq!(
        Counter.poll_forever(&cancel_soon()).await,
        Err(Error::Canceled)
    );
}

/// `#[cancellable]` above `#[async_trait]`: it sees the `async fn`s.
#[async_trait]
trait Repo {
    async fn load(&self, ctx: &Context, id: u32) -> Result<String, Error>;
}

struct Db;

#[cancellable]
#[async_trait]
impl Repo for Db {
    async fn load(&self, ctx: &Context, id: u32) -> Result<String, Error> {
        tokio::time::sleep(HOUR).await;
        Ok(id.to_string())
    }
}

/// And on an `#[async_trait]` trait with a default body, with per-method options.
#[cancellable]
#[async_trait]
trait Cache {
    async fn warm(&self, ctx: Context) -> Result<(), Error> {
        tokio::time::sleep(HOUR).await;
        Ok(())
    }

    #[cancellable(timeout = "5ms")]
    async fn quick(&self, ctx: &Context) -> Result<(), Error> {
        tokio::time::sleep(HOUR).await;
        Ok(())
    }
}

impl Cache for Db {}

#[tokio::test(start_paused = true)]
async fn above_async_trait() {
    let repo: Box<dyn Repo + Send + Sync> = Box::new(Db);
    assert_eq!(repo.load(&cancel_soon(), 1).await, Err(Error::Canceled));
    assert_eq!(Db.warm(cancel_soon()).await, Err(Error::Canceled));
    assert_eq!(
        Db.quick(&Context::background()).await,
        Err(Error::DeadlineExceeded)
    );
}

/// Generics, `where` clauses, lifetimes, `impl Trait` arguments, visibility.
#[cancellable]
pub(crate) async fn generic<'a, T, F>(
    ctx: &'a Context,
    items: &'a [T],
    f: F,
    extra: impl Display,
) -> Result<Vec<String>, Error>
where
    T: Display + Sync,
    F: Fn(&T) -> String,
{
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        tokio::time::sleep(Duration::from_secs(1)).await;
        out.push(format!("{}{extra}", f(item)));
    }
    Ok(out)
}

#[tokio::test(start_paused = true)]
async fn generics_lifetimes_and_impl_trait_arguments() {
    let items = [1, 2];
    let ok = generic(&Context::background(), &items, |n| n.to_string(), "!").await;
    assert_eq!(ok, Ok(vec!["1!".to_owned(), "2!".to_owned()]));
    let cut = generic(&cancel_soon(), &items, |n| n.to_string(), "!").await;
    assert_eq!(cut, Err(Error::Canceled));
}

/// Anything `AsContext` can be `ctx`.
struct Request {
    ctx: Context,
}

impl AsContext for Request {
    fn as_context(&self) -> &Context {
        &self.ctx
    }
}

type Ctx = Context;

#[cancellable]
async fn arc_ctx(ctx: Arc<Context>) -> Result<(), Error> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[cancellable]
async fn request_ctx(ctx: &Request) -> Result<(), Error> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[cancellable]
async fn impl_ctx(ctx: impl AsContext) -> Result<(), Error> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[cancellable]
async fn generic_ctx<C: AsContext + ?Sized>(ctx: &C) -> Result<(), Error> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[cancellable]
async fn alias_ctx(ctx: &Ctx) -> Result<(), Error> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn context_types() {
    assert_eq!(arc_ctx(Arc::new(cancel_soon())).await, Err(Error::Canceled));
    assert_eq!(
        request_ctx(&Request { ctx: cancel_soon() }).await,
        Err(Error::Canceled)
    );
    assert_eq!(impl_ctx(cancel_soon()).await, Err(Error::Canceled));
    assert_eq!(generic_ctx(&cancel_soon()).await, Err(Error::Canceled));
    assert_eq!(alias_ctx(&cancel_soon()).await, Err(Error::Canceled));
}

/// Every error type with `From<ctx_runtime::Error>` works.
#[derive(Debug, PartialEq)]
enum AppError {
    Context(Error),
    #[allow(dead_code)]
    NotFound,
}

impl From<Error> for AppError {
    fn from(err: Error) -> Self {
        AppError::Context(err)
    }
}

#[cancellable]
async fn app_error(ctx: &Context) -> Result<(), AppError> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[cancellable]
async fn io_error(ctx: &Context) -> std::io::Result<()> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[cancellable]
async fn anyhow_error(ctx: &Context) -> anyhow::Result<()> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[cancellable]
async fn boxed_error(ctx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tokio::time::sleep(HOUR).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn error_types() {
    assert_eq!(
        app_error(&cancel_soon()).await,
        Err(AppError::Context(Error::Canceled))
    );

    let io = io_error(&cancel_soon()).await.unwrap_err();
    assert_eq!(
        io.get_ref().and_then(|e| e.downcast_ref::<Error>()),
        Some(&Error::Canceled)
    );

    let any = anyhow_error(&cancel_soon()).await.unwrap_err();
    assert_eq!(any.downcast_ref::<Error>(), Some(&Error::Canceled));

    let boxed = boxed_error(&cancel_soon()).await.unwrap_err();
    assert_eq!(boxed.downcast_ref::<Error>(), Some(&Error::Canceled));
}

/// `Result<impl Trait, E>` return types.
#[cancellable]
async fn opaque_ok(ctx: &Context) -> Result<impl Display, Error> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(5)
}

#[tokio::test(start_paused = true)]
async fn opaque_ok_types() {
    assert_eq!(
        opaque_ok(&Context::background()).await.unwrap().to_string(),
        "5"
    );
    assert!(opaque_ok(&cancel_soon()).await.is_err());
}

/// A fn returning `impl Future` through an `async` block: the watch is made
/// at the call and moved in, so with `ctx` by value the future is `'static`.
#[cancellable]
fn spawnable(ctx: Context, n: u32) -> impl Future<Output = Result<u32, Error>> + Send + 'static {
    let doubled = n * 2;
    async move {
        tokio::time::sleep(HOUR).await;
        Ok(doubled)
    }
}

#[cancellable(timeout = "20ms")]
fn spawnable_with_timeout(
    ctx: &Context,
) -> impl Future<Output = Result<bool, Error>> + Send + 'static {
    async {
        tokio::time::sleep(HOUR).await;
        Ok(true)
    }
}

#[tokio::test(start_paused = true)]
async fn impl_future_via_async_block() {
    let task = tokio::spawn(spawnable(cancel_soon(), 2));
    assert_eq!(task.await.unwrap(), Err(Error::Canceled));

    let start = tokio::time::Instant::now();
    let task = tokio::spawn(spawnable_with_timeout(&Context::background()));
    assert_eq!(task.await.unwrap(), Err(Error::DeadlineExceeded));
    assert_eq!(start.elapsed(), Duration::from_millis(20));
}
