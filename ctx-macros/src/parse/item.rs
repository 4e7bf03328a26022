//! The item `#[cancellable]` is given, seen as functions: a fn, or the
//! methods of an impl block or trait through one view (`Method`, as
//! async-trait's `Context` does), and what each method gets (`Plan`).

use proc_macro2::Span;
use quote::ToTokens;
use syn::{Attribute, Block, ImplItem, Item, Signature, TraitItem, Type};

use crate::check::signature::{self, Shape};
use crate::diag::{Errors, pretty};
use crate::parse::options::{self, Options};

/// One method of an impl block or trait.
pub(crate) struct Method<'a> {
    pub(crate) attrs: &'a mut Vec<Attribute>,
    pub(crate) sig: &'a mut Signature,
    /// `None` for a trait method without a default body.
    pub(crate) body: Option<&'a mut Block>,
}

/// The methods of an impl block or trait, in order.
pub(crate) fn methods(item: &mut Item) -> Vec<Method<'_>> {
    match item {
        Item::Impl(block) => block
            .items
            .iter_mut()
            .filter_map(|item| match item {
                ImplItem::Fn(method) => Some(Method {
                    attrs: &mut method.attrs,
                    sig: &mut method.sig,
                    body: Some(&mut method.block),
                }),
                _ => None,
            })
            .collect(),
        Item::Trait(block) => block
            .items
            .iter_mut()
            .filter_map(|item| match item {
                TraitItem::Fn(method) => Some(Method {
                    attrs: &mut method.attrs,
                    sig: &mut method.sig,
                    body: method.default.as_mut(),
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The name the methods of a block are reported under: `Client` of
/// `impl<T> Client<T>`, `Fetch` of `trait Fetch`.
pub(crate) fn owner_name(item: &Item) -> String {
    match item {
        Item::Impl(block) => match &*block.self_ty {
            Type::Path(path) => path
                .path
                .segments
                .last()
                .map_or_else(|| pretty(path), |last| last.ident.to_string()),
            other => pretty(other.to_token_stream()),
        },
        Item::Trait(block) => block.ident.to_string(),
        _ => String::new(),
    }
}

/// What a method of a `#[cancellable]` block gets.
pub(crate) enum Plan {
    /// `#[cancellable(skip)]`, or a sync fn without `ctx`: left alone.
    Leave,
    /// A sync fn not marked `#[cancellable]` that mentions `ctx`: only the
    /// position of `ctx` is checked.
    CheckCtx,
    /// Expanded with these options; `own_timeout` is where the method's own
    /// attribute sets a timeout (a trait method without a body rejects it).
    Expand {
        options: Options,
        own_timeout: Option<Span>,
    },
}

/// Removes the inner `#[cancellable(...)]` attributes of a method and decides
/// what to do with it.
pub(crate) fn plan(
    outer: &Options,
    attrs: &mut Vec<Attribute>,
    sig: &Signature,
    errors: &mut Errors,
) -> Plan {
    let mut inner: Option<Options> = None;
    let mut marked = false;
    let mut kept = Vec::with_capacity(attrs.len());
    for attribute in attrs.drain(..) {
        if !options::is_cancellable(&attribute) {
            kept.push(attribute);
            continue;
        }
        if marked {
            errors.push(syn::Error::new_spanned(
                &attribute,
                "`#[cancellable]` is given twice on this method: merge the options into one attribute",
            ));
            continue;
        }
        marked = true;
        match options::parse_attribute(&attribute) {
            Ok(options) => inner = Some(options),
            Err(err) => errors.push(err),
        }
    }
    *attrs = kept;
    let own_timeout = inner.as_ref().and_then(|o| o.timeout).map(|t| t.span);
    let options = inner.unwrap_or_default().or(outer);
    if options.skip.is_some() {
        return Plan::Leave;
    }
    match signature::shape(sig) {
        Shape::Async | Shape::ImplFuture => Plan::Expand {
            options,
            own_timeout,
        },
        Shape::Sync if marked => Plan::Expand {
            options,
            own_timeout,
        },
        Shape::Sync if signature::mentions_ctx(sig) => Plan::CheckCtx,
        Shape::Sync => Plan::Leave,
    }
}
