//! What the expansion of an item must be, written from the documentation of
//! `#[cancellable]` (lib.rs) rather than from the macro's code, and the
//! checks of an actual expansion against it.
//!
//! The shapes the documentation speaks of (a `Result`, `()`, a boxed future,
//! `impl Future<Output = R>`, `ctx` first) are decided on tokens
//! (`tokens.rs`), where the macro decides them on syntax trees; what is
//! raced and what warns is walked again (`walk.rs`); selects and joins are
//! read with their documented grammars (`select.rs`). Only the option parser
//! (`crate::parse::options`) is shared: what a `timeout` string means is
//! tested there.

mod expansion;
mod select;
mod tokens;
mod undo;
mod walk;

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Attribute, Block, Expr, ImplItem, Item, Macro, Signature, Stmt, Token, TraitItem, TraitItemFn,
};

use crate::parse::options;
pub(super) use expansion::check_expansion;
use tokens::Shape;
pub(super) use tokens::is_cancellable;

/// The options that matter to the expansion.
#[derive(Clone, Copy, Default)]
pub(super) struct Opts {
    /// `timeout = "..."`, as (seconds, nanoseconds).
    pub(super) timeout: Option<(u64, u32)>,
    pub(super) skip: bool,
    pub(super) allow_unraced: bool,
}

fn opts_of(options: options::Options) -> Opts {
    Opts {
        timeout: options.timeout.map(|t| (t.secs, t.nanos)),
        skip: options.skip.is_some(),
        allow_unraced: options.allow_unraced.is_some(),
    }
}

/// The options of `#[cancellable(attr)]`, or `None` if they are invalid.
pub(super) fn outer_options(attr: &TokenStream) -> Option<Opts> {
    options::parse(attr.clone()).ok().map(opts_of)
}

/// A signature `#[cancellable]` accepts: not `const`; `ctx` first, plainly
/// bound, not `&mut`; a return type (for `impl Future`, its `Output`) that
/// is not `()`, `!` or a future boxed by hand.
pub(super) fn signature_ok(sig: &Signature) -> bool {
    let ret_ok = tokens::body_type(sig).is_some_and(|ty| {
        !tokens::is_unit(&ty) && !tokens::is_never(&ty) && !tokens::is_boxed_future(&ty)
    });
    sig.constness.is_none() && tokens::ctx_param(sig).is_some() && ret_ok
}

/// A body the macro can rewrite: for `-> impl Future`, one ending in an
/// `async` block; and without the footguns the documentation rejects.
fn body_ok(sig: &Signature, body: &Block) -> bool {
    let ends_in_async = matches!(body.stmts.last(), Some(Stmt::Expr(Expr::Async(_), None)));
    (tokens::shape(sig) != Shape::ImplFuture || ends_in_async) && !has_footgun(body)
}

/// "Footguns that are errors": `let (x, _) = <with_*>(..)` and
/// `Context::background()` / `Context::todo()`, anywhere in the body but
/// nested items (and data macros).
fn has_footgun(body: &Block) -> bool {
    const WITH: [&str; 6] = [
        "with_cancel",
        "with_timeout",
        "with_deadline",
        "with_cancel_cause",
        "with_timeout_cause",
        "with_deadline_cause",
    ];
    /// The top-level tokens of `tokens`, without parentheses around all of it.
    fn called(tokens: TokenStream) -> Option<String> {
        let trees = tokens::unparen(tokens);
        match trees.as_slice() {
            [.., TokenTree::Ident(name), TokenTree::Group(args)]
                if args.delimiter() == Delimiter::Parenthesis =>
            {
                Some(name.to_string())
            }
            _ => None,
        }
    }
    struct Find(bool);
    impl VisitMut for Find {
        fn visit_local_mut(&mut self, local: &mut syn::Local) {
            let pat = tokens::unparen(local.pat.to_token_stream());
            // `(x, _)` or `(x, ..)`, perhaps with a type after a `:`.
            let tuple = match pat.as_slice() {
                [TokenTree::Group(g), ..] if g.delimiter() == Delimiter::Parenthesis => {
                    Some(g.stream())
                }
                _ => None,
            };
            let drops = tuple.is_some_and(|inner| {
                let parts: Vec<String> = inner
                    .to_string()
                    .split(',')
                    .map(|p| p.trim().to_owned())
                    .collect();
                parts.len() == 2 && (parts[1] == "_" || parts[1] == "..") && !parts[0].is_empty()
            });
            if drops
                && let Some(init) = &local.init
                && called(init.expr.to_token_stream())
                    .is_some_and(|name| WITH.contains(&name.as_str()))
            {
                self.0 = true;
            }
            visit_mut::visit_local_mut(self, local);
        }
        fn visit_expr_call_mut(&mut self, call: &mut syn::ExprCall) {
            let path: Vec<String> = call
                .func
                .to_token_stream()
                .into_iter()
                .filter_map(|tt| match tt {
                    TokenTree::Ident(i) => Some(i.to_string()),
                    _ => None,
                })
                .collect();
            if let [.., ty, name] = path.as_slice()
                && ty == "Context"
                && (name == "background" || name == "todo")
                && matches!(*call.func, Expr::Path(_))
            {
                self.0 = true;
            }
            visit_mut::visit_expr_call_mut(self, call);
        }
        fn visit_macro_mut(&mut self, mac: &mut Macro) {
            let name = macro_name(mac);
            if walk::DATA.contains(&name.as_str()) {
                return;
            }
            if let Ok(mut args) =
                mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
            {
                args.iter_mut().for_each(|a| self.visit_expr_mut(a));
            }
        }
        fn visit_item_mut(&mut self, _: &mut Item) {}
    }
    let mut find = Find(false);
    find.visit_block_mut(&mut body.clone());
    find.0
}

/// What a method of a `#[cancellable]` block gets.
#[derive(Clone, Copy)]
pub(super) enum Plan {
    /// Left as it is (`skip`, or a sync method not asked for).
    Leave { ctx_must_be_in_place: bool },
    /// Expanded with these options.
    Expand(Opts),
}

/// The plan of a method, from its attributes (before they are removed), and
/// whether those attributes are valid.
pub(super) fn plan(outer: Opts, attrs: &[Attribute], sig: &Signature) -> (Plan, bool) {
    let marks: Vec<&Attribute> = attrs.iter().filter(|a| is_cancellable(a)).collect();
    let (inner, valid) = match marks.as_slice() {
        [] => (Opts::default(), true),
        [one] => match options::parse_attribute(one) {
            Ok(options) => (opts_of(options), true),
            Err(_) => (Opts::default(), false),
        },
        [first, ..] => match options::parse_attribute(first) {
            Ok(options) => (opts_of(options), false),
            Err(_) => (Opts::default(), false),
        },
    };
    let marked = !marks.is_empty();
    let options = Opts {
        timeout: inner.timeout.or(outer.timeout),
        skip: inner.skip,
        allow_unraced: inner.allow_unraced || outer.allow_unraced,
    };
    let plan = if options.skip {
        Plan::Leave {
            ctx_must_be_in_place: false,
        }
    } else {
        match tokens::shape(sig) {
            Shape::Async | Shape::ImplFuture => Plan::Expand(options),
            Shape::Sync if marked => Plan::Expand(options),
            Shape::Sync => Plan::Leave {
                ctx_must_be_in_place: tokens::mentions_ctx(sig),
            },
        }
    };
    (plan, valid)
}

/// One method, seen the same way in impl blocks and traits.
pub(super) struct MethodRef<'a> {
    pub(super) attrs: &'a [Attribute],
    pub(super) sig: &'a Signature,
    pub(super) body: Option<&'a Block>,
    /// A method with its own `timeout` (for a declaration, an error).
    pub(super) own_timeout: bool,
}

pub(super) fn methods_of(item: &Item) -> Vec<MethodRef<'_>> {
    let own_timeout = |attrs: &[Attribute]| {
        attrs
            .iter()
            .filter(|a| is_cancellable(a))
            .any(|a| options::parse_attribute(a).is_ok_and(|o| o.timeout.is_some()))
    };
    match item {
        Item::Impl(block) => block
            .items
            .iter()
            .filter_map(|item| match item {
                ImplItem::Fn(m) => Some(MethodRef {
                    attrs: &m.attrs,
                    sig: &m.sig,
                    body: Some(&m.block),
                    own_timeout: own_timeout(&m.attrs),
                }),
                _ => None,
            })
            .collect(),
        Item::Trait(block) => block
            .items
            .iter()
            .filter_map(|item| match item {
                TraitItem::Fn(m) => Some(MethodRef {
                    attrs: &m.attrs,
                    sig: &m.sig,
                    body: m.default.as_ref(),
                    own_timeout: own_timeout(&m.attrs),
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether `#[cancellable(attr)] item` must expand without an error.
pub(super) fn accepted(attr: &TokenStream, item: &Item) -> bool {
    let Some(outer) = outer_options(attr) else {
        return false;
    };
    match item {
        Item::Fn(function) => {
            !outer.skip
                && !function.attrs.iter().any(is_cancellable)
                && !tokens::by_async_trait(&function.sig)
                && signature_ok(&function.sig)
                && body_ok(&function.sig, &function.block)
        }
        Item::Verbatim(tokens) => match syn::parse2::<TraitItemFn>(tokens.clone()) {
            Ok(declaration) => {
                !outer.skip
                    && outer.timeout.is_none()
                    && !tokens::by_async_trait(&declaration.sig)
                    && signature_ok(&declaration.sig)
            }
            Err(_) => false,
        },
        Item::Impl(_) | Item::Trait(_) => {
            !outer.skip
                && methods_of(item).iter().all(|m| {
                    if tokens::by_async_trait(m.sig) {
                        return false;
                    }
                    match plan(outer, m.attrs, m.sig) {
                        (_, false) => false,
                        (
                            Plan::Leave {
                                ctx_must_be_in_place,
                            },
                            true,
                        ) => !ctx_must_be_in_place || tokens::ctx_param(m.sig).is_some(),
                        (Plan::Expand(_), true) => {
                            signature_ok(m.sig)
                                && match m.body {
                                    Some(body) => body_ok(m.sig, body),
                                    None => !m.own_timeout,
                                }
                        }
                    }
                })
        }
        _ => false,
    }
}

/// Removes the `#[cancellable]` attributes of the methods of a block, as the
/// macro does before it emits the block (expanded or not).
pub(super) fn strip_inner_marks(item: &mut Item) {
    match item {
        Item::Impl(block) => {
            for item in &mut block.items {
                if let ImplItem::Fn(method) = item {
                    method.attrs.retain(|a| !is_cancellable(a));
                }
            }
        }
        Item::Trait(block) => {
            for item in &mut block.items {
                if let TraitItem::Fn(method) = item {
                    method.attrs.retain(|a| !is_cancellable(a));
                }
            }
        }
        _ => {}
    }
}

/// `::core::compile_error! { "..." }`: the eight token trees of one error.
fn error_len(tokens: &[TokenTree]) -> Option<usize> {
    let text: Vec<String> = tokens.iter().take(7).map(ToString::to_string).collect();
    let head = [":", ":", "core", ":", ":", "compile_error", "!"];
    if text.len() < 7 || text.iter().zip(head).any(|(a, b)| a != b) {
        return None;
    }
    match tokens.get(7) {
        Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Brace => {
            let inner: Vec<TokenTree> = group.stream().into_iter().collect();
            match inner.as_slice() {
                [TokenTree::Literal(lit)] if lit.to_string().starts_with('"') => Some(8),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Splits leading `compile_error!`s from the rest; `None` if there are none.
pub(super) fn split_errors(tokens: &[TokenTree]) -> Option<(usize, &[TokenTree])> {
    let mut at = 0;
    let mut count = 0;
    while let Some(len) = error_len(&tokens[at..]) {
        at += len;
        count += 1;
    }
    (count > 0).then(|| (count, &tokens[at..]))
}

/// Checks what follows the errors of a rejected item: `#[allow(unused_variables)]`
/// and the item as written (a block without its methods' `#[cancellable]`s),
/// where each fn it would have rewritten may start with the documented type
/// checks of the parts of its signature that are right.
pub(super) fn check_rejected(
    attr: &TokenStream,
    item: &Item,
    written: &TokenStream,
    rest: &[TokenTree],
) -> Result<(), String> {
    let rest: TokenStream = rest.iter().cloned().collect();
    if rest.to_string() == quote!(#[allow(unused_variables)] #written).to_string() {
        return Ok(());
    }
    let emitted: syn::File =
        syn::parse2(rest).map_err(|err| format!("the kept item does not parse: {err}"))?;
    let [emitted] = emitted.items.as_slice() else {
        return Err("not one kept item".into());
    };
    let mut expected = item.clone();
    strip_inner_marks(&mut expected);
    let allow: Attribute = syn::parse_quote!(#[allow(unused_variables)]);
    match &mut expected {
        Item::Fn(f) => f.attrs.insert(0, allow),
        Item::Impl(i) => i.attrs.insert(0, allow),
        Item::Trait(t) => t.attrs.insert(0, allow),
        _ => return Err("the errors are not followed by the item token for token".into()),
    }
    let mut emitted = emitted.clone();
    expansion::remove_signature_checks(attr, item, &mut emitted)?;
    if emitted.to_token_stream().to_string() != expected.to_token_stream().to_string() {
        return Err(format!(
            "the errors are not followed by the item as it was\nexpected: {}\nemitted:  {}",
            expected.to_token_stream(),
            emitted.to_token_stream()
        ));
    }
    Ok(())
}

/// The last segment of a macro's path: `select` for `tokio::select!`.
fn macro_name(mac: &Macro) -> String {
    mac.path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}
