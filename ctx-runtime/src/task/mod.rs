//! Tasks under a context: [`spawn`] (Go's `go f(ctx)` with a leash),
//! [`Group`] (Go's `errgroup.WithContext`) and [`TaskTracker`] (a
//! `sync.WaitGroup` for graceful shutdown).
//!
//! A plain `tokio::spawn` forgets where its work came from: when the request
//! that started it ends, it runs on. Every task started here runs under a
//! child of a [`Context`](crate::Context), so cancelling the parent (the client
//! left, the deadline passed, the server is shutting down) reaches it, and its
//! own context ends when it does.
//!
//! What is ours here is only what carries a context. The rest is tokio-util's:
//! [`TaskHandle`] aborts on drop through [`tokio_util::task::AbortOnDropHandle`],
//! and [`TaskTracker`] wraps [`tokio_util::task::TaskTracker`] (convert either
//! way with `From`, so a service that already has one passes it to
//! `CtxLayer::tracker`).
//!
//! # Cancel-safety
//!
//! Every future here can be dropped before it completes without losing
//! anything, like tokio's `JoinSet::join_next`: awaiting a [`TaskHandle`], a
//! [`TaskOutput`], [`Group::wait`] or [`TaskTracker::wait`] inside
//! `tokio::select!` or `tokio::time::timeout` and giving up on it leaves the
//! tasks running, their contexts untouched and their results (an error, a
//! panic, an output) waiting for the next await.

mod group;
mod spawn;
mod tracker;
mod waiters;

pub use group::{Group, TaskFailed, TaskOutput};
pub use spawn::{SpawnExt, TaskHandle, spawn};
pub use tracker::{TaskTracker, TrackerToken};
