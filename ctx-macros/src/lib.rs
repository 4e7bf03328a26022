//! Procedural macros for `ctx-runtime`. Use them through `ctx_runtime::cancellable`.
//!
//! The crate is laid out like `tracing-attributes`: this file is the
//! documentation and the entry point, [`macro@cancellable`]; the work is
//! done in phases, one module each: `parse` (the options, and the item as
//! functions), `check` (the signature, the footguns of a body), `rewrite`
//! (the awaits, `select!`s and `join!`s, and the warnings for what it cannot
//! race) and `emit` (the prologues and the item, or the errors).
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

use proc_macro::TokenStream;

mod check;
mod diag;
mod emit;
#[cfg(test)]
mod fuzz_tests;
mod idents;
mod parse;
mod rewrite;

/// Makes every `.await`, `select!` and `join!` of an async fn a race against
/// its first parameter, `ctx`, and checks the context-first convention at
/// compile time.
///
/// Go's convention is that a function that may block takes a
/// `context.Context` first, named `ctx`, and selects on `ctx.Done()` wherever
/// it blocks. `#[cancellable]` makes the compiler enforce the first half and
/// writes the second half for you:
///
/// ```
/// use ctx_runtime::{cancellable, Context, Error};
/// use std::time::Duration;
///
/// #[cancellable]
/// async fn fetch(ctx: &Context, id: u32) -> Result<String, Error> {
///     // Returns `Err(Error::Canceled)` as soon as `ctx` is cancelled,
///     // even while this sleep is pending.
///     tokio::time::sleep(Duration::from_secs(5)).await;
///     Ok(format!("item {id}"))
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (ctx, cancel) = Context::background().with_cancel();
/// let task = tokio::spawn(async move { fetch(&ctx, 7).await });
/// tokio::task::yield_now().await; // let it reach the sleep
/// cancel.cancel();
/// assert_eq!(task.await.unwrap(), Err(Error::Canceled));
/// # }
/// ```
///
/// # The signature
///
/// * The first parameter, after an optional `self` receiver, is the plain
///   identifier `ctx` (not `_ctx`, not `context`, not a pattern). Its type is
///   `&Context`, `Context`, or anything implementing
///   `ctx_runtime::AsContext` (`Arc<Context>`, your own request type...).
///   The type is checked through the trait, so aliases and wrappers work;
///   only `&mut` is rejected, since a context is immutable.
/// * The return type is `Result<T, E>` where `E: From<ctx_runtime::Error>`:
///   `ctx_runtime::Error`, `std::io::Error`, `anyhow::Error`,
///   `Box<dyn Error + Send + Sync>`, or an error type of your own with a
///   `From` impl (a `#[from] ctx_runtime::Error` variant with thiserror). A
///   type of another crate, such as `String`, cannot be given that impl in
///   yours: wrap it. On cancellation the fn returns `Err(E::from(err))`. A
///   future boxed by hand (`Pin<Box<dyn Future<..>>>`, `BoxFuture`) is
///   rejected: write an `async fn`.
///
/// Every problem of a fn is reported in the same compile, at the offending
/// parameter, type or expression, with a fix that applies: a `ctx` out of
/// place and a return type that is not a `Result` are two errors. The item
/// is still emitted, unchanged but for the type checks of its signature,
/// next to the errors, so the rest of the crate (and IDE completion) keeps
/// working.
///
/// # What it does
///
/// 1. **Entry check.** The body starts with a check of `ctx`: an
///    already-cancelled context returns before any work, as Go's
///    `if err := ctx.Err(); err != nil { return err }`. A fn without any
///    suspension point (a sync fn, or an `async fn` without `.await`,
///    `select!` or `join!`) gets this check only.
/// 2. **Awaits.** Every `.await` of the body becomes a biased race against
///    `ctx`: the context is checked (one atomic load) before each poll of
///    the awaited future, and its waker is registered with the context only
///    while that future is pending, once per call of the function. When the
///    context is done, the awaited future is dropped and the function
///    returns `Err(E::from(err))`. `.await` semantics are kept otherwise:
///    anything `IntoFuture` can be awaited, nothing needs to be `'static`,
///    temporaries live as long as with a plain `.await`, and the returned
///    future is `Send` whenever the original was. The context watched is the
///    one `ctx` names on entry (one watch per call): rebinding `ctx` later in
///    the body does not change it.
/// 3. **`select!`.** Every `tokio::select!` (and a bare `select!`, read as
///    tokio's unless it has a `complete` or `default` branch),
///    `futures::select!` and `futures::select_biased!` gets one more branch
///    that watches the context and returns `Err(E::from(err))` from the fn
///    when it fires: first under `biased;` and in `select_biased!` (so it
///    wins over branches that are already ready), last otherwise. The
///    select behaves as written in every other way: preconditions are
///    evaluated once, a branch whose pattern fails is disabled, `else =>`
///    (tokio) and `complete =>` (futures) run when every branch is disabled
///    or done, and without them the macro panics as it would; `default =>`
///    runs when nothing is ready; `break`, `continue` and `return` in
///    handlers are unchanged. The awaits of preconditions and handlers are
///    raced like any other.
/// 4. **`join!` and `try_join!`** (tokio's and futures') are awaited as one
///    raced future: a cancellation drops every joined future and returns
///    from the fn. The arguments are evaluated first, in order, in the fn's
///    own control flow (a `?` in one still leaves the fn, an await in one is
///    raced on its own).
///
/// ```
/// # use ctx_runtime::{cancellable, Context, Error};
/// # async fn fetch(id: u32) -> u32 { id }
/// #[cancellable]
/// async fn serve(ctx: &Context, mut jobs: tokio::sync::mpsc::Receiver<u32>) -> Result<u32, Error> {
///     let mut done = 0;
///     loop {
///         tokio::select! {                                 // raced: returns Err on cancel
///             Some(id) = jobs.recv() => {
///                 let (a, b) = tokio::join!(fetch(id), fetch(id + 1)); // raced as one
///                 done += a + b;
///             }
///             else => break,                                   // still runs when `jobs` closes
///         }
///     }
///     Ok(done)
/// }
/// ```
///
/// The suspension points that are raced are those of the function's own
/// body, wherever they are in it: loop conditions, match scrutinees, guards
/// and arms, `let`-`else`, labeled blocks, and the arguments of macros whose
/// input is a list of expressions (`assert!`, `assert_eq!`, `println!`,
/// `format!`, `write!`, `vec![..]` and `vec![x; n]`, `dbg!`, `pin!`, the
/// first argument of `matches!`...).
///
/// # What is not raced, and warns
///
/// An early `return` would leave the wrong function (or none at all) from
/// these, so their awaits are left as they are, and each gets a
/// compile-time **warning** at its `.await` saying why and what to do:
///
/// * closures (`async` ones too);
/// * `async` blocks that are not awaited where they are written; one that is
///   part of an awaited expression (`ctx.run(async { .. }).await?`,
///   `timeout(d, async { .. }).await`), of a raced `join!` or of a select
///   branch's future, or that is bound by `let` to a name that is awaited
///   later (`let fut = async { .. }; fut.await`), is raced with it, and does
///   not warn;
/// * `async` blocks given to a spawn call (`tokio::spawn(async { .. })`,
///   `set.spawn(..)`): the task outlives the fn whatever is awaited later. A
///   closure given to one (`ctx_runtime::spawn(&ctx, |ctx| async move { .. })`,
///   `Group::spawn`) runs under a context of its own and does not warn;
/// * the input of a macro that is not a list of expressions, or is given in
///   braces (`my_dsl! { .. }`, `stream! { .. }`), and a `select!` that cannot
///   be read or is another crate's;
/// * the future expressions of the branches of a `biased;` `select!` or
///   `select_biased!`, which are evaluated after its watch branch took the
///   context: await them into a variable before the select.
///
/// `select!` and `join!` in closures and unawaited `async` blocks warn too.
/// Race what matters by hand with `ctx.run(fut).await?` (or a branch
/// `err = ctx.done() => return Err(err.into())` in a select), run a task
/// with `ctx_runtime::spawn(&ctx, |ctx| ..)`, and silence the warnings of a
/// fn whose unraced awaits are meant with `#[cancellable(allow_unraced)]`:
///
/// ```
/// # use ctx_runtime::{cancellable, Context, Error};
/// # async fn slow(_: u32) -> u32 { 0 }
/// #[cancellable(allow_unraced)]
/// async fn by_hand(ctx: &Context, ids: Vec<u32>) -> Result<u32, Error> {
///     let mut sum = 0;
///     for id in ids {
///         let task = async move { slow(id).await }; // awaited through `ctx.run`: no warning
///         sum += ctx.run(task).await?;
///     }
///     let detached = async { slow(0).await };          // not awaited: would warn
///     drop(detached);
///     Ok(sum)
/// }
/// ```
///
/// Nothing is said about nested `fn` items and `impl` blocks (they are other
/// functions), the macros that turn tokens into data instead of evaluating
/// them (`stringify!`, `concat!`, `quote!`, `quote_spanned!`,
/// `parse_quote!`, `parse_quote_spanned!`), and awaits that a macro produces
/// when it expands (the attribute sees only the tokens written in the body).
///
/// The warnings are uses of deprecated items (stable Rust has no other way
/// for a macro to warn), so rustc prints them as
/// `use of deprecated function ctx_runtime::__private::unraced::in_an_async_block: ...`,
/// and `#![deny(deprecated)]` turns them into errors.
///
/// # Footguns that are errors
///
/// Inside an annotated body (closures and `async` blocks included):
///
/// * `let (x, _) = parent.with_cancel();` (or `with_timeout`,
///   `with_deadline`, their `_cause` forms, or `(x, ..)`): the `_` drops the
///   `CancelHandle` at once, and dropping it cancels `x`. Bind it:
///   `let (x, _cancel) = ...`, Go's `defer cancel()`.
/// * `Context::background()` or `Context::todo()`: the fn already has
///   `ctx`, and a new root cuts its work off from the caller's cancellation
///   and deadline (Go's `contextcheck`). Derive from `ctx`, or use
///   `ctx.without_cancel()` for work that must outlive the call.
///
/// # Where it goes
///
/// * On a free `async fn`, or an async method of an inherent or trait impl,
///   with any visibility, generics, `where` clauses, lifetimes and
///   `impl Trait` arguments.
/// * On a fn returning `impl Future<Output = Result<..>>` whose body ends in
///   an `async` block (the way to write a `Send` future in a trait): that
///   block is rewritten like an `async fn`'s body and starts with the entry
///   check. The watch of `ctx` (and the child of a `timeout`, whose clock
///   then starts at the call) is made at the call and moved into the
///   future, so the future borrows nothing it did not borrow before.
/// * On a plain (sync) fn: the signature check and the entry check only.
/// * On an `impl` block or a `trait`: it applies to every async method (and
///   every `-> impl Future` method), including default bodies in traits; for
///   a declaration without a body only the signature is checked. A method
///   without `ctx`, or with `ctx` out of place, is reported; opt a method
///   out with `#[cancellable(skip)]`, or give it options with
///   `#[cancellable(...)]` (which also brings a sync method in). Sync methods
///   are otherwise left alone, except that a `ctx` out of place is reported.
///   Options on the block are the default of its methods.
///
/// ```
/// # use ctx_runtime::{cancellable, Context, Error};
/// struct Client;
///
/// #[cancellable]
/// impl Client {
///     async fn get(&self, ctx: &Context, key: &str) -> Result<String, Error> {
///         Ok(key.to_owned())
///     }
///
///     #[cancellable(timeout = "2s")]
///     async fn get_quickly(&self, ctx: &Context, key: &str) -> Result<String, Error> {
///         self.get(ctx, key).await
///     }
///
///     #[cancellable(skip)]
///     async fn warm_up(&self) {}
/// }
/// ```
///
/// # With other attributes
///
/// Attributes run from the top down, each on what the one above produced.
///
/// * `#[async_trait]`: put `#[cancellable]` *above* it, as it must see the
///   `async fn`s; under it, `#[cancellable]` reports that the order must be
///   swapped.
/// * `#[tracing::instrument]`, in either order, with different race points.
///   With `#[cancellable]` above, every await of the body is raced, inside
///   the fn's span (an early return, and its `tracing` event, happen in the
///   span). With `#[instrument]` above, the instrumented body is one `async`
///   block awaited once, and that await is raced: a cancellation drops the
///   whole body, at whichever await it was, from outside the span. The entry
///   check comes first in both.
///
/// # Options
///
/// * `timeout = "500ms"`: the body runs under a child of `ctx` with that
///   timeout (Go's `context.WithTimeout` plus `defer cancel()`: the child is
///   cancelled when the call returns), which the awaits watch and which
///   `ctx` names inside the body: a `&Context` if the parameter was a
///   reference, a `Context` otherwise (so a body that used your own
///   `AsContext` type as `ctx` sees a plain context). An earlier deadline of
///   the parent still wins. The string is parsed at compile time, like Go's
///   `time.ParseDuration`: numbers (decimals allowed) with units `ns`, `us`
///   (or `µs`), `ms`, `s`, `m`, `h`, as in `"1.5s"` or `"1m30s"`.
/// * `allow_unraced`: no warning for the awaits it leaves unraced.
/// * `skip`: on a method of a `#[cancellable]` impl block or trait, leave it
///   alone.
///
/// ```
/// # use ctx_runtime::{cancellable, Context, Error};
/// #[cancellable(timeout = "1.5s")]
/// async fn bounded(ctx: &Context) -> Result<(), Error> {
///     assert!(ctx.deadline().is_some()); // `ctx` is the child here
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await;
///     unreachable!("the timeout fires first");
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// assert_eq!(bounded(&Context::background()).await, Err(Error::DeadlineExceeded));
/// # }
/// ```
///
/// # `tracing`
///
/// With ctx-runtime's feature `tracing`, every early return of a
/// `#[cancellable]` fn emits a `debug` event (target
/// `ctx_runtime::cancellable`) with the fields `function` (its path, as
/// `my_crate::module::fetch` or `my_crate::Client::get`) and `error`.
/// Without the feature the hook compiles to nothing, and no `tracing`
/// dependency is needed.
///
/// # Expansion
///
/// For reference (names starting with `__ctx` are hygienic: the body can
/// neither see them nor collide with them):
///
/// ```text
/// #[cancellable]
/// async fn f(ctx: &Context, x: u32) -> Result<u32, E> {
///     let a = g(x).await?;
///     Ok(a)
/// }
/// // becomes
/// async fn f(ctx: &Context, x: u32) -> Result<u32, E> {
///     let __ctx_exit = |__ctx_err: ::ctx_runtime::__private::Error| {
///         ::ctx_runtime::__private::exit(
///             <Result<u32, E> as ::ctx_runtime::__private::CancelReturn>::WRAP,
///             ::ctx_runtime::__private::FromContextError::FROM,
///             ::core::concat!(::core::module_path!(), "::", "f"),
///             __ctx_err,
///         )
///     };
///     let mut __ctx_watch = ::ctx_runtime::__private::Watch::new(
///         ::ctx_runtime::__private::IsContext::context(&ctx));
///     if let ::core::result::Result::Err(__ctx_err) = __ctx_watch.check() {
///         return __ctx_exit(__ctx_err);
///     }
///     let a = match ::core::future::IntoFuture::into_future(g(x)) {
///         __ctx_fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, __ctx_fut).await {
///             ::core::result::Result::Ok(__ctx_value) => __ctx_value,
///             ::core::result::Result::Err(__ctx_err) => return __ctx_exit(__ctx_err),
///         },
///     }?;
///     Ok(a)
/// }
/// ```
///
/// * Without a suspension point, the watch is not made: the check is
///   `::ctx_runtime::__private::Context::check(<the context>)`.
/// * With a `timeout`, the child is made first,
///   `let (__ctx_child, __ctx_guard) = ::ctx_runtime::__private::Context::with_timeout(<ctx>, ::ctx_runtime::__private::Duration::new(secs, nanos));`,
///   watched, and `ctx` is shadowed by it (`let ctx = &__ctx_child;`, with
///   `#[allow(unused_variables, unused_mut)]`).
/// * A `select!` becomes
///   `{ let __ctx_select = ::ctx_runtime::__private::Select::new(<branches without a precondition>); <the select> }`
///   where each branch's future `fut` is wrapped, tokio's as
///   `::ctx_runtime::__private::select_branch(&__ctx_select, fut, |__ctx_out| <does it match the pattern>)`
///   with each precondition `c` as
///   `::ctx_runtime::__private::Select::enable(&__ctx_select, c)`, futures'
///   as `::ctx_runtime::__private::fused_branch(&__ctx_select, fut)` (`&mut fut`
///   for a future named by a path), and the branch added is
///   `::core::option::Option::Some(__ctx_err) = ::ctx_runtime::__private::select_watch(&mut __ctx_watch, &__ctx_select) => { return __ctx_exit(__ctx_err); }`
///   (tokio) or
///   `__ctx_err = ::ctx_runtime::__private::fused_watch(&mut __ctx_watch, &__ctx_select, <no default branch>) => { return __ctx_exit(__ctx_err); }`
///   (futures).
/// * A `join!(a, b)` becomes
///   `match (a, b,) { (__ctx_joined0, __ctx_joined1,) => <async move { join!(__ctx_joined0, __ctx_joined1) }.await, raced> }`.
/// * Each warning is a statement
///   `let _ = ::ctx_runtime::__private::unraced::<why>;` at the start of
///   the body, spanned at the `.await`.
///
/// The generated code uses absolute paths only (`::ctx_runtime::__private::...`,
/// `::core::...`), so the crate using the attribute must depend on
/// `ctx-runtime` under that name; what the user's scope calls `Result`, `Ok`
/// or `core` does not matter.
///
/// When anything is wrong, the attribute emits its errors and the item
/// unchanged (with, at the start of each body it would have rewritten,
/// `let _ = ::ctx_runtime::__private::IsContext::context(&ctx);` and
/// `::ctx_runtime::__private::check(<R as ::ctx_runtime::__private::CancelReturn>::WRAP, ::ctx_runtime::__private::FromContextError::FROM);`
/// for the parts of the signature that are right, so that their types are
/// checked in the same compile); when the item does not even parse, its
/// tokens are kept as they are, so an IDE can still complete inside it.
#[proc_macro_attribute]
pub fn cancellable(attr: TokenStream, item: TokenStream) -> TokenStream {
    emit::expand(attr.into(), item.into()).into()
}
