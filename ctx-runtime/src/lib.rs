//! Go's `context.Context` for async Rust: a cancellation signal, a deadline
//! and request-scoped values, passed first to every long call and down a tree
//! of tasks.
//!
//! A service fetches data from a slow upstream; the user closes the tab. With
//! a [`Context`] threaded through the work, the server cancels one context and
//! every task, upstream call and database write under it stops, instead of
//! burning CPU for a client that is gone.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use ctx_runtime::{Context, Error};
//! use std::time::Duration;
//!
//! async fn fetch(ctx: &Context) -> Result<String, Error> {
//!     // Go: select { case <-time.After(5s): ... case <-ctx.Done(): return ctx.Err() }
//!     ctx.run(tokio::time::sleep(Duration::from_secs(5))).await?;
//!     Ok("data".to_owned())
//! }
//!
//! let (request, cancel) = Context::background().with_cancel();
//! let task = tokio::spawn({
//!     let ctx = request.clone();
//!     async move { fetch(&ctx).await }
//! });
//! cancel.cancel_with_cause("client disconnected"); // the user closed the tab
//! assert_eq!(task.await.unwrap(), Err(Error::Canceled));
//! assert_eq!(request.cause().unwrap().to_string(), "client disconnected");
//! # }
//! ```
//!
//! # Which tool when (Go's decision matrix)
//!
//! | You need to... | Use |
//! |---|---|
//! | stop a group of tasks by hand | [`Context::with_cancel`], then [`CancelHandle::cancel`] (or drop the handle) |
//! | fail an operation that takes longer than a duration | [`Context::with_timeout`] |
//! | finish by an absolute time | [`Context::with_deadline`] |
//! | start a call tree (in `main`, a top-level handler, a test) | [`Context::background`], and only there |
//! | block on I/O, a channel or a timer without ignoring cancellation | `tokio::select!` on [`Context::done`], or [`Context::run`] for one future |
//! | make every `.await` of a function watch its `ctx` | `#[cancellable]` (feature `macros`, on by default) |
//! | check quickly before expensive work | [`Context::check`] (`ctx.check()?`) or [`Context::err`]; never to stop a blocking operation |
//! | carry request-scoped data (trace id, user) | [`Context::with_value`] with a type of your own as the key |
//! | run cleanup once a context ends | [`Context::after_func`] |
//! | keep values but outlive the request | [`Context::without_cancel`] |
//! | wait from a plain thread | [`Context::wait_blocking`] |
//!
//! # The convention
//!
//! A function that may block takes the context as its *first* parameter,
//! named `ctx`. A function whose context is buried in the third argument, or
//! missing, is probably ignoring it. `#[cancellable]` turns the convention
//! into a compile error and rewrites every `.await` of the body into a race
//! against `ctx`, so that forgetting one `select!` is no longer possible.
//!
//! # Guarantees
//!
//! * Cancelling a context cancels every descendant before `cancel()` returns;
//!   it never affects the parent or siblings. The first cancellation wins.
//! * [`Context::err`] is one atomic load. A context that reports an error
//!   also completes every [`Done`] future.
//! * A child leaves its parent when it is cancelled or dropped: a long-lived
//!   parent does not grow with short-lived children.
//! * Deadlines fire on time whether or not anyone polls, on tokio's clock
//!   inside a runtime (so `tokio::time::pause()` applies) and on a timer thread
//!   outside one.
//! * No method panics on any input. A timeout too large to represent means
//!   "no deadline"; a deadline in the past gives a context that is already done.
//!
//! # Tasks, services and features
//!
//! Always available: [`spawn`] (a task under a child context, aborted when
//! its handle drops), [`Group`] (Go's `errgroup.WithContext`), [`TaskTracker`]
//! (wait for everything at shutdown), [`grpc_timeout`] (the gRPC deadline
//! header) and [`request_timeout`] (the same for plain HTTP). Off by
//! default, so that the bare runtime compiles only tokio:
//!
//! | feature | gives |
//! |---|---|
//! | `tower` | `http::CtxLayer`: a `Context` per `http::Request`, cancelled when the client leaves, with a deadline from `grpc-timeout` / `x-request-timeout`; 504 or gRPC `DEADLINE_EXCEEDED` when it passes |
//! | `axum` | `ctx: Context` and `ctx: Option<Context>` as axum extractors (implies `tower`) |
//! | `tonic` | `ctx_runtime::tonic::request`: an outgoing gRPC request that carries the time left; the server side is `CtxLayer` (implies `tower`) |
//! | `reqwest` | `send_ctx(&ctx)` on `reqwest::RequestBuilder`: the time left as timeout and as `x-request-timeout` for the next service, dropped when `ctx` ends |
//! | `tokio-util` | the bridge to tokio-util's `CancellationToken`, both ways: [`Context::cancellation_token`] and [`Context::with_cancellation_token`] |
//! | `tracing` | events for requests that end early (`CtxLayer`) and for `#[cancellable]` fns that return on cancellation |
//! | `postgres` | `postgres::ClientExt` for tokio-postgres: `query_ctx(&ctx, ...)`, `transaction_ctx(&ctx)`; the statement cancelled on the server and the transaction rolled back when `ctx` ends |
//! | `rusqlite` | `rusqlite::Connection`: closures run under `ctx` on the blocking pool, the statement interrupted and the transaction rolled back when `ctx` ends |
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod after_func;
#[cfg(feature = "tokio-util")]
mod bridge;
mod context;
mod deadline;
mod done;
mod error;
mod handle;
mod slab;
mod sync;
mod tree;
mod value;

pub mod grpc_timeout;
#[cfg(feature = "tower")]
pub mod http;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod request_timeout;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "rusqlite")]
pub mod rusqlite;
mod task;
#[cfg(feature = "tonic")]
pub mod tonic;

#[cfg(all(test, not(ctx_loom)))]
mod tests;

#[cfg(all(test, ctx_loom))]
mod loom_models;

pub use after_func::AfterFunc;
#[cfg(feature = "tokio-util")]
pub use bridge::TokenCancelled;
pub use context::{AsContext, Context};
pub use deadline::Instant;
pub use done::{Done, DoneOwned};
pub use error::{Cause, Error};
pub use handle::CancelHandle;
pub use task::{
    Group, SpawnExt, TaskFailed, TaskHandle, TaskOutput, TaskTracker, TrackerToken, spawn,
};

/// Makes every `.await` of an async fn a race against its first parameter,
/// `ctx`, and checks the context-first convention at compile time.
///
/// See [the macro crate's documentation](ctx_macros::cancellable).
#[cfg(feature = "macros")]
pub use ctx_macros::cancellable;

/// What `#[cancellable]` expands to. Not public API: no semver guarantees.
#[doc(hidden)]
pub mod __private;
