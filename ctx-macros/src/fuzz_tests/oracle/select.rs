//! `select!` and `join!` as the documentation describes them: their
//! grammars (tokio's, futures'), a canonical printing of each, and the
//! undoing of their documented expansions.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Macro, Pat, Token};

/// A select as read: its parts, in order.
pub(super) struct Read {
    pub(super) biased: bool,
    pub(super) futures_style: bool,
    pub(super) pats: Vec<Pat>,
    pub(super) preconditions: Vec<Expr>,
    /// `None` for a branch without a precondition, else its index.
    pub(super) precondition_of: Vec<Option<usize>>,
    pub(super) futures: Vec<Expr>,
    /// Each branch's handler, then `else`/`complete`/`default`'s.
    pub(super) handlers: Vec<Expr>,
    /// `else`, `complete`, `default`, with the index of its handler.
    pub(super) specials: Vec<(String, usize)>,
}

/// Reads a `select!`/`select_biased!` by the documented grammars, deciding
/// tokio's or futures' as the documentation says.
pub(super) fn read(mac: &Macro) -> Option<Read> {
    let last = mac.path.segments.last()?.ident.to_string();
    let first = (mac.path.segments.len() > 1).then(|| mac.path.segments[0].ident.to_string());
    // A branch `complete =>` or `default =>` of this select (not of one
    // nested in it): at the top level, first or after a `,` or a block.
    let trees: Vec<proc_macro2::TokenTree> = mac.tokens.clone().into_iter().collect();
    let has_futures_branch = trees.iter().enumerate().any(|(i, tt)| {
        use proc_macro2::TokenTree::{Group, Ident, Punct};
        let named = matches!(tt, Ident(n) if n == "complete" || n == "default");
        let arrow = matches!(
            (trees.get(i + 1), trees.get(i + 2)),
            (Some(Punct(a)), Some(Punct(b))) if a.as_char() == '=' && b.as_char() == '>'
        );
        let starts = i == 0
            || matches!(&trees[i - 1], Punct(p) if p.as_char() == ',')
            || matches!(&trees[i - 1], Group(_));
        named && arrow && starts
    });
    let (futures_style, biased) = match (last.as_str(), first.as_deref()) {
        ("select_biased", _) => (true, true),
        ("select", Some("tokio")) => (false, false),
        ("select", Some(_)) => (true, false),
        _ => (has_futures_branch, false),
    };
    let parse = |input: ParseStream<'_>| grammar(input, futures_style, biased);
    parse.parse2(mac.tokens.clone()).ok()
}

fn handler(input: ParseStream<'_>) -> syn::Result<Expr> {
    let expr = Expr::parse_with_earlier_boundary_rule(input)?;
    if matches!(expr, Expr::Block(_)) || input.is_empty() {
        input.parse::<Option<Token![,]>>()?;
    } else {
        input.parse::<Token![,]>()?;
    }
    Ok(expr)
}

fn grammar(input: ParseStream<'_>, futures_style: bool, biased_macro: bool) -> syn::Result<Read> {
    let mut read = Read {
        biased: biased_macro,
        futures_style,
        pats: Vec::new(),
        preconditions: Vec::new(),
        precondition_of: Vec::new(),
        futures: Vec::new(),
        handlers: Vec::new(),
        specials: Vec::new(),
    };
    if !futures_style && input.peek(syn::Ident) && input.peek2(Token![;]) {
        let word: syn::Ident = input.parse()?;
        if word != "biased" {
            return Err(input.error("not `biased`"));
        }
        input.parse::<Token![;]>()?;
        read.biased = true;
    }
    while !input.is_empty() {
        let special = if !futures_style && input.peek(Token![else]) {
            input.parse::<Token![else]>()?;
            Some("else")
        } else if futures_style && input.peek(Token![default]) && input.peek2(Token![=>]) {
            input.parse::<Token![default]>()?;
            Some("default")
        } else if futures_style && input.peek(syn::Ident) && input.peek2(Token![=>]) {
            let word: syn::Ident = input.parse()?;
            if word != "complete" {
                return Err(input.error("not `complete`"));
            }
            Some("complete")
        } else {
            None
        };
        if let Some(name) = special {
            input.parse::<Token![=>]>()?;
            let expr = if name == "else" {
                let e: Expr = input.parse()?;
                input.parse::<Option<Token![,]>>()?;
                if !input.is_empty() {
                    return Err(input.error("`else` is last"));
                }
                e
            } else {
                handler(input)?
            };
            if read.specials.iter().any(|(n, _)| n == name) {
                return Err(input.error("twice"));
            }
            read.specials.push((name.to_owned(), read.handlers.len()));
            read.handlers.push(expr);
            continue;
        }
        read.pats.push(Pat::parse_multi_with_leading_vert(input)?);
        input.parse::<Token![=]>()?;
        read.futures.push(input.parse()?);
        if !futures_style && input.peek(Token![,]) && input.peek2(Token![if]) {
            input.parse::<Token![,]>()?;
            input.parse::<Token![if]>()?;
            read.precondition_of.push(Some(read.preconditions.len()));
            read.preconditions.push(input.parse()?);
        } else {
            read.precondition_of.push(None);
        }
        input.parse::<Token![=>]>()?;
        read.handlers.push(handler(input)?);
    }
    if !futures_style && read.pats.is_empty() {
        return Err(input.error("tokio needs a branch"));
    }
    Ok(read)
}

/// `[biased;] a, b, ...` of a `join!`.
pub(super) fn join_args(
    input: ParseStream<'_>,
) -> syn::Result<(bool, Punctuated<Expr, Token![,]>)> {
    let mut biased = false;
    if input.peek(syn::Ident) && input.peek2(Token![;]) {
        let word: syn::Ident = input.parse()?;
        if word != "biased" {
            return Err(input.error("not `biased`"));
        }
        input.parse::<Token![;]>()?;
        biased = true;
    }
    Ok((biased, Punctuated::parse_terminated(input)?))
}

impl Read {
    /// Applies `f` to every expression of the select: preconditions,
    /// futures and handlers.
    pub(super) fn exprs_mut(&mut self, mut f: impl FnMut(&mut Expr)) {
        self.preconditions.iter_mut().for_each(&mut f);
        self.futures.iter_mut().for_each(&mut f);
        self.handlers.iter_mut().for_each(&mut f);
    }

    /// The select's input printed one way: `[biased;] pat = fut [, if c] => h, ... special => h,`.
    pub(super) fn canonical(&self) -> TokenStream {
        let mut out = TokenStream::new();
        if self.biased && !self.futures_style {
            out.extend(quote!(biased;));
        }
        for (i, pat) in self.pats.iter().enumerate() {
            let fut = &self.futures[i];
            let handler = &self.handlers[i];
            out.extend(quote!(#pat = #fut));
            if let Some(c) = self.precondition_of[i] {
                let cond = &self.preconditions[c];
                out.extend(quote!(, if #cond));
            }
            out.extend(quote!(=> #handler,));
        }
        for (name, at) in &self.specials {
            let name = syn::Ident::new(name, proc_macro2::Span::call_site());
            let handler = &self.handlers[*at];
            out.extend(quote!(#name => #handler,));
        }
        out
    }
}

/// A `join!`'s input printed one way: `[biased;] a, b,`.
pub(super) fn canonical_join(biased: bool, args: &Punctuated<Expr, Token![,]>) -> TokenStream {
    let biased = biased.then(|| quote!(biased;));
    let args = args.iter();
    quote!(#biased #(#args,)*)
}

/// The unwrapping of what the expansion put around a select's parts: the
/// select as written, to be canonically printed once its parts are undone.
pub(super) fn unwrap_select(mac: &Macro) -> Result<Read, String> {
    let mut read = read(mac).ok_or("an expanded select that does not read")?;
    // The watch branch, first or last.
    let watch_at = read
        .futures
        .iter()
        .position(|f| {
            let text = f.to_token_stream().to_string();
            text.starts_with(
                ":: ctx_runtime :: __private :: select_watch (& mut __ctx_watch , & __ctx_select)",
            ) || text.starts_with(
                ":: ctx_runtime :: __private :: fused_watch (& mut __ctx_watch , & __ctx_select ,",
            )
        })
        .ok_or("no watch branch")?;
    let expected_at = if read.biased {
        0
    } else {
        read.futures.len() - 1
    };
    if watch_at != expected_at {
        return Err(format!(
            "the watch branch is at {watch_at}, not {expected_at}"
        ));
    }
    let watch_handler = read.handlers[watch_at].to_token_stream().to_string();
    if watch_handler != "{ return __ctx_exit (__ctx_err) ; }" {
        return Err(format!("the watch branch does `{watch_handler}`"));
    }
    read.pats.remove(watch_at);
    read.futures.remove(watch_at);
    read.handlers.remove(watch_at);
    if read.precondition_of.remove(watch_at).is_some() {
        return Err("the watch branch has a precondition".into());
    }
    for (_, at) in &mut read.specials {
        *at -= 1;
    }
    for fut in &mut read.futures {
        *fut = unwrap_call(fut, read.futures_style)?;
    }
    for cond in &mut read.preconditions {
        let Expr::Call(call) = &*cond else {
            return Err("a precondition is not wrapped".into());
        };
        let func = call.func.to_token_stream().to_string();
        if func != ":: ctx_runtime :: __private :: Select :: enable" || call.args.len() != 2 {
            return Err(format!("a precondition is wrapped in `{func}`"));
        }
        *cond = call.args[1].clone();
    }
    Ok(read)
}

fn unwrap_call(fut: &Expr, futures_style: bool) -> Result<Expr, String> {
    let Expr::Call(call) = fut else {
        return Err("a branch's future is not wrapped".into());
    };
    let func = call.func.to_token_stream().to_string();
    let (name, args) = if futures_style {
        (":: ctx_runtime :: __private :: fused_branch", 2)
    } else {
        (":: ctx_runtime :: __private :: select_branch", 3)
    };
    if func != name
        || call.args.len() != args
        || call.args[0].to_token_stream().to_string() != "& __ctx_select"
    {
        return Err(format!("a branch's future is wrapped in `{func}`"));
    }
    match &call.args[1] {
        // futures' `&mut path` of a future named by a path.
        Expr::Reference(r)
            if futures_style && r.mutability.is_some() && matches!(*r.expr, Expr::Path(_)) =>
        {
            Ok((*r.expr).clone())
        }
        other => Ok(other.clone()),
    }
}
