//! The async fns of `AwaitOverhead`, written once for the divan bench
//! (`await_overhead`) and the `instructions` harness: 1,000 awaits of ready
//! futures or of `tokio::task::yield_now()`, in four versions that differ
//! only in how each await is written:
//!
//! - `plain`: the fn without any cancellation (the baseline);
//! - `ctx`: the same fn under `#[ctx_runtime::cancellable]`;
//! - `select`: every await written by hand as
//!   `tokio::select! { biased; _ = token.cancelled() => return Err(..), v = fut => v }`,
//!   racing tokio-util's `CancellationToken` (what a tokio-util user writes);
//! - `run_until_cancelled`: every await as `token.run_until_cancelled(fut)`.
//!
//! plus `abortable`: the plain fn wrapped once in `futures::future::Abortable`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context as TaskContext, Poll, Waker};

use ctx_runtime::{CancelHandle, Context, Error};
use tokio_util::sync::CancellationToken;

/// Awaits per call.
pub const AWAITS: u64 = 1_000;

/// The current-thread runtime the calls run in.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    &RT
}

/// A live context (and a live token) that the calls watch.
pub fn live() -> &'static (Context, CancelHandle, CancellationToken) {
    static LIVE: LazyLock<(Context, CancelHandle, CancellationToken)> = LazyLock::new(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        (ctx, cancel, CancellationToken::new())
    });
    &LIVE
}

/// One version of the fn: the body is written out here, inside the fn that
/// the attribute sees (`#[cancellable]` does not look inside a macro call in
/// the body), and only `$wait`, how the future `$f` is awaited, differs.
macro_rules! define {
    ($(#[$attr:meta])* fn $name:ident($($params:tt)*), ready, |$f:ident| $wait:expr) => {
        $(#[$attr])*
        pub async fn $name($($params)*) -> Result<u64, Error> {
            let mut sum = 0u64;
            for i in 0..AWAITS {
                let $f = std::future::ready(black_box(i));
                let v: u64 = $wait;
                sum = sum.wrapping_add(v);
            }
            Ok(black_box(sum))
        }
    };
    ($(#[$attr:meta])* fn $name:ident($($params:tt)*), yield_now, |$f:ident| $wait:expr) => {
        $(#[$attr])*
        pub async fn $name($($params)*) -> Result<u64, Error> {
            let mut sum = 0u64;
            for i in 0..AWAITS {
                let $f = tokio::task::yield_now();
                let () = $wait;
                sum = sum.wrapping_add(black_box(i));
            }
            Ok(black_box(sum))
        }
    };
}

macro_rules! versions {
    ($kind:ident, $plain:ident, $cancellable:ident, $select:ident, $until:ident) => {
        define!(#[allow(unused_variables)] fn $plain(ctx: &Context), $kind, |fut| fut.await);
        define!(#[ctx_runtime::cancellable] fn $cancellable(ctx: &Context), $kind, |fut| fut.await);
        define!(fn $select(token: &CancellationToken), $kind, |fut| tokio::select! {
            biased;
            _ = token.cancelled() => return Err(Error::Canceled),
            v = fut => v,
        });
        define!(fn $until(token: &CancellationToken), $kind, |fut| match token
            .run_until_cancelled(fut)
            .await
        {
            Some(v) => v,
            None => return Err(Error::Canceled),
        });
    };
}

versions!(ready, ready_plain, ready_ctx, ready_select, ready_until);
versions!(yield_now, yield_plain, yield_ctx, yield_select, yield_until);

/// The lower bound for a wrapped call: checks once per poll of the whole fn.
pub async fn abortable<F: Future<Output = Result<u64, Error>>>(fut: F) -> Result<u64, Error> {
    let (_handle, registration) = futures::future::AbortHandle::new_pair();
    match futures::future::Abortable::new(fut, registration).await {
        Ok(result) => result,
        Err(futures::future::Aborted) => Err(Error::Canceled),
    }
}

/// Polls a call that never suspends exactly once, inside the runtime.
#[inline(always)]
pub fn run_ready<F: Future<Output = Result<u64, Error>>>(fut: F) -> u64 {
    let _rt = runtime().enter();
    let fut = pin!(fut);
    let mut cx = TaskContext::from_waker(Waker::noop());
    match fut.poll(&mut cx) {
        Poll::Ready(Ok(v)) => v,
        other => panic!("a call of ready awaits suspended or failed: {other:?}"),
    }
}
