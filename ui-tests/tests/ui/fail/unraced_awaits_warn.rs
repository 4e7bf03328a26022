// Every `.await` `#[cancellable]` cannot race warns at that `.await`, with
// why and what to do (denied here, so that the snapshot holds them).
#![deny(deprecated)]

use std::time::Duration;

use ctx_runtime::{Context, Error, cancellable};

async fn slow() -> u32 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    1
}

macro_rules! twice {
    { $e:expr } => { $e + $e };
}

#[cancellable]
async fn leaky(ctx: &Context, rx: &mut tokio::sync::mpsc::Receiver<u32>) -> Result<u32, Error> {
    let detached = async { slow().await };
    drop(detached);
    let _closure = || async { slow().await };
    tokio::spawn(async { slow().await });
    let doubled = twice! { slow().await };
    let first = tokio::select! {
        biased;
        Some(n) = async { rx.recv().await }, if doubled > 0 => n,
        n = std::future::ready(slow().await) => n,
    };
    let later = async { tokio::join!(slow(), slow()) };
    drop(later);
    Ok(first)
}

// The same, said to be meant: no warning.
#[cancellable(allow_unraced)]
async fn meant(ctx: &Context) -> Result<u32, Error> {
    let detached = async { slow().await };
    drop(detached);
    tokio::spawn(async { slow().await });
    Ok(0)
}

fn main() {}
