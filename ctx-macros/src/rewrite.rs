//! The `.await` rewriter: every `.await` of a function's own body becomes a
//! race against the function's `Watch`.
//!
//! ```text
//! <expr>.await
//! ```
//! becomes
//! ```text
//! match ::core::future::IntoFuture::into_future(<expr>) {
//!     __ctx_fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, __ctx_fut).await {
//!         ::core::result::Result::Ok(__ctx_value) => __ctx_value,
//!         ::core::result::Result::Err(__ctx_err) => return __ctx_exit(__ctx_err),
//!     },
//! }
//! ```
//! The outer `match` is rustc's own desugaring of `.await`: it keeps the
//! temporaries of `<expr>` alive until the await completes, and it ends the
//! mutable borrow of the watch by an inner `.await` (in `<expr>`) before the
//! outer one starts. `race` holds that borrow only while it is polled.
//!
//! The visit is bottom-up and does not enter closures, `async` blocks or
//! nested items (an early `return` there would leave the wrong function), nor
//! macros other than those whose input is a list of expressions.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Block, Expr, ExprAsync, ExprAwait, ExprClosure, Ident, Item, Macro, MacroDelimiter, Token,
};

/// Macros whose input is not a list of expressions, or whose expressions are
/// not evaluated in the function's own control flow (or not evaluated at
/// all: `stringify!`, `concat!` and the quasi-quoters turn tokens into data,
/// so rewriting them would change the data): left alone, even with
/// parentheses.
const OPAQUE_MACROS: [&str; 13] = [
    "select",
    "select_biased",
    "join",
    "try_join",
    "pin",
    "stream",
    "try_stream",
    "stringify",
    "concat",
    "quote",
    "quote_spanned",
    "parse_quote",
    "parse_quote_spanned",
];

/// The name of the watch every rewritten await races against.
pub(crate) fn watch_ident() -> Ident {
    Ident::new("__ctx_watch", Span::mixed_site())
}

/// The name of the `fn(Error) -> R` that builds the early return value.
pub(crate) fn exit_ident() -> Ident {
    Ident::new("__ctx_exit", Span::mixed_site())
}

/// Rewrites the awaits of `block` (the body of an `async fn`, or the `async`
/// block a `-> impl Future` fn returns). Returns how many it rewrote.
pub(crate) fn rewrite_block(block: &mut Block) -> usize {
    let mut rewriter = Rewriter { awaits: 0 };
    rewriter.visit_block_mut(block);
    rewriter.awaits
}

struct Rewriter {
    awaits: usize,
}

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        // Children first, so that `a.await.await` rewrites the inner await
        // inside the scrutinee of the outer one.
        visit_mut::visit_expr_mut(self, expr);
        if matches!(expr, Expr::Await(_))
            && let Expr::Await(await_expr) = std::mem::replace(expr, Expr::PLACEHOLDER)
        {
            *expr = race(await_expr);
            self.awaits += 1;
        }
    }

    // An early return from these would leave the closure or block, not the
    // function: not rewritten. (`ctx.run(fut).await?` is the tool there.)
    fn visit_expr_closure_mut(&mut self, _: &mut ExprClosure) {}

    fn visit_expr_async_mut(&mut self, _: &mut ExprAsync) {}

    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        if matches!(mac.delimiter, MacroDelimiter::Brace(_)) {
            return;
        }
        let opaque = mac
            .path
            .segments
            .last()
            .is_none_or(|segment| OPAQUE_MACROS.iter().any(|name| segment.ident == name));
        if opaque {
            return;
        }
        let Ok(mut args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
        else {
            return;
        };
        let before = self.awaits;
        for arg in args.iter_mut() {
            self.visit_expr_mut(arg);
        }
        if self.awaits != before {
            mac.tokens = args.into_token_stream();
        }
    }
}

/// `<base>.await` raced against the watch.
fn race(await_expr: ExprAwait) -> Expr {
    let user = await_expr.await_token.span;
    let at = Span::mixed_site().located_at(user);
    let base = Ident::new("__ctx_base", at);
    // These bindings scope over generated code only, so they may take the
    // user's span: a type error about the awaited value (`__ctx_value`) is
    // then reported at the user's `.await`, as if no macro were involved.
    let fut = Ident::new("__ctx_fut", user);
    let value = Ident::new("__ctx_value", user);
    let err = Ident::new("__ctx_err", user);
    // These name the prologue's bindings: hygienic.
    let watch = Ident::new("__ctx_watch", at);
    let exit = Ident::new("__ctx_exit", at);
    // `IntoFuture::into_future(<expr>)` as in rustc's own desugaring: a
    // non-future is reported first at the user's `<expr>.await`, with
    // rustc's own wording. (Async code is edition 2018+, where the user's
    // span resolves `::core`.)
    let into_future = quote_spanned!(user=> ::core::future::IntoFuture::into_future);
    let template: TokenStream = quote_spanned! {at=>
        match #into_future(#base) {
            #fut => match ::ctx_runtime::__private::race(&mut #watch, #fut).await {
                ::core::result::Result::Ok(#value) => #value,
                ::core::result::Result::Err(#err) => return #exit(#err),
            },
        }
    };
    match syn::parse2::<syn::ExprMatch>(template) {
        Ok(mut matched) => {
            // The `match` spans the user's `<expr>.await` with the user's
            // hygiene, so that lints about the value (`unused_must_use`)
            // point at the user's code, not at the attribute.
            matched.match_token.span = await_expr.base.span();
            matched.brace_token = syn::token::Brace(await_expr.await_token.span);
            // The user's expression goes in as a syntax tree, so that it is
            // printed with the parentheses it needs.
            if let Expr::Call(call) = &mut *matched.expr
                && let Some(arg) = call.args.first_mut()
            {
                *arg = *await_expr.base;
            }
            matched.attrs = await_expr.attrs;
            Expr::Match(matched)
        }
        // The template is fixed: this is unreachable, but never panic.
        Err(err) => Expr::Verbatim(err.to_compile_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    /// Rewrites the body of `input` and compares it to `expected`, both
    /// printed from syntax trees.
    #[track_caller]
    fn assert_rewrites(input: TokenStream, expected: TokenStream, awaits: usize) {
        let mut block: Block = syn::parse2(input).expect("a block");
        assert_eq!(
            rewrite_block(&mut block),
            awaits,
            "number of awaits rewritten"
        );
        let expected: Block = syn::parse2(expected).expect("the expected block");
        assert_eq!(
            block.into_token_stream().to_string(),
            expected.into_token_stream().to_string()
        );
    }

    /// What one rewritten `.await` of `$base` looks like.
    macro_rules! raced {
        ($($base:tt)*) => {
            quote! {
                match ::core::future::IntoFuture::into_future($($base)*) {
                    __ctx_fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, __ctx_fut).await {
                        ::core::result::Result::Ok(__ctx_value) => __ctx_value,
                        ::core::result::Result::Err(__ctx_err) => return __ctx_exit(__ctx_err),
                    },
                }
            }
        };
    }

    #[test]
    fn one_await() {
        let raced = raced!(fetch(url));
        assert_rewrites(
            quote!({
                let x = fetch(url).await;
            }),
            quote!({ let x = #raced; }),
            1,
        );
    }

    #[test]
    fn await_of_await() {
        let inner = raced!(a);
        let outer = raced!(#inner);
        assert_rewrites(quote!({ a.await.await }), quote!({ #outer }), 2);
    }

    #[test]
    fn await_try_method_await_try() {
        let first = raced!(f());
        let second = raced!(#first?.g());
        assert_rewrites(quote!({ f().await?.g().await? }), quote!({ #second? }), 2);
    }

    #[test]
    fn match_scrutinee_and_guard() {
        let scrutinee = raced!(next());
        let guard = raced!(ok(n));
        let arm = raced!(handle(n));
        assert_rewrites(
            quote!({
                match next().await {
                    Some(n) if ok(n).await => handle(n).await,
                    _ => 0,
                }
            }),
            quote!({
                match #scrutinee {
                    Some(n) if #guard => #arm,
                    _ => 0,
                }
            }),
            3,
        );
    }

    #[test]
    fn let_else_and_let_chains() {
        let init = raced!(read());
        let diverge = raced!(log());
        let chain = raced!(more());
        assert_rewrites(
            quote!({
                let Some(x) = read().await else {
                    log().await;
                    return Ok(());
                };
                if let Some(y) = x
                    && more().await
                {}
            }),
            quote!({
                let Some(x) = (#init) else { #diverge; return Ok(()); };
                if let Some(y) = x && #chain { }
            }),
            3,
        );
    }

    #[test]
    fn labeled_loops_and_blocks_with_break_value() {
        let in_loop = raced!(rx.recv());
        let in_block = raced!(probe());
        assert_rewrites(
            quote!({
                let n = 'outer: loop {
                    while let Some(v) = rx.recv().await {
                        if v > 3 {
                            break 'outer v;
                        }
                    }
                };
                let m = 'b: {
                    break 'b probe().await;
                };
            }),
            quote!({
                let n = 'outer: loop {
                    while let Some(v) = #in_loop {
                        if v > 3 { break 'outer v; }
                    }
                };
                let m = 'b: { break 'b #in_block; };
            }),
            2,
        );
    }

    #[test]
    fn closures_async_blocks_and_items_are_left_alone() {
        let body = quote!({
            let c = |x| async move { x.await };
            let d = async { slow().await };
            let e = async || slow().await;
            fn nested() -> impl Future<Output = ()> {
                async { slow().await }
            }
            impl Foo {
                async fn bar(&self) {
                    slow().await
                }
            }
        });
        assert_rewrites(body.clone(), body, 0);
    }

    #[test]
    fn expression_macros_are_rewritten() {
        let a = raced!(a());
        let b = raced!(b());
        let c = raced!(c());
        let d = raced!(d());
        assert_rewrites(
            quote!({
                assert_eq!(a().await, 1, "a");
                println!("{} {x}", b().await, x = c().await);
                let v = vec![d().await];
            }),
            quote!({
                assert_eq!(#a, 1, "a");
                println!("{} {x}", #b, x = #c);
                let v = vec![#d];
            }),
            4,
        );
    }

    #[test]
    fn opaque_macros_are_left_alone() {
        let body = quote!({
            tokio::select! { v = rx.recv() => v, _ = ctx.done() => None };
            tokio::join!(a(), b().await);
            let f = std::pin::pin!(c().await);
            my_dsl! { d().await };
            vec![e().await; 3];
            matches!(f().await, Some(x) if x > 1);
        });
        assert_rewrites(body.clone(), body, 0);
    }

    #[test]
    fn token_macros_keep_the_awaits_they_quote() {
        // These never evaluate their input: rewriting it would change the data.
        let body = quote!({
            let text = stringify!(fetch().await);
            assert_eq!(stringify!(a.await, b), "a.await, b");
            let tokens = quote::quote!(x.await);
            let spanned = quote_spanned!(span=> x.await);
            let expr: syn::Expr = parse_quote!(x.await);
        });
        assert_rewrites(body.clone(), body, 0);
    }

    #[test]
    fn unchanged_macros_keep_their_tokens() {
        // Not re-printed when nothing changed (the tokens are kept verbatim).
        let mut block: Block = syn::parse2(quote!({
            println!("{}", x);
        }))
        .unwrap();
        assert_eq!(rewrite_block(&mut block), 0);
        assert!(
            block
                .into_token_stream()
                .to_string()
                .contains("println ! (\"{}\" , x)")
        );
    }

    #[test]
    fn struct_literal_futures_print_back() {
        let mut block: Block = syn::parse2(quote!({ Fut { inner }.await })).unwrap();
        assert_eq!(rewrite_block(&mut block), 1);
        let printed = block.into_token_stream().to_string();
        assert!(
            printed.starts_with(
                "{ match :: core :: future :: IntoFuture :: into_future (Fut { inner }) {"
            ),
            "{printed}"
        );
        syn::parse_str::<Block>(&printed).unwrap();
    }
}
