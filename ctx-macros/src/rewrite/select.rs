//! `select!` raced: the macro gets one more branch, which watches the fn's
//! context and returns `Err(E::from(err))` from the fn when it fires.
//!
//! tokio (1.54; read its `macros/select.rs` before changing this): the
//! preconditions are evaluated first, in order, then every branch's future,
//! into one tuple; the branches are polled (from a random one, or in order
//! under `biased;`) until one completes and matches its pattern; a branch
//! that completes without matching is disabled; when none is left the
//! `else` branch runs (or it panics). The futures are dropped before the
//! handler runs. So
//!
//! ```text
//! tokio::select! { biased; Some(v) = rx.recv(), if open => h(v), else => e }
//! ```
//! becomes
//! ```text
//! {
//!     let __ctx_select = ::ctx_runtime::__private::Select::new(0);
//!     tokio::select! {
//!         biased;
//!         ::core::option::Option::Some(__ctx_err) =
//!             ::ctx_runtime::__private::select_watch(&mut __ctx_watch, &__ctx_select)
//!             => { return __ctx_exit(__ctx_err); },
//!         Some(v) = ::ctx_runtime::__private::select_branch(&__ctx_select, rx.recv(),
//!                 |__ctx_out| /* matches!(__ctx_out, Some(v)) */),
//!             if ::ctx_runtime::__private::Select::enable(&__ctx_select, open) => h(v),
//!         else => e
//!     }
//! }
//! ```
//! The watch goes first under `biased;` (so it wins over ready branches) and
//! last otherwise. It never ends the select on its own account except by
//! returning: it counts the enabled branches (preconditions still evaluated
//! once, by tokio), learns from each wrapped future when it completed
//! without matching its pattern, and resolves to `None` (its pattern fails,
//! tokio disables it) once no enabled branch is left, so that `else` runs.
//!
//! futures (0.3): branches are `FusedFuture`s, skipped once terminated;
//! `complete =>` runs when all are; patterns are irrefutable. The watch is a
//! `FusedFuture` that reports itself terminated once every user future is.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::visit_mut::VisitMut;
use syn::{Expr, Macro, MacroDelimiter, Pat, Token};

use super::Rewriter;
use super::macros::{self, SelectKind};
use super::unraced::Reason;
use crate::idents;

/// tokio's `select!` takes at most 64 branches.
const TOKIO_MAX_BRANCHES: usize = 64;

/// Rewrites a `select!`; `None` if it cannot be read (the caller warns).
pub(super) fn rewrite(rewriter: &mut Rewriter, mac: &Macro, kind: SelectKind) -> Option<Expr> {
    let kind = match kind {
        SelectKind::Bare if macros::has_futures_branches(mac.tokens.clone()) => {
            SelectKind::Futures { biased: false }
        }
        SelectKind::Bare => SelectKind::Tokio,
        SelectKind::Unknown => return None,
        known => known,
    };
    let tokens = match kind {
        SelectKind::Futures { biased } => {
            let mut select: FuturesSelect = mac.parse_body().ok()?;
            select.rewrite(rewriter, biased);
            select.emit(mac, biased)
        }
        _ => {
            let mut select: TokioSelect = mac.parse_body().ok()?;
            if select.branches.len() >= TOKIO_MAX_BRANCHES {
                rewriter.errors.push(syn::Error::new(
                    macros::name_span(mac),
                    "`#[cancellable]` races this `select!` with a branch of its own, and tokio's \
                     `select!` takes at most 64 branches: split it, or mark the fn \
                     `#[cancellable(skip)]` and race it by hand with `err = ctx.done() => ..`",
                ));
                return None;
            }
            select.rewrite(rewriter);
            select.emit(mac)
        }
    };
    rewriter.raced += 1;
    syn::parse2(tokens).ok()
}

/// `{ let __ctx_select = Select::new(n); path! { .. } }`.
fn wrap(mac: &Macro, unconditional: u32, branches: TokenStream) -> TokenStream {
    let select = idents::ident(idents::SELECT);
    let path = &mac.path;
    let bang = &mac.bang_token;
    let body = match &mac.delimiter {
        MacroDelimiter::Paren(paren) => {
            let mut tokens = TokenStream::new();
            paren.surround(&mut tokens, |t| t.extend(branches));
            tokens
        }
        MacroDelimiter::Bracket(bracket) => {
            let mut tokens = TokenStream::new();
            bracket.surround(&mut tokens, |t| t.extend(branches));
            tokens
        }
        MacroDelimiter::Brace(brace) => {
            let mut tokens = TokenStream::new();
            brace.surround(&mut tokens, |t| t.extend(branches));
            tokens
        }
    };
    quote_spanned! {Span::mixed_site()=>
        {
            let #select = ::ctx_runtime::__private::Select::new(#unconditional);
            #path #bang #body
        }
    }
}

/// A handler as it can be re-emitted: one that starts with a block-like
/// expression without being one (`<raced await> + 1`, once its await is
/// rewritten into a `match`) is parenthesized, or futures' parser would end
/// it after the `match`.
fn handler_tokens(handler: &Expr) -> TokenStream {
    if !block_like(handler) && starts_block_like(handler) {
        quote!((#handler))
    } else {
        handler.to_token_stream()
    }
}

fn block_like(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Match(_)
            | Expr::If(_)
            | Expr::Block(_)
            | Expr::Loop(_)
            | Expr::While(_)
            | Expr::ForLoop(_)
            | Expr::Unsafe(_)
            | Expr::TryBlock(_)
            | Expr::Const(_)
    )
}

/// The leftmost operand of `expr` is block-like.
fn starts_block_like(expr: &Expr) -> bool {
    let left = match expr {
        Expr::Binary(e) => &e.left,
        Expr::MethodCall(e) => &e.receiver,
        Expr::Field(e) => &e.base,
        Expr::Index(e) => &e.expr,
        Expr::Try(e) => &e.expr,
        Expr::Cast(e) => &e.expr,
        Expr::Call(e) => &e.func,
        Expr::Await(e) => &e.base,
        Expr::Assign(e) => &e.left,
        Expr::Range(e) => match &e.start {
            Some(start) => start,
            None => return false,
        },
        _ => return false,
    };
    block_like(left) || starts_block_like(left)
}

/// A handler, parsed as tokio and futures do: a block needs no comma.
fn parse_handler(input: ParseStream<'_>) -> syn::Result<(Expr, bool)> {
    let handler = Expr::parse_with_earlier_boundary_rule(input)?;
    let block = matches!(handler, Expr::Block(_));
    let comma = if block || input.is_empty() {
        input.parse::<Option<Token![,]>>()?.is_some()
    } else {
        input.parse::<Token![,]>().map(|_| true)?
    };
    Ok((handler, comma))
}

struct TokioBranch {
    pat: Pat,
    fut: Expr,
    precondition: Option<Expr>,
    handler: Expr,
}

struct TokioSelect {
    biased: Option<TokenStream>,
    branches: Vec<TokioBranch>,
    otherwise: Option<(TokenStream, Expr)>,
}

impl Parse for TokioSelect {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let biased = super::parse_biased(input)?;
        let mut branches = Vec::new();
        let mut otherwise = None;
        while !input.is_empty() {
            if input.peek(Token![else]) {
                let else_token: Token![else] = input.parse()?;
                let arrow: Token![=>] = input.parse()?;
                let expr: Expr = input.parse()?;
                input.parse::<Option<Token![,]>>()?;
                if !input.is_empty() {
                    return Err(input.error("`else` must be the last branch"));
                }
                otherwise = Some((quote!(#else_token #arrow), expr));
                break;
            }
            let pat = Pat::parse_multi_with_leading_vert(input)?;
            input.parse::<Token![=]>()?;
            let fut: Expr = input.parse()?;
            let precondition = if input.peek(Token![,]) && input.peek2(Token![if]) {
                input.parse::<Token![,]>()?;
                input.parse::<Token![if]>()?;
                Some(input.parse()?)
            } else {
                None
            };
            input.parse::<Token![=>]>()?;
            let (handler, _) = parse_handler(input)?;
            branches.push(TokioBranch {
                pat,
                fut,
                precondition,
                handler,
            });
        }
        if branches.is_empty() {
            return Err(input.error("no branches"));
        }
        Ok(TokioSelect {
            biased,
            branches,
            otherwise,
        })
    }
}

impl TokioSelect {
    fn rewrite(&mut self, rewriter: &mut Rewriter) {
        for branch in &mut self.branches {
            if let Some(precondition) = &mut branch.precondition {
                rewriter.visit_expr_mut(precondition);
            }
        }
        for branch in &mut self.branches {
            if self.biased.is_some() {
                rewriter.visit_unracable(&mut branch.fut, Reason::BiasedSelectFuture);
            } else {
                rewriter.visit_raced(&mut branch.fut);
            }
        }
        for branch in &mut self.branches {
            rewriter.visit_expr_mut(&mut branch.handler);
        }
        if let Some((_, otherwise)) = &mut self.otherwise {
            rewriter.visit_expr_mut(otherwise);
        }
    }

    fn emit(&self, mac: &Macro) -> TokenStream {
        let mixed = Span::mixed_site();
        let (watch, select, err, out) = (
            idents::ident(idents::WATCH),
            idents::ident(idents::SELECT),
            idents::ident(idents::ERR),
            idents::ident(idents::OUT),
        );
        let exit = super::exit_with_err();
        let watch_branch = quote_spanned! {mixed=>
            ::core::option::Option::Some(#err) =
                ::ctx_runtime::__private::select_watch(&mut #watch, &#select) => #exit,
        };
        let mut branches = TokenStream::new();
        if let Some(biased) = &self.biased {
            branches.extend(biased.clone());
            branches.extend(watch_branch.clone());
        }
        let mut unconditional = 0u32;
        for branch in &self.branches {
            let (pat, fut, handler) = (&branch.pat, &branch.fut, &branch.handler);
            let mut test = pat.clone();
            clean_pattern(&mut test);
            let matches = quote_spanned! {mixed=>
                |#out| {
                    #[allow(unused_variables, unreachable_patterns, clippy::match_like_matches_macro)]
                    let matched = match #out { #test => true, _ => false };
                    matched
                }
            };
            branches.extend(quote_spanned! {mixed=>
                #pat = ::ctx_runtime::__private::select_branch(&#select, #fut, #matches)
            });
            match &branch.precondition {
                Some(precondition) => branches.extend(quote_spanned! {mixed=>
                    , if ::ctx_runtime::__private::Select::enable(&#select, #precondition)
                }),
                None => unconditional += 1,
            }
            let handler = handler_tokens(handler);
            branches.extend(quote_spanned!(mixed=> => #handler,));
        }
        if self.biased.is_none() {
            branches.extend(watch_branch);
        }
        if let Some((else_arrow, otherwise)) = &self.otherwise {
            let otherwise = handler_tokens(otherwise);
            branches.extend(quote!(#else_arrow #otherwise));
        }
        wrap(mac, unconditional, branches)
    }
}

/// The branch's pattern as tokio tests it against `&out` (its
/// `select_priv_clean_pattern!`): without `ref` and `mut`.
fn clean_pattern(pat: &mut Pat) {
    match pat {
        Pat::Ident(ident) => {
            ident.by_ref = None;
            ident.mutability = None;
            if let Some((_, sub)) = &mut ident.subpat {
                clean_pattern(sub);
            }
        }
        Pat::Or(or) => or.cases.iter_mut().for_each(clean_pattern),
        Pat::Slice(slice) => slice.elems.iter_mut().for_each(clean_pattern),
        Pat::Struct(fields) => fields
            .fields
            .iter_mut()
            .for_each(|field| clean_pattern(&mut field.pat)),
        Pat::Tuple(tuple) => tuple.elems.iter_mut().for_each(clean_pattern),
        Pat::TupleStruct(tuple) => tuple.elems.iter_mut().for_each(clean_pattern),
        Pat::Reference(reference) => {
            reference.mutability = None;
            clean_pattern(&mut reference.pat);
        }
        Pat::Type(typed) => clean_pattern(&mut typed.pat),
        Pat::Paren(paren) => clean_pattern(&mut paren.pat),
        _ => {}
    }
}

struct FuturesBranch {
    pat: Pat,
    fut: Expr,
    handler: Expr,
}

struct FuturesSelect {
    branches: Vec<FuturesBranch>,
    /// `complete => ..` and `default => ..`, as written.
    complete: Option<(TokenStream, Expr)>,
    default: Option<(TokenStream, Expr)>,
}

impl Parse for FuturesSelect {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut select = FuturesSelect {
            branches: Vec::new(),
            complete: None,
            default: None,
        };
        while !input.is_empty() {
            let special = input.peek(syn::Ident) && input.peek2(Token![=>]) || {
                input.peek(Token![default]) && input.peek2(Token![=>])
            };
            if special {
                let name: TokenStream = if input.peek(Token![default]) {
                    input.parse::<Token![default]>()?.into_token_stream()
                } else {
                    input.parse::<syn::Ident>()?.into_token_stream()
                };
                let arrow: Token![=>] = input.parse()?;
                let (handler, _) = parse_handler(input)?;
                let slot = match name.to_string().as_str() {
                    "complete" => &mut select.complete,
                    "default" => &mut select.default,
                    _ => return Err(syn::Error::new_spanned(name, "expected `=`")),
                };
                if slot.is_some() {
                    return Err(syn::Error::new_spanned(name, "given twice"));
                }
                *slot = Some((quote!(#name #arrow), handler));
                continue;
            }
            let pat = Pat::parse_multi_with_leading_vert(input)?;
            input.parse::<Token![=]>()?;
            let fut: Expr = input.parse()?;
            input.parse::<Token![=>]>()?;
            let (handler, _) = parse_handler(input)?;
            select.branches.push(FuturesBranch { pat, fut, handler });
        }
        Ok(select)
    }
}

impl FuturesSelect {
    fn rewrite(&mut self, rewriter: &mut Rewriter, biased: bool) {
        for branch in &mut self.branches {
            if biased {
                rewriter.visit_unracable(&mut branch.fut, Reason::BiasedSelectFuture);
            } else {
                rewriter.visit_raced(&mut branch.fut);
            }
        }
        for branch in &mut self.branches {
            rewriter.visit_expr_mut(&mut branch.handler);
        }
        for (_, handler) in [&mut self.complete, &mut self.default]
            .into_iter()
            .flatten()
        {
            rewriter.visit_expr_mut(handler);
        }
    }

    fn emit(&self, mac: &Macro, biased: bool) -> TokenStream {
        let mixed = Span::mixed_site();
        let (watch, select, err) = (
            idents::ident(idents::WATCH),
            idents::ident(idents::SELECT),
            idents::ident(idents::ERR),
        );
        let exit = super::exit_with_err();
        // Under `default =>` the select is polled once, with a no-op waker:
        // the watch only checks.
        let register = self.default.is_none();
        let watch_branch = quote_spanned! {mixed=>
            #err = ::ctx_runtime::__private::fused_watch(&mut #watch, &#select, #register) => #exit,
        };
        let mut branches = TokenStream::new();
        if biased {
            branches.extend(watch_branch.clone());
        }
        for branch in &self.branches {
            let (pat, handler) = (&branch.pat, handler_tokens(&branch.handler));
            // futures polls a future named by a path in place, across loop
            // iterations: it is wrapped by reference.
            let fut = match &branch.fut {
                Expr::Path(path) => quote!(&mut #path),
                other => other.to_token_stream(),
            };
            branches.extend(quote_spanned! {mixed=>
                #pat = ::ctx_runtime::__private::fused_branch(&#select, #fut) => #handler,
            });
        }
        if !biased {
            branches.extend(watch_branch);
        }
        for (arrow, handler) in [&self.complete, &self.default].into_iter().flatten() {
            let handler = handler_tokens(handler);
            branches.extend(quote!(#arrow #handler,));
        }
        wrap(mac, 0, branches)
    }
}
