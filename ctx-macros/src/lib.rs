//! Procedural macros for `ctx-runtime`. Use them through `ctx_runtime::cancellable`.
//!
//! The crate is laid out like `tracing-attributes`: [`macro@cancellable`]
//! is the entry point, `attr` parses its options, `sig` checks the
//! signature, `rewrite` rewrites the awaits and `expand` emits the result.
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

use proc_macro::TokenStream;

mod attr;
mod expand;
#[cfg(test)]
mod fuzz_tests;
mod rewrite;
mod sig;

/// Makes every `.await` of an async fn a race against its first parameter,
/// `ctx`, and checks the context-first convention at compile time.
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
///   `Box<dyn Error + Send + Sync>`, or your own error type with a `From`
///   impl (a `#[from] ctx_runtime::Error` variant with thiserror). On
///   cancellation the fn returns `Err(E::from(err))`.
///
/// Every problem of a signature is reported in the same compile, at the
/// offending parameter or type, with the fix. The item is still emitted
/// unchanged next to the errors, so the rest of the crate (and IDE
/// completion) keeps working.
///
/// # What it does
///
/// 1. **Entry check.** The body starts with a check of `ctx`: an
///    already-cancelled context returns before any work, as Go's
///    `if err := ctx.Err(); err != nil { return err }`.
/// 2. **Await rewriting.** Every `.await` of the body becomes a biased race
///    against `ctx`: the context is checked (one atomic load) before each
///    poll of the awaited future, and its waker is registered with the
///    context only while that future is pending, once per call of the
///    function. When the context is done, the awaited future is dropped and
///    the function returns `Err(E::from(err))`. `.await` semantics are kept
///    otherwise: anything `IntoFuture` can be awaited, nothing needs to be
///    `'static`, temporaries live as long as with a plain `.await`, and the
///    returned future is `Send` whenever the original was.
///    The context watched is the one `ctx` names on entry (one watch per
///    call): rebinding `ctx` later in the body does not change it.
///
/// The awaits that are rewritten are those of the function's own body,
/// wherever they are in it:
///
/// ```
/// # use ctx_runtime::{cancellable, Context, Error};
/// # async fn next(_: u32) -> Option<u32> { None }
/// # async fn ok(_: u32) -> bool { true }
/// #[cancellable]
/// async fn everywhere(ctx: &Context, mut rx: tokio::sync::mpsc::Receiver<u32>) -> Result<u32, Error> {
///     let mut total = 0;
///     while let Some(n) = rx.recv().await {          // loop conditions
///         total += match next(n).await {             // match scrutinees
///             Some(m) if ok(m).await => m,           // guards and arms
///             _ => 0,
///         };
///     }
///     let Some(last) = next(total).await else {     // let-else
///         return Ok(total);
///     };
///     assert!(ok(last).await, "{}", next(1).await.unwrap_or(0)); // macro arguments
///     let found = 'search: {                         // labeled blocks, loops, break values
///         break 'search next(last).await;
///     };
///     Ok(found.unwrap_or(total))
/// }
/// ```
///
/// That includes the arguments of macros whose input is a comma-separated
/// list of expressions: `assert!`, `assert_eq!`, `println!`, `format!`,
/// `write!`, `vec![...]`, `dbg!` and the like.
///
/// # What is not rewritten
///
/// An early `return` would leave the wrong function (or none at all) from:
///
/// * closures, including `async` closures, and `async` blocks;
/// * nested `fn` items and `impl` blocks;
/// * macros whose input is not a list of expressions, or that run their
///   arguments concurrently: anything invoked with braces (`foo! { ... }`),
///   `select!`, `select_biased!`, `join!`, `try_join!`, `pin!`, `stream!`,
///   `try_stream!`, and the macros that turn tokens into data instead of
///   evaluating them: `stringify!`, `concat!`, `quote!`, `quote_spanned!`,
///   `parse_quote!`, `parse_quote_spanned!`;
/// * awaits that a macro produces when it expands (the attribute sees only
///   the tokens written in the body).
///
/// Their awaits are left as they are. Race them by hand where it matters,
/// with `ctx.run(fut).await?` (or `ctx.done()` in a `select!`):
///
/// ```
/// # use ctx_runtime::{cancellable, Context, Error};
/// # async fn slow(_: u32) -> u32 { 0 }
/// #[cancellable]
/// async fn by_hand(ctx: &Context, ids: Vec<u32>) -> Result<u32, Error> {
///     let mut sum = 0;
///     for id in ids {
///         let task = async move { slow(id).await }; // not rewritten: an async block
///         sum += ctx.run(task).await?;              // raced by hand
///     }
///     let (a, b) = tokio::join!(slow(1), slow(2));  // not rewritten: join!
///     Ok(sum + a + b)
/// }
/// ```
///
/// # Where it goes
///
/// * On a free `async fn`, or an async method of an inherent or trait impl,
///   with any visibility, generics, `where` clauses, lifetimes and
///   `impl Trait` arguments.
/// * On a fn returning `impl Future<Output = Result<..>>` whose body ends in
///   an `async` block (the way to write a `Send` future in a trait): that
///   block's awaits are rewritten and it starts with the entry check. The
///   watch of `ctx` (and the child of a `timeout`, whose clock then starts at
///   the call) is made at the call and moved into the future, so the future
///   borrows nothing it did not borrow before.
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
/// Not supported: fns that return a boxed future (`Pin<Box<dyn Future>>`)
/// by hand; make them `async fn`s, or race their awaits with `ctx.run`.
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
/// With `#[async_trait]`, put `#[cancellable]` *above* it (attributes run
/// from the top down, and `#[cancellable]` must see the `async fn`s);
/// under it, `#[cancellable]` reports that the order must be swapped.
///
/// # Options
///
/// * `timeout = "500ms"`: the body runs under a child of `ctx` with that
///   timeout (Go's `context.WithTimeout` plus `defer cancel()`: the child is
///   cancelled when the call returns), which the awaits watch and which
///   `ctx` names inside the body: a `&Context` if the parameter was a
///   reference, a `Context` otherwise (so a body that used your own
///   `AsContext` type as `ctx` sees a plain context). An earlier deadline of
///   the parent still wins. The string is parsed
///   at compile time, like Go's `time.ParseDuration`: numbers (decimals
///   allowed) with units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, as in
///   `"1.5s"` or `"1m30s"`.
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
///     let __ctx_exit = ::ctx_runtime::__private::exit_fn::<Result<u32, E>>();
///     let mut __ctx_watch = ::ctx_runtime::__private::Watch::new(
///         ::ctx_runtime::__private::as_context(&ctx));
///     if let Err(err) = __ctx_watch.check() { return __ctx_exit(err); }
///     let a = match ::core::future::IntoFuture::into_future(g(x)) {
///         fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, fut).await {
///             Ok(value) => value,
///             Err(err) => return __ctx_exit(err),
///         },
///     }?;
///     Ok(a)
/// }
/// ```
///
/// The `if let` of the entry check and the `match`es use absolute paths
/// only (`::ctx_runtime::__private::...`, `::core::...`), so the crate using
/// the attribute must depend on `ctx-runtime` under that name; what the
/// user's scope calls `Result`, `Ok` or `core` does not matter.
///
/// When anything is wrong, the attribute emits its errors and the item
/// unchanged; when the item does not even parse, its tokens are kept as they
/// are, so an IDE can still complete inside it.
#[proc_macro_attribute]
pub fn cancellable(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr.into(), item.into()).into()
}

#[cfg(test)]
mod tests {
    use super::pretty;
    use quote::quote;

    #[test]
    fn pretty_prints_like_a_person() {
        assert_eq!(pretty(quote!(&Context)), "&Context");
        assert_eq!(pretty(quote!(&'a mut Context)), "&'a mut Context");
        assert_eq!(
            pretty(quote!(Result<Vec<u8>, io::Error>)),
            "Result<Vec<u8>, io::Error>"
        );
        assert_eq!(pretty(quote!(ctx: &Context)), "ctx: &Context");
        assert_eq!(
            pretty(quote!(impl Fn(u32) -> u32 + Send)),
            "impl Fn(u32) -> u32 + Send"
        );
        assert_eq!(
            pretty(quote!(::ctx_runtime::Context)),
            "::ctx_runtime::Context"
        );
        assert_eq!(
            pretty(quote!(&self, ctx: &Context, id: u32)),
            "&self, ctx: &Context, id: u32"
        );
        assert_eq!(
            pretty(quote!(Box<dyn Error + Send + 'static>)),
            "Box<dyn Error + Send + 'static>"
        );
        assert_eq!(pretty(quote!((ctx, id))), "(ctx, id)");
    }
}

/// Tokens as a person would write them, for error messages: `&Context`,
/// `Result<u32, Error>`, not `& Context`, `Result < u32 , Error >`.
pub(crate) fn pretty(tokens: impl quote::ToTokens) -> String {
    use proc_macro2::{Delimiter, Spacing, TokenTree};

    fn word(tt: &TokenTree) -> bool {
        matches!(tt, TokenTree::Ident(_) | TokenTree::Literal(_))
    }

    fn walk(stream: proc_macro2::TokenStream, out: &mut String) {
        let mut prev: Option<TokenTree> = None;
        for tt in stream {
            let space = match (&prev, &tt) {
                (None, _) => false,
                (Some(p), t) if word(p) && word(t) => true,
                (Some(TokenTree::Punct(p)), _) if p.as_char() == ',' => true,
                (Some(TokenTree::Punct(p)), _)
                    if p.as_char() == '=' || (p.as_char() == '>' && out.ends_with("->")) =>
                {
                    true
                }
                (Some(TokenTree::Punct(p)), _) if p.as_char() == '+' => true,
                (_, TokenTree::Punct(t)) if t.as_char() == '+' || t.as_char() == '=' => true,
                (_, TokenTree::Punct(t)) if t.as_char() == '-' && t.spacing() == Spacing::Joint => {
                    true
                }
                (Some(p), TokenTree::Punct(t)) if word(p) && t.as_char() == '\'' => true,
                (Some(TokenTree::Punct(p)), _)
                    if p.as_char() == ':' && p.spacing() == Spacing::Alone =>
                {
                    !out.ends_with("::")
                }
                (Some(TokenTree::Group(_)), t) if word(t) => true,
                _ => false,
            };
            if space {
                out.push(' ');
            }
            match &tt {
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{ ", " }"),
                        Delimiter::None => ("", ""),
                    };
                    out.push_str(open);
                    walk(group.stream(), out);
                    out.push_str(close);
                }
                other => out.push_str(&other.to_string()),
            }
            prev = Some(tt);
        }
    }

    let mut out = String::new();
    walk(tokens.into_token_stream(), &mut out);
    out
}

/// Errors collected across one expansion, reported together.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
    count: usize,
}

impl Errors {
    pub(crate) fn push(&mut self, err: syn::Error) {
        self.count += err.clone().into_iter().count();
        match &mut self.combined {
            Some(all) => all.combine(err),
            None => self.combined = Some(err),
        }
    }

    /// How many errors so far.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    pub(crate) fn into_compile_errors(self) -> proc_macro2::TokenStream {
        self.combined
            .map(|err| err.into_compile_error())
            .unwrap_or_default()
    }
}
