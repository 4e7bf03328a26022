//! The footguns of a body, rejected at compile time, each at its tokens and
//! with its fix:
//!
//! * `let (x, _) = parent.with_cancel();` (or `with_timeout`,
//!   `with_deadline` and their `_cause` forms): the `_` drops the
//!   `CancelHandle` at once, and dropping it cancels `x`;
//! * `Context::background()` / `Context::todo()` in a fn that has `ctx`: Go's
//!   contextcheck, work cut off from the caller's cancellation.
//!
//! Everything inside the annotated body is looked at, closures and `async`
//! blocks included, except nested items (they are other fns).

use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, Item, Local, Macro, Pat, Token};

use crate::diag::{Errors, pretty};

/// The methods that return a context and the `CancelHandle` that cancels it.
const WITH_HANDLE: [&str; 6] = [
    "with_cancel",
    "with_timeout",
    "with_deadline",
    "with_cancel_cause",
    "with_timeout_cause",
    "with_deadline_cause",
];

/// Checks `body`; `has_ctx`: the fn takes `ctx` (for the contextcheck).
pub(crate) fn check(body: &Block, has_ctx: bool, errors: &mut Errors) {
    let mut check = Check {
        has_ctx,
        errors: Vec::new(),
    };
    check.visit_block_mut(&mut body.clone());
    for err in check.errors {
        errors.push(err);
    }
}

struct Check {
    has_ctx: bool,
    errors: Vec<syn::Error>,
}

impl VisitMut for Check {
    fn visit_local_mut(&mut self, local: &mut Local) {
        if let Some(init) = &local.init
            && let Some(method) = handle_method(&init.expr)
            && let Some((name, dropped)) = dropped_handle(&local.pat)
        {
            self.errors.push(syn::Error::new_spanned(
                dropped,
                format_args!(
                    "the `{dropped}` drops the `CancelHandle` that `{method}` returns, and dropping it \
                     cancels `{name}` at once: bind it to a name, `let ({name}, _cancel) = ...`, which \
                     cancels `{name}` when it goes out of scope (Go's `defer cancel()`)",
                    dropped = pretty(dropped),
                ),
            ));
        }
        visit_mut::visit_local_mut(self, local);
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if self.has_ctx
            && let Expr::Call(call) = &*expr
            && let Some(root) = root_context(&call.func)
        {
            self.errors.push(syn::Error::new_spanned(
                &*expr,
                format_args!(
                    "`Context::{root}()` in a fn that takes `ctx` cuts this work off from the caller's \
                     cancellation and deadline: derive from `ctx` instead (`ctx.with_cancel()`, \
                     `ctx.with_timeout(..)`, or `ctx` itself), or use `ctx.without_cancel()` for work \
                     that must outlive the call but keep its values"
                ),
            ));
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        // `stringify!` and the quasi-quoters turn tokens into data.
        if crate::rewrite::is_data_macro(mac) {
            return;
        }
        if let Ok(mut args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            for arg in args.iter_mut() {
                self.visit_expr_mut(arg);
            }
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}
}

/// `with_cancel` in `parent.with_cancel()`, `Context::with_cancel(&parent)`,
/// or the same behind `?`, parentheses or a reference.
fn handle_method(expr: &Expr) -> Option<String> {
    match expr {
        Expr::MethodCall(call) => {
            let name = call.method.to_string();
            WITH_HANDLE.contains(&name.as_str()).then_some(name)
        }
        Expr::Call(call) => match &*call.func {
            Expr::Path(path) => {
                let name = path.path.segments.last()?.ident.to_string();
                WITH_HANDLE.contains(&name.as_str()).then_some(name)
            }
            _ => None,
        },
        Expr::Paren(inner) => handle_method(&inner.expr),
        Expr::Group(inner) => handle_method(&inner.expr),
        _ => None,
    }
}

/// For `(x, _)` (or `(x, ..)`, or typed): the name of `x` and the `_`.
fn dropped_handle(pat: &Pat) -> Option<(String, &Pat)> {
    match pat {
        Pat::Type(typed) => dropped_handle(&typed.pat),
        Pat::Paren(inner) => dropped_handle(&inner.pat),
        Pat::Tuple(tuple) if tuple.elems.len() == 2 => {
            let second = &tuple.elems[1];
            if !matches!(second, Pat::Wild(_) | Pat::Rest(_)) {
                return None;
            }
            let name = match &tuple.elems[0] {
                Pat::Ident(ident) => ident.ident.to_string(),
                other => pretty(other.to_token_stream()),
            };
            Some((name, second))
        }
        _ => None,
    }
}

/// `background` or `todo` in `Context::background`, `ctx_runtime::Context::todo`.
fn root_context(func: &Expr) -> Option<&'static str> {
    let Expr::Path(path) = func else {
        return None;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    match segments.as_slice() {
        [.., ty, name] if ty == "Context" && name == "background" => Some("background"),
        [.., ty, name] if ty == "Context" && name == "todo" => Some("todo"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(body: proc_macro2::TokenStream, has_ctx: bool) -> Vec<String> {
        let block: Block = syn::parse2(body).expect("a block");
        let mut errors = Errors::default();
        check(&block, has_ctx, &mut errors);
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_dropped_handle_is_an_error() {
        for body in [
            quote!({
                let (child, _) = ctx.with_cancel();
            }),
            quote!({
                let (child, _) = parent.with_timeout(Duration::from_secs(1));
            }),
            quote!({
                let (child, ..) = ctx.with_deadline(at);
            }),
            quote!({
                let (child, _): (Context, CancelHandle) = (ctx.with_timeout_cause(d, "slow"));
            }),
            quote!({
                let _ = async {
                    let (child, _) = Context::with_cancel(&ctx);
                };
            }),
            quote!({
                let f = || {
                    let (child, _) = ctx.with_cancel();
                };
            }),
        ] {
            let errors = errors_of(body.clone(), true);
            assert_eq!(errors.len(), 1, "{body}: {errors:?}");
            assert!(errors[0].contains("cancels `child` at once"), "{errors:?}");
            assert!(
                errors[0].contains("let (child, _cancel) = ..."),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn a_bound_handle_is_fine() {
        for body in [
            quote!({
                let (child, _cancel) = ctx.with_cancel();
            }),
            quote!({
                let (child, cancel) = ctx.with_timeout(d);
            }),
            quote!({
                let (a, _) = pair();
            }),
            quote!({
                let (a, _) = ctx.with_value(1);
            }),
            quote!({
                fn nested() {
                    let (child, _) = Context::background().with_cancel();
                }
            }),
        ] {
            assert_eq!(
                errors_of(body.clone(), true),
                Vec::<String>::new(),
                "{body}"
            );
        }
    }

    #[test]
    fn a_root_context_in_a_fn_with_ctx_is_an_error() {
        let errors = errors_of(
            quote!({
                let a = Context::background();
                let b = ctx_runtime::Context::todo();
                assert!(run(&Context::background()).await.is_ok());
            }),
            true,
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("`Context::background()` in a fn that takes `ctx`"));
        assert!(errors[1].starts_with("`Context::todo()`"));
        assert!(errors[0].contains("ctx.without_cancel()"));
        // Without `ctx` there is nothing to derive from.
        assert!(
            errors_of(
                quote!({
                    Context::background();
                }),
                false
            )
            .is_empty()
        );
    }
}
