//! Which awaits `#[cancellable]` rewrites: every await of the function's own
//! body, wherever it is (loops, `match` scrutinees, guards and arms, `let`
//! chains, `let ... else`, labeled blocks, macro arguments), and none inside
//! closures or `async` blocks.
//!
//! Each function below blocks on a [`Park`] (pending forever) at one place.
//! The harness waits until it is parked there, cancels, and expects
//! `Err(Canceled)` at once: that proves the await at that place was raced
//! against `ctx`. (Time is paused; an await that was not rewritten would
//! hang, and the harness's one-hour timeout would report it instead.)

use std::future::{Future, ready};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use ctx_runtime::{CancelHandle, Context, Error, cancellable};
use tokio::sync::oneshot;

/// A future that reports its first poll, then stays pending forever.
struct Park {
    reached: Option<oneshot::Sender<()>>,
}

impl Future for Park {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<u32> {
        if let Some(reached) = self.reached.take() {
            let _ = reached.send(());
        }
        Poll::Pending
    }
}

/// Runs `call(ctx, park)` until it is parked, cancels `ctx`, and returns
/// what the call returned.
async fn cancel_when_parked<T, F>(call: impl FnOnce(Context, Park) -> F) -> Result<T, Error>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, reached) = oneshot::channel();
    let task = tokio::spawn(call(ctx, Park { reached: Some(tx) }));
    tokio::time::timeout(Duration::from_secs(3600), reached)
        .await
        .expect("never reached the park")
        .unwrap();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(3600), task)
        .await
        .expect("the await at the park was not raced against ctx")
        .unwrap()
}

async fn one() -> u32 {
    1
}

#[cancellable]
async fn in_a_loop(ctx: Context, park: Park) -> Result<u32, Error> {
    let mut park = Some(park);
    let mut total = 0;
    for i in 0..3 {
        total += one().await;
        if i == 2
            && let Some(park) = park.take()
        {
            total += park.await;
        }
    }
    Ok(total)
}

#[cancellable]
async fn in_a_while_let_condition(ctx: Context, park: Park) -> Result<u32, Error> {
    let mut parks = vec![park];
    let mut total = 0;
    while let Some(n) = match parks.pop() {
        Some(park) => Some(park.await),
        None => None,
    } {
        total += n;
    }
    Ok(total)
}

#[cancellable]
async fn in_a_labeled_loop_with_break_value(ctx: Context, park: Park) -> Result<u32, Error> {
    let mut park = Some(park);
    let mut rounds = 0;
    let found = 'outer: loop {
        rounds += one().await;
        while rounds >= 3 {
            if let Some(park) = park.take() {
                break 'outer park.await;
            }
            rounds = 0;
        }
    };
    Ok(found)
}

#[cancellable]
async fn in_a_match_scrutinee(ctx: Context, park: Park) -> Result<u32, Error> {
    Ok(match park.await {
        0 => 0,
        n => n,
    })
}

#[cancellable]
async fn in_a_match_guard(ctx: Context, park: Park) -> Result<u32, Error> {
    let mut park = Some(park);
    Ok(match one().await {
        n if n > 5 => n,
        n if park.take().unwrap().await > n => n,
        _ => 0,
    })
}

#[cancellable]
async fn in_a_match_arm(ctx: Context, park: Park) -> Result<u32, Error> {
    Ok(match one().await {
        1 => park.await,
        n => n,
    })
}

#[cancellable]
async fn in_a_let_chain(ctx: Context, park: Park) -> Result<u32, Error> {
    let first = Some(one().await);
    if let Some(n) = first
        && n + park.await > 0
    {
        return Ok(n);
    }
    Ok(0)
}

#[cancellable]
async fn in_let_else(ctx: Context, park: Park) -> Result<u32, Error> {
    let 7 = park.await else {
        return Ok(0);
    };
    Ok(7)
}

#[cancellable]
async fn in_a_labeled_block(ctx: Context, park: Park) -> Result<u32, Error> {
    let n = 'block: {
        if one().await == 1 {
            break 'block park.await;
        }
        0
    };
    Ok(n)
}

#[cancellable]
async fn in_assert(ctx: Context, park: Park) -> Result<u32, Error> {
    assert!(one().await == 1);
    assert_eq!(park.await, 1, "never compared");
    Ok(0)
}

#[cancellable]
async fn in_format(ctx: Context, park: Park) -> Result<String, Error> {
    Ok(format!("{} {named}", one().await, named = park.await))
}

#[cancellable]
async fn in_vec(ctx: Context, park: Park) -> Result<Vec<u32>, Error> {
    Ok(vec![one().await, park.await])
}

#[cancellable]
async fn in_println(ctx: Context, park: Park) -> Result<(), Error> {
    println!("{}", park.await);
    Ok(())
}

#[cancellable]
async fn in_write(ctx: Context, park: Park) -> Result<String, Error> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{}", park.await).unwrap();
    Ok(out)
}

#[cancellable]
async fn in_a_nested_macro(ctx: Context, park: Park) -> Result<String, Error> {
    Ok(format!("{:?}", vec![park.await]))
}

#[cancellable]
async fn in_an_await_of_an_await(ctx: Context, park: Park) -> Result<u32, Error> {
    async fn make(park: Park) -> Park {
        park
    }
    Ok(make(park).await.await)
}

#[cancellable]
async fn after_a_question_mark(ctx: Context, park: Park) -> Result<u32, Error> {
    async fn step() -> Result<Option<u32>, Error> {
        Ok(Some(1))
    }
    let n = step().await?.unwrap_or(0);
    Ok(n + park.await)
}

macro_rules! assert_cancelled_at {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(start_paused = true)]
        async fn $name() {
            let result = cancel_when_parked(|ctx, park| async move { super::$name(ctx, park).await }).await;
            assert_eq!(result, Err(Error::Canceled));
        }
    )*};
}

mod cancelled {
    use super::*;

    assert_cancelled_at!(
        in_a_loop,
        in_a_while_let_condition,
        in_a_labeled_loop_with_break_value,
        in_a_match_scrutinee,
        in_a_match_guard,
        in_a_match_arm,
        in_a_let_chain,
        in_let_else,
        in_a_labeled_block,
        in_assert,
        in_format,
        in_vec,
        in_println,
        in_write,
        in_a_nested_macro,
        in_an_await_of_an_await,
        after_a_question_mark,
    );
}

/// The rewritten awaits still return their values.
#[tokio::test]
async fn values_pass_through() {
    #[cancellable]
    async fn sum(ctx: &Context) -> Result<(u32, String, Vec<u32>), Error> {
        let mut total = 0;
        for _ in 0..3 {
            total += one().await;
        }
        let text = format!("{}-{}", one().await, one().await);
        let list = vec![one().await; 2];
        Ok((total, text, list))
    }
    assert_eq!(
        sum(&Context::background()).await,
        Ok((3, "1-1".to_owned(), vec![1, 1]))
    );
}

/// Polls `fut` once, outside any rewritten await.
fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    pin!(fut).poll(&mut TaskContext::from_waker(Waker::noop()))
}

/// With `ctx` already cancelled, the awaits inside closures and `async`
/// blocks still run to completion: they are not raced against `ctx` (an
/// early return from them would leave the block, not the function). Each
/// would warn; `allow_unraced` says that is what this fn wants.
#[cancellable(allow_unraced)]
async fn inner_awaits_ignore_ctx(ctx: &Context, cancel: &CancelHandle) -> Result<Vec<u32>, Error> {
    let ran = Arc::new(AtomicUsize::new(0));
    cancel.cancel(); // after the entry check: from here on `ctx` is done
    let block = async {
        ran.fetch_add(1, Ordering::SeqCst);
        ready(1).await
    };
    let closure = |n: u32| async move { ready(n).await + 1 };
    let async_closure = async |n: u32| ready(n).await + 2;
    let mut out = Vec::new();
    for outcome in [
        poll_once(block),
        poll_once(closure(1)),
        poll_once(async_closure(1)),
    ] {
        match outcome {
            Poll::Ready(n) => out.push(n),
            Poll::Pending => unreachable!("ready futures"),
        }
    }
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    Ok(out)
}

#[tokio::test]
async fn awaits_in_closures_and_async_blocks_are_not_rewritten() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert_eq!(
        inner_awaits_ignore_ctx(&ctx, &cancel).await,
        Ok(vec![1, 2, 3])
    );
    assert!(ctx.is_done());
}

/// The same function with a rewritten await after the cancel returns
/// `Canceled`: the difference above is the closure/block boundary.
#[cancellable]
async fn outer_await_sees_ctx(ctx: &Context, cancel: &CancelHandle) -> Result<u32, Error> {
    cancel.cancel();
    let n = ready(1).await;
    Ok(n)
}

#[tokio::test]
async fn an_await_of_the_body_after_the_cancel_returns_canceled() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert_eq!(
        outer_await_sees_ctx(&ctx, &cancel).await,
        Err(Error::Canceled)
    );
}

/// `ctx.run(fut).await?` is how to race an async block by hand.
#[tokio::test(start_paused = true)]
async fn ctx_run_races_what_is_not_rewritten() {
    #[cancellable]
    async fn by_hand(ctx: Context, park: Park) -> Result<u32, Error> {
        let block = async move { park.await + 1 };
        let n = ctx.run(block).await?;
        Ok(n)
    }
    assert_eq!(cancel_when_parked(by_hand).await, Err(Error::Canceled));
}

/// `select!` is raced too, even with a `ctx.done()` branch of its own: under
/// `biased;` the branch `#[cancellable]` adds comes first and returns.
#[tokio::test(start_paused = true)]
async fn a_select_with_a_done_branch_of_its_own_is_raced_too() {
    #[cancellable]
    async fn selects(ctx: Context, park: Park) -> Result<&'static str, Error> {
        Ok(tokio::select! {
            biased;
            _ = ctx.done() => "done branch",
            _ = park => "park",
        })
    }
    assert_eq!(cancel_when_parked(selects).await, Err(Error::Canceled));
}
