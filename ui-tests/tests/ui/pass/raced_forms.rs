// `select!`, `join!`, blocks awaited in place or through their binding, and
// tasks spawned under a context are raced (or driven by what is raced):
// not one warning.
#![deny(warnings)]

use std::time::Duration;

use ctx_runtime::{Context, Error, cancellable};
use tokio::select;
use tokio::sync::mpsc;

async fn one() -> u32 {
    1
}

#[cancellable]
async fn forms(ctx: &Context, mut rx: mpsc::Receiver<u32>) -> Result<u32, Error> {
    let mut total = 0;
    loop {
        tokio::select! {
            biased;
            Some(n) = rx.recv(), if total < 100 => total += n + one().await,
            _ = tokio::time::sleep(Duration::from_secs(60)), if total == 0 => continue,
            else => break,
        }
    }
    let bare = select! {
        n = one() => n.max(one().await) + 1,
    };
    let (a, b) = tokio::join!(one(), async { one().await });
    let (c, d) = tokio::try_join!(async { Ok::<_, Error>(one().await) }, async { Ok(1) })?;
    let in_place = ctx.run(async { one().await }).await?;
    let bound = async move { one().await };
    let later = bound.await;
    let task = ctx_runtime::spawn(ctx, |ctx| async move { ctx.run(one()).await });
    let spawned = task.await.expect("the task ran")?;
    Ok(total + bare + a + b + c + d + in_place + later + spawned)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (tx, rx) = mpsc::channel(4);
    tx.send(10).await.unwrap();
    drop(tx);
    assert_eq!(forms(&Context::background(), rx).await, Ok(11 + 2 + 2 + 2 + 1 + 1 + 1));
}
