//! `join!` and `try_join!` (tokio's and futures') raced as one await: a
//! cancellation drops every joined future and returns from the fn.
//!
//! The arguments are evaluated first, in order, in the fn's own control
//! flow (so a `?` or an await in one still belongs to the fn), then joined
//! in an `async move` block that is awaited, raced, in their place:
//!
//! ```text
//! tokio::try_join!(a(&x), b().await?)
//! ```
//! becomes
//! ```text
//! match (a(&x), <b().await, raced>?) {
//!     (__ctx_joined0, __ctx_joined1) =>
//!         <async move { tokio::try_join!(__ctx_joined0, __ctx_joined1) }.await, raced>,
//! }
//! ```
//! A `match`, as in rustc's desugaring of `.await`: the temporaries of the
//! arguments live until the join completes.

use proc_macro2::{Span, TokenStream};
use quote::quote_spanned;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Macro, Token};

use super::{Rewriter, macros, race};
use crate::idents;

struct Join {
    biased: Option<TokenStream>,
    args: Punctuated<Expr, Token![,]>,
}

impl Parse for Join {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let biased = super::parse_biased(input)?;
        let args = Punctuated::parse_terminated(input)?;
        Ok(Join { biased, args })
    }
}

/// Rewrites a `join!`; `None` (it is then read as a list of expressions) if
/// its input is not `[biased;] expr, ...`.
pub(super) fn rewrite(rewriter: &mut Rewriter, mac: &Macro) -> Option<Expr> {
    let Ok(mut join) = mac.parse_body::<Join>() else {
        rewriter.opaque(mac.tokens.clone());
        return None;
    };
    for arg in join.args.iter_mut() {
        rewriter.visit_raced(arg);
    }
    let mixed = Span::mixed_site();
    let args = join.args.iter();
    let bindings: Vec<syn::Ident> = (0..join.args.len()).map(idents::joined).collect();
    let (path, bang, biased) = (&mac.path, &mac.bang_token, &join.biased);
    let joined: Expr = syn::parse2(quote_spanned! {mixed=>
        async move { #path #bang (#biased #(#bindings),*) }
    })
    .ok()?;
    // The await is the macro's: a type error about the joined value is
    // reported at its name.
    let at = macros::name_span(mac);
    let raced = race(syn::ExprAwait {
        attrs: Vec::new(),
        base: Box::new(joined),
        dot_token: syn::Token![.](at),
        await_token: syn::token::Await(at),
    });
    rewriter.raced += 1;
    syn::parse2(quote_spanned! {mixed=>
        match (#(#args,)*) {
            (#(#bindings,)*) => #raced,
        }
    })
    .ok()
}
