//! The rewriter: every suspension point of a function's own body becomes a
//! race against the function's `Watch`, and every one it cannot race is
//! reported (`unraced`).
//!
//! What it races:
//! * each `.await` (`race` below);
//! * each `tokio::select!`, `futures::select!` and `select_biased!`, which
//!   gets a branch of its own that watches the context (`select.rs`);
//! * each `join!` and `try_join!`, awaited as one raced future (`join.rs`).
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
//! The visit is bottom-up and does not rewrite inside closures, `async`
//! blocks or nested items (an early `return` there would leave the wrong
//! function), nor macros other than those whose input is a list of
//! expressions.

mod join;
mod macros;
mod select;
mod unraced;

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprAwait, Item, Local, Pat, Stmt};

use crate::diag::Errors;
use crate::idents;
pub(crate) use unraced::{Unraced, warnings};

/// `stringify!` and the quasi-quoters, whose input is data, not code.
pub(crate) fn is_data_macro(mac: &syn::Macro) -> bool {
    macros::kind(mac) == macros::MacroKind::Tokens
}
use unraced::{Reason, Scan};

/// What the rewrite of one body found.
pub(crate) struct Rewritten {
    /// Suspension points raced: awaits, `select!`s and `join!`s.
    pub(crate) raced: usize,
    /// The awaits (and `select!`s, `join!`s) left as they are.
    pub(crate) unraced: Vec<Unraced>,
}

/// Rewrites the body of an `async fn` (or the `async` block a
/// `-> impl Future` fn returns).
pub(crate) fn rewrite_block(block: &mut Block, errors: &mut Errors) -> Rewritten {
    let mut rewriter = Rewriter::default();
    rewriter.visit_block_mut(block);
    for err in rewriter.errors.drain(..) {
        errors.push(err);
    }
    rewriter.finish()
}

/// Finds what a body that is not rewritten (a sync fn's) would leave
/// unraced: its closures and `async` blocks, whose awaits are never raced.
pub(crate) fn unraced_in_sync(block: &mut Block) -> Vec<Unraced> {
    let mut rewriter = Rewriter {
        sync: true,
        ..Rewriter::default()
    };
    rewriter.visit_block_mut(block);
    rewriter.finish().unraced
}

#[derive(Default)]
struct Rewriter {
    raced: usize,
    /// Each with the name of the `let` binding it was found in, if any.
    unraced: Vec<(Unraced, Option<String>)>,
    /// Every identifier in a raced position: a future bound by `let` and
    /// awaited (or joined, or selected) later is raced as a whole there.
    raced_names: HashSet<String>,
    /// Inside a raced position (the operand of an await, an argument of a
    /// join, the future of a select branch): `async` blocks and closures
    /// there are driven by the raced future.
    consumed: usize,
    /// The `let` binding whose initializer is being visited.
    binding: Option<String>,
    /// A sync fn: nothing is raced, only `async` blocks and closures scanned.
    sync: bool,
    errors: Vec<syn::Error>,
}

impl Rewriter {
    fn finish(self) -> Rewritten {
        let raced_names = self.raced_names;
        let unraced = self
            .unraced
            .into_iter()
            .filter(|(_, binding)| binding.as_ref().is_none_or(|b| !raced_names.contains(b)))
            .map(|(unraced, _)| unraced)
            .collect();
        Rewritten {
            raced: self.raced,
            unraced,
        }
    }

    fn warn(&mut self, found: Vec<Unraced>) {
        for unraced in found {
            // A block bound to a name and awaited later is raced there; a
            // spawned task is not, however its handle is awaited.
            let binding = if unraced.bindable {
                self.binding.clone()
            } else {
                None
            };
            self.unraced.push((unraced, binding));
        }
    }

    /// Scans what is not rewritten: an `async` block or closure, whose
    /// awaits are raced only if it is driven by a raced future.
    fn scan(&mut self, reason: Reason, visit: impl FnOnce(&mut Scan)) {
        let reason = (self.consumed == 0).then_some(reason);
        let mut scan = Scan::new(reason, reason);
        visit(&mut scan);
        self.warn(scan.found);
    }

    /// Visits `expr`, a raced position.
    fn visit_raced(&mut self, expr: &mut Expr) {
        collect_idents(expr.to_token_stream(), &mut self.raced_names);
        self.consumed += 1;
        self.visit_expr_mut(expr);
        self.consumed -= 1;
    }

    /// Visits `expr`, evaluated while the watch is lent to a select's own
    /// branch: nothing can be raced there.
    fn visit_unracable(&mut self, expr: &mut Expr, reason: Reason) {
        collect_idents(expr.to_token_stream(), &mut self.raced_names);
        let mut scan = Scan::new(Some(reason), None);
        scan.visit_expr_mut(expr);
        self.warn(scan.found);
    }
}

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Await(await_expr) if !self.sync => {
                self.visit_raced(&mut await_expr.base);
                if let Expr::Await(await_expr) = std::mem::replace(expr, Expr::PLACEHOLDER) {
                    *expr = race(await_expr);
                    self.raced += 1;
                }
            }
            Expr::Macro(mac) => {
                let attrs = std::mem::take(&mut mac.attrs);
                if let Some(mut replaced) = self.rewrite_macro(&mut mac.mac) {
                    replaced.replace_attrs(attrs);
                    *expr = replaced;
                } else if let Expr::Macro(mac) = expr {
                    mac.attrs = attrs;
                }
            }
            Expr::Async(block) => self.scan(Reason::AsyncBlock, |scan| {
                scan.visit_block_mut(&mut block.block);
            }),
            Expr::Closure(closure) => {
                self.scan(Reason::Closure, |scan| scan.visit_closure(closure))
            }
            _ if unraced::is_spawn(expr) => {
                let mut scan = Scan::new(None, None);
                scan.visit_spawn(expr);
                // The spawn call itself (its other arguments) is evaluated here.
                self.warn(scan.found);
                self.visit_spawn_args(expr);
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        match stmt {
            Stmt::Macro(mac) => {
                if let Some(mut replaced) = self.rewrite_macro(&mut mac.mac) {
                    replaced.replace_attrs(std::mem::take(&mut mac.attrs));
                    *stmt = Stmt::Expr(replaced, mac.semi_token);
                }
            }
            Stmt::Local(local) => self.visit_local_mut(local),
            _ => visit_mut::visit_stmt_mut(self, stmt),
        }
    }

    fn visit_local_mut(&mut self, local: &mut Local) {
        let outer = self.binding.take();
        self.binding = binding_name(&local.pat);
        if let Some(init) = &mut local.init {
            self.visit_expr_mut(&mut init.expr);
            self.binding = None;
            if let Some((_, diverge)) = &mut init.diverge {
                self.visit_expr_mut(diverge);
            }
        }
        self.binding = outer;
    }

    // Items have their own bodies (and their own `#[cancellable]`, if any).
    fn visit_item_mut(&mut self, _: &mut Item) {}

    // Only reached for macros in patterns and types: nothing to race.
    fn visit_macro_mut(&mut self, _: &mut syn::Macro) {}
}

impl Rewriter {
    /// The arguments of a spawn call other than the task: evaluated in place.
    fn visit_spawn_args(&mut self, expr: &mut Expr) {
        if let Some((head, args)) = spawn_parts(expr) {
            self.visit_expr_mut(head);
            args.for_each(|arg| self.visit_expr_mut(arg));
        }
    }
}

/// An optional leading `biased;` (of `select!` and `join!`), as written.
pub(crate) fn parse_biased(input: syn::parse::ParseStream<'_>) -> syn::Result<Option<TokenStream>> {
    if !(input.peek(syn::Ident) && input.peek2(syn::Token![;])) {
        return Ok(None);
    }
    let word: syn::Ident = input.parse()?;
    if word != "biased" {
        return Err(syn::Error::new(word.span(), "expected `biased;`"));
    }
    let semi: syn::Token![;] = input.parse()?;
    Ok(Some(quote::quote!(#word #semi)))
}

/// A spawn call's callee (or receiver), and its arguments other than the
/// task (an `async` block or a closure): the parts that run in place.
pub(crate) fn spawn_parts(expr: &mut Expr) -> Option<(&mut Expr, impl Iterator<Item = &mut Expr>)> {
    let (head, args) = match expr {
        Expr::Call(call) => (&mut *call.func, &mut call.args),
        Expr::MethodCall(call) => (&mut *call.receiver, &mut call.args),
        _ => return None,
    };
    let args = args
        .iter_mut()
        .filter(|arg| !matches!(arg, Expr::Async(_) | Expr::Closure(_)));
    Some((head, args))
}

/// `x` in `let x = ...` or `let mut x: T = ...`.
fn binding_name(pat: &Pat) -> Option<String> {
    match pat {
        Pat::Ident(ident) if ident.subpat.is_none() => Some(ident.ident.to_string()),
        Pat::Type(typed) => binding_name(&typed.pat),
        _ => None,
    }
}

fn collect_idents(tokens: TokenStream, into: &mut HashSet<String>) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(ident) => {
                into.insert(ident.to_string());
            }
            TokenTree::Group(group) => collect_idents(group.stream(), into),
            _ => {}
        }
    }
}

/// `<base>.await` raced against the watch.
fn race(await_expr: ExprAwait) -> Expr {
    let user = await_expr.await_token.span;
    let at = Span::mixed_site().located_at(user);
    // These bindings scope over generated code only, so they may take the
    // user's span: a type error about the awaited value (`__ctx_value`) is
    // then reported at the user's `.await`, as if no macro were involved.
    let fut = syn::Ident::new(idents::FUT, user);
    let value = syn::Ident::new(idents::VALUE, user);
    let err = syn::Ident::new(idents::ERR, user);
    // These name the prologue's bindings: hygienic.
    let watch = idents::ident_at(idents::WATCH, user);
    let exit = idents::ident_at(idents::EXIT, user);
    // `IntoFuture::into_future(<expr>)` as in rustc's own desugaring: a
    // non-future is reported first at the user's `<expr>.await`, with
    // rustc's own wording. (Async code is edition 2018+, where the user's
    // span resolves `::core`.)
    let into_future = quote_spanned!(user=> ::core::future::IntoFuture::into_future);
    let raced: TokenStream = quote_spanned! {at=>
        match ::ctx_runtime::__private::race(&mut #watch, #fut).await {
            ::core::result::Result::Ok(#value) => #value,
            ::core::result::Result::Err(#err) => return #exit(#err),
        }
    };
    // `match <into_future>(<expr>) { __ctx_fut => <raced>, }`, built as a
    // tree rather than parsed from tokens: this runs once per await, and
    // parsing the template was 40% of an expansion. The fixed parts go in
    // as verbatim tokens (nothing visits them again); the user's expression
    // goes in as a syntax tree, so that it is printed with the parentheses
    // it needs.
    Expr::Match(syn::ExprMatch {
        attrs: await_expr.attrs,
        // The `match` spans the user's `<expr>.await` with the user's
        // hygiene, so that lints about the value (`unused_must_use`) point
        // at the user's code, not at the attribute.
        match_token: syn::Token![match](await_expr.base.span()),
        expr: Box::new(Expr::Call(syn::ExprCall {
            attrs: Vec::new(),
            func: Box::new(Expr::Verbatim(into_future)),
            paren_token: syn::token::Paren(at),
            args: std::iter::once(*await_expr.base).collect(),
        })),
        brace_token: syn::token::Brace(await_expr.await_token.span),
        arms: vec![syn::Arm {
            attrs: Vec::new(),
            pat: syn::Pat::Ident(syn::PatIdent {
                attrs: Vec::new(),
                by_ref: None,
                mutability: None,
                ident: fut,
                subpat: None,
            }),
            fat_arrow_token: syn::Token![=>](at),
            body: Box::new(Expr::Verbatim(raced)),
            comma: Some(syn::Token![,](at)),
        }],
    })
}

/// `return __ctx_exit(__ctx_err)`, for the branches `select.rs` adds.
fn exit_with_err() -> TokenStream {
    let (exit, err) = (idents::ident(idents::EXIT), idents::ident(idents::ERR));
    quote_spanned!(Span::mixed_site()=> { return #exit(#err); })
}

trait ReplaceAttrs {
    fn replace_attrs(&mut self, attrs: Vec<syn::Attribute>);
}

impl ReplaceAttrs for Expr {
    /// Puts the attributes of a replaced macro call on its replacement.
    fn replace_attrs(&mut self, attrs: Vec<syn::Attribute>) {
        if attrs.is_empty() {
            return;
        }
        match self {
            Expr::Block(block) => block.attrs = attrs,
            Expr::Match(matched) => matched.attrs = attrs,
            Expr::Macro(mac) => mac.attrs = attrs,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
