//! What watching a context costs per `.await`: one call of an async fn doing
//! 1,000 awaits of (a) ready futures (`std::future::ready`) and (b)
//! `tokio::task::yield_now()`, with a live context, in five versions:
//!
//! - `plain`: the fn without any cancellation (the baseline);
//! - `ctx`: the same fn under `#[ctx_runtime::cancellable]`;
//! - `select`: every await written by hand as
//!   `tokio::select! { biased; _ = token.cancelled() => return Err(..), v = fut => v }`
//!   on tokio-util's `CancellationToken` (what a tokio-util user writes
//!   instead of `#[cancellable]`);
//! - `run_until_cancelled`: every await as `token.run_until_cancelled(fut)`
//!   (tokio-util's `CancellationToken`);
//! - `abortable`: the plain fn wrapped once in `futures::future::Abortable`,
//!   the lower bound for a wrapped call (it checks once per poll of the
//!   whole fn, and cannot stop the fn between two ready awaits).
//!
//! The bodies are the same token for token (one macro in
//! `common/await_fns.rs` writes them all, for this bench and for the
//! `instructions` harness); only the await differs. `ready` futures complete in one poll, so those calls
//! are polled once inside the runtime's context with a no-op waker (a
//! `block_on` would add the same ~100 ns of harness time to every version;
//! it is measured apart as `harness_block_on`). `yield_now` needs the
//! scheduler: those calls run under `block_on` of a current-thread runtime.

#[path = "common/await_fns.rs"]
mod await_fns;
use await_fns::*;

use std::future::Future;
use std::hint::black_box;

use ctx_runtime::{Context, Error};
use divan::Bencher;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

fn run_blocking<F: Future<Output = Result<u64, Error>>>(fut: F) -> u64 {
    runtime().block_on(fut).expect("live context")
}

/// Checks that `#[cancellable]` really rewrote the awaits of the body (and
/// is not, say, a pass-through placeholder): a context cancelled while the
/// call is between two `yield_now` awaits stops it with `Err(Canceled)`
/// long before its 1,000th await. The plain version runs to the end.
fn assert_rewritten() {
    runtime().block_on(async {
        for (rewritten, expect_cancel) in [(true, true), (false, false)] {
            let (ctx, cancel) = Context::background().with_cancel();
            let call = tokio::spawn(async move {
                if rewritten {
                    yield_ctx(&ctx).await
                } else {
                    yield_plain(&ctx).await
                }
            });
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            cancel.cancel();
            let got = call.await.unwrap();
            assert_eq!(
                got.is_err(),
                expect_cancel,
                "rewritten={rewritten}: {got:?}"
            );
        }
    });
}

#[divan::bench_group(name = "AwaitOverhead")]
mod await_overhead {
    use super::*;

    #[divan::bench_group(name = "ready")]
    mod ready {
        use super::*;

        #[divan::bench]
        fn plain(b: Bencher) {
            let ctx = &live().0;
            b.bench(|| run_ready(ready_plain(black_box(ctx))));
        }

        #[divan::bench]
        fn ctx(b: Bencher) {
            assert_rewritten();
            let ctx = &live().0;
            b.bench(|| run_ready(ready_ctx(black_box(ctx))));
        }

        #[divan::bench]
        fn select(b: Bencher) {
            let token = &live().2;
            b.bench(|| run_ready(ready_select(black_box(token))));
        }

        #[divan::bench]
        fn run_until_cancelled(b: Bencher) {
            let token = &live().2;
            b.bench(|| run_ready(ready_until(black_box(token))));
        }

        #[divan::bench]
        fn abortable(b: Bencher) {
            let ctx = &live().0;
            b.bench(|| run_ready(await_fns::abortable(ready_plain(black_box(ctx)))));
        }
    }

    #[divan::bench_group(name = "yield_now")]
    mod yield_now {
        use super::*;

        #[divan::bench]
        fn plain(b: Bencher) {
            let ctx = &live().0;
            b.bench(|| run_blocking(yield_plain(black_box(ctx))));
        }

        #[divan::bench]
        fn ctx(b: Bencher) {
            let ctx = &live().0;
            b.bench(|| run_blocking(yield_ctx(black_box(ctx))));
        }

        #[divan::bench]
        fn select(b: Bencher) {
            let token = &live().2;
            b.bench(|| run_blocking(yield_select(black_box(token))));
        }

        #[divan::bench]
        fn run_until_cancelled(b: Bencher) {
            let token = &live().2;
            b.bench(|| run_blocking(yield_until(black_box(token))));
        }

        #[divan::bench]
        fn abortable(b: Bencher) {
            let ctx = &live().0;
            b.bench(|| run_blocking(await_fns::abortable(yield_plain(black_box(ctx)))));
        }
    }

    /// Not compared (listed under "Other"): the `yield_now` calls inside a
    /// spawned task (`block_on` of its JoinHandle) instead of `block_on` of
    /// the call itself. tokio's `block_on` hands the future a borrowed waker
    /// whose clone never `will_wake` the next poll's waker, so whatever keeps
    /// a waker across polls re-registers at every pending await there; in a
    /// task the waker stays the same.
    #[divan::bench_group(name = "yield_now_in_task")]
    mod yield_now_in_task {
        use super::*;

        fn in_task<F>(call: impl FnOnce(Context, CancellationToken) -> F + Send + 'static) -> u64
        where
            F: Future<Output = Result<u64, Error>> + Send + 'static,
        {
            let (ctx, _, token) = live();
            let (ctx, token) = (ctx.clone(), token.clone());
            let rt = runtime();
            rt.block_on(rt.spawn(async move { call(ctx, token).await }))
                .unwrap()
                .expect("live context")
        }

        #[divan::bench]
        fn plain(b: Bencher) {
            b.bench(|| in_task(|ctx, _| async move { yield_plain(&ctx).await }));
        }

        #[divan::bench]
        fn ctx(b: Bencher) {
            b.bench(|| in_task(|ctx, _| async move { yield_ctx(&ctx).await }));
        }

        #[divan::bench]
        fn select(b: Bencher) {
            b.bench(|| in_task(|_, token| async move { yield_select(&token).await }));
        }

        #[divan::bench]
        fn run_until_cancelled(b: Bencher) {
            b.bench(|| in_task(|_, token| async move { yield_until(&token).await }));
        }

        #[divan::bench]
        fn abortable(b: Bencher) {
            b.bench(|| {
                in_task(|ctx, _| async move { await_fns::abortable(yield_plain(&ctx)).await })
            });
        }
    }

    /// Not a comparison: `block_on` of a future that is ready at once, the
    /// harness time that `ready` leaves out and `yield_now` includes.
    #[divan::bench]
    fn harness_block_on(b: Bencher) {
        b.bench(|| runtime().block_on(std::future::ready(black_box(1u64))));
    }
}
