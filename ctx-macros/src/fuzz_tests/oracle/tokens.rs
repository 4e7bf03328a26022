//! The shapes of types and signatures the documentation speaks of, decided
//! on tokens (not on the syntax trees `check/signature.rs` uses), so that a
//! mistake in one is not repeated in the other.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Attribute, FnArg, Signature};

/// The token trees of `tokens`, without the parentheses (or invisible
/// groups) around the whole: `((T))` is `T`. A tuple `(T,)` is kept.
pub(super) fn unparen(tokens: TokenStream) -> Vec<TokenTree> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    if let [TokenTree::Group(group)] = trees.as_slice()
        && matches!(group.delimiter(), Delimiter::Parenthesis | Delimiter::None)
        && !top_level_comma(group.stream())
    {
        return unparen(group.stream());
    }
    trees
}

fn top_level_comma(tokens: TokenStream) -> bool {
    let mut depth = 0i32;
    let mut prev_minus = false;
    for tt in tokens {
        if let TokenTree::Punct(p) = &tt {
            match p.as_char() {
                '<' => depth += 1,
                '>' if !prev_minus => depth -= 1,
                ',' if depth == 0 => return true,
                _ => {}
            }
        }
        prev_minus = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '-' && p.spacing() == Spacing::Joint);
    }
    false
}

/// The identifiers outside any `<..>` of a type: `std`, `pin`, `Pin` of
/// `std::pin::Pin<Box<..>>`; and whether anything inside the `<..>` is
/// named `name`.
fn outer_idents(trees: &[TokenTree]) -> Vec<String> {
    let mut depth = 0i32;
    let mut prev_minus = false;
    let mut out = Vec::new();
    for tt in trees {
        match tt {
            TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
            TokenTree::Punct(p) if p.as_char() == '>' && !prev_minus => depth -= 1,
            TokenTree::Ident(ident) if depth == 0 => out.push(ident.to_string()),
            _ => {}
        }
        prev_minus = matches!(tt, TokenTree::Punct(p) if p.as_char() == '-' && p.spacing() == Spacing::Joint);
    }
    out
}

fn mentions(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => mentions(group.stream(), name),
        _ => false,
    })
}

/// `()`, `(())`.
pub(super) fn is_unit(ty: &syn::Type) -> bool {
    let trees = unparen(ty.to_token_stream());
    trees.is_empty()
        || matches!(trees.as_slice(), [TokenTree::Group(g)] if g.delimiter() == Delimiter::Parenthesis && g.stream().is_empty())
}

/// `!`.
pub(super) fn is_never(ty: &syn::Type) -> bool {
    matches!(unparen(ty.to_token_stream()).as_slice(), [TokenTree::Punct(p)] if p.as_char() == '!')
}

/// A future boxed by hand: `Pin<Box<dyn Future..>>`, `Box<dyn Future..>`,
/// `BoxFuture<..>`, `LocalBoxFuture<..>` (by the last name of the path).
pub(super) fn is_boxed_future(ty: &syn::Type) -> bool {
    let trees = unparen(ty.to_token_stream());
    let outer = outer_idents(&trees);
    if outer.iter().any(|i| i == "impl" || i == "dyn") {
        return false;
    }
    match outer.last().map(String::as_str) {
        Some("BoxFuture" | "LocalBoxFuture") => true,
        Some("Pin" | "Box") => mentions(trees.into_iter().collect(), "Future"),
        _ => false,
    }
}

/// `R` of `impl Future<Output = R>` (any bound named `Future`, after `+`s).
pub(super) fn future_output(sig: &Signature) -> Option<TokenStream> {
    let syn::ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    let trees = unparen(ty.to_token_stream());
    if !matches!(trees.first(), Some(TokenTree::Ident(i)) if i == "impl") {
        return None;
    }
    // Walk the bounds: after `Future`, `<`, find `Output`, `=`, then the
    // type up to the `,` or `>` that closes it.
    let mut depth = 0i32;
    let mut prev_minus = false;
    let mut after_future = false;
    let mut i = 0;
    while i < trees.len() {
        let tt = &trees[i];
        match tt {
            TokenTree::Ident(ident) if depth == 0 => after_future = ident == "Future",
            TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
            TokenTree::Punct(p) if p.as_char() == '>' && !prev_minus => depth -= 1,
            TokenTree::Ident(ident)
                if depth == 1
                    && after_future
                    && ident == "Output"
                    && matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '=') =>
            {
                return Some(type_until_close(&trees[i + 2..]));
            }
            _ => {}
        }
        prev_minus = matches!(tt, TokenTree::Punct(p) if p.as_char() == '-' && p.spacing() == Spacing::Joint);
        i += 1;
    }
    None
}

fn type_until_close(trees: &[TokenTree]) -> TokenStream {
    let mut depth = 0i32;
    let mut prev_minus = false;
    let mut out = Vec::new();
    for tt in trees {
        if let TokenTree::Punct(p) = tt {
            match p.as_char() {
                '<' => depth += 1,
                '>' if !prev_minus && depth == 0 => break,
                '>' if !prev_minus => depth -= 1,
                ',' if depth == 0 => break,
                _ => {}
            }
        }
        prev_minus = matches!(tt, TokenTree::Punct(p) if p.as_char() == '-' && p.spacing() == Spacing::Joint);
        out.push(tt.clone());
    }
    out.into_iter().collect()
}

/// How a fn produces its result, as the documentation sorts them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Shape {
    Async,
    ImplFuture,
    Sync,
}

pub(super) fn shape(sig: &Signature) -> Shape {
    if sig.asyncness.is_some() {
        Shape::Async
    } else if future_output(sig).is_some() {
        Shape::ImplFuture
    } else {
        Shape::Sync
    }
}

/// The type the body produces: the return type, or the `Output` of an
/// `impl Future`. `None` without a return type.
pub(super) fn body_type(sig: &Signature) -> Option<syn::Type> {
    let syn::ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    match shape(sig) {
        Shape::ImplFuture => future_output(sig).and_then(|r| syn::parse2(r).ok()),
        _ => Some((**ty).clone()),
    }
}

/// The first parameter after `self`, if it is `ctx` or `mut ctx`, not
/// `&mut`: `(mut?, the type)`.
pub(super) fn ctx_param(sig: &Signature) -> Option<(bool, syn::Type)> {
    let first = sig.inputs.iter().find_map(|arg| match arg {
        FnArg::Typed(param) => Some(param),
        FnArg::Receiver(_) => None,
    })?;
    let words: Vec<String> = first
        .pat
        .to_token_stream()
        .into_iter()
        .map(|tt| tt.to_string())
        .collect();
    let by_mut = match words.as_slice() {
        [ctx] if ctx == "ctx" => false,
        [m, ctx] if m == "mut" && ctx == "ctx" => true,
        _ => return None,
    };
    let ty = unparen(first.ty.to_token_stream());
    let mut rest = ty.iter();
    if matches!(rest.next(), Some(TokenTree::Punct(p)) if p.as_char() == '&') {
        let mut next = rest.next();
        if matches!(next, Some(TokenTree::Punct(p)) if p.as_char() == '\'') {
            rest.next(); // the lifetime's name
            next = rest.next();
        }
        if matches!(next, Some(TokenTree::Ident(i)) if i == "mut") {
            return None;
        }
    }
    Some((by_mut, (*first.ty).clone()))
}

/// A parameter (not `self`) whose pattern names `ctx`.
pub(super) fn mentions_ctx(sig: &Signature) -> bool {
    sig.inputs.iter().any(|arg| match arg {
        FnArg::Typed(param) => mentions(param.pat.to_token_stream(), "ctx"),
        FnArg::Receiver(_) => false,
    })
}

/// `'async_trait` among the generics: `#[async_trait]` went first.
pub(super) fn by_async_trait(sig: &Signature) -> bool {
    let trees: Vec<TokenTree> = sig.generics.to_token_stream().into_iter().collect();
    trees.windows(2).any(|w| {
        matches!(w, [TokenTree::Punct(p), TokenTree::Ident(i)] if p.as_char() == '\'' && i == "async_trait")
    })
}

/// `#[cancellable]`, `#[cancellable(..)]`, `#[any::path::cancellable]`.
pub(crate) fn is_cancellable(attr: &Attribute) -> bool {
    attr.path()
        .to_token_stream()
        .into_iter()
        .filter_map(|tt| match tt {
            TokenTree::Ident(ident) => Some(ident.to_string()),
            _ => None,
        })
        .last()
        .is_some_and(|name| name == "cancellable")
}
