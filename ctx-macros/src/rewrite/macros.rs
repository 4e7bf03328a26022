//! Macro calls in a body: which ones the rewriter reads, races or leaves.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, Macro, MacroDelimiter, Token};

use super::unraced::{self, Reason, Unraced};
use super::{Rewriter, join, select};

/// Macros that turn their input into data instead of evaluating it:
/// rewriting their awaits would change the data.
const TOKENS: [&str; 6] = [
    "stringify",
    "concat",
    "quote",
    "quote_spanned",
    "parse_quote",
    "parse_quote_spanned",
];

/// Macros whose first argument is an expression evaluated in place, and the
/// rest a pattern.
const LEADING_EXPR: [&str; 3] = ["matches", "assert_matches", "debug_assert_matches"];

/// Which `select!` a macro call is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SelectKind {
    /// `tokio::select!`.
    Tokio,
    /// `futures::select!` (`biased: false`) or `select_biased!`.
    Futures { biased: bool },
    /// A bare `select!`: tokio's, unless it has a `complete` or `default` branch.
    Bare,
    /// Another crate's `select!`.
    Unknown,
}

/// What the rewriter does with a macro call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MacroKind {
    /// `stringify!` and the quasi-quoters: left alone.
    Tokens,
    /// A `select!`: raced with a branch of its own.
    Select(SelectKind),
    /// A `join!` or `try_join!`: raced as one await.
    Join,
    /// `matches!` and the like: the first argument is rewritten.
    LeadingExpr,
    /// A comma-separated list of expressions (`assert!`, `println!`,
    /// `vec![]`, ...): each is rewritten.
    Exprs,
    /// Braces, or input that is not a list of expressions: its awaits warn.
    Opaque,
}

/// What `mac` is, from its path and delimiter (the parse of its input, for
/// `Exprs`, comes later).
pub(crate) fn kind(mac: &Macro) -> MacroKind {
    let Some(last) = mac.path.segments.last() else {
        return MacroKind::Opaque;
    };
    let name = last.ident.to_string();
    let first = (mac.path.segments.len() > 1).then(|| mac.path.segments[0].ident.to_string());
    let from = |krates: &[&str]| first.as_deref().is_none_or(|f| krates.contains(&f));
    match name.as_str() {
        _ if TOKENS.contains(&name.as_str()) => MacroKind::Tokens,
        "select" => MacroKind::Select(match first.as_deref() {
            None => SelectKind::Bare,
            Some("tokio") => SelectKind::Tokio,
            Some("futures" | "futures_util") => SelectKind::Futures { biased: false },
            Some(_) => SelectKind::Unknown,
        }),
        "select_biased" if from(&["futures", "futures_util"]) => {
            MacroKind::Select(SelectKind::Futures { biased: true })
        }
        "select_biased" => MacroKind::Select(SelectKind::Unknown),
        "join" | "try_join" => MacroKind::Join,
        _ if matches!(mac.delimiter, MacroDelimiter::Brace(_)) => MacroKind::Opaque,
        _ if LEADING_EXPR.contains(&name.as_str()) => MacroKind::LeadingExpr,
        // `stream!`, `try_stream!`: generators whose awaits cannot be raced.
        "stream" | "try_stream" => MacroKind::Opaque,
        _ => MacroKind::Exprs,
    }
}

/// The span of the macro's name, where its warnings go.
pub(crate) fn name_span(mac: &Macro) -> Span {
    mac.path
        .segments
        .last()
        .map_or_else(|| mac.path.span(), |last| last.ident.span())
}

impl Rewriter {
    /// Rewrites a macro call of the body; `Some` replaces the whole call.
    pub(super) fn rewrite_macro(&mut self, mac: &mut Macro) -> Option<Expr> {
        match kind(mac) {
            MacroKind::Tokens => None,
            MacroKind::Select(kind) if !self.sync => {
                let raced = select::rewrite(self, mac, kind);
                if raced.is_none() {
                    self.unreadable_select(mac);
                }
                raced
            }
            MacroKind::Join if !self.sync => join::rewrite(self, mac),
            MacroKind::LeadingExpr => {
                self.rewrite_leading_expr(mac);
                None
            }
            MacroKind::Exprs | MacroKind::Select(_) | MacroKind::Join => {
                self.rewrite_exprs(mac);
                None
            }
            MacroKind::Opaque => {
                self.opaque(mac.tokens.clone());
                None
            }
        }
    }

    /// Each expression of a macro whose input is a list of them; the tokens
    /// are re-printed only if something was raced.
    fn rewrite_exprs(&mut self, mac: &mut Macro) {
        let Ok(mut args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
        else {
            self.rewrite_repeat(mac);
            return;
        };
        let before = self.raced;
        for arg in args.iter_mut() {
            self.visit_expr_mut(arg);
        }
        if self.raced != before {
            mac.tokens = args.into_token_stream();
        }
    }

    /// `vec![<expr>; <count>]`.
    fn rewrite_repeat(&mut self, mac: &mut Macro) {
        let parsed = mac.parse_body_with(|input: syn::parse::ParseStream<'_>| {
            let value: Expr = input.parse()?;
            let semi: Token![;] = input.parse()?;
            let count: Expr = input.parse()?;
            Ok((value, semi, count))
        });
        let Ok((mut value, semi, mut count)) = parsed else {
            self.opaque(mac.tokens.clone());
            return;
        };
        let before = self.raced;
        self.visit_expr_mut(&mut value);
        self.visit_expr_mut(&mut count);
        if self.raced != before {
            mac.tokens = quote::quote!(#value #semi #count);
        }
    }

    /// `matches!(<expr>, <pattern>)`: the expression is rewritten, the
    /// pattern (and its guard) scanned.
    fn rewrite_leading_expr(&mut self, mac: &mut Macro) {
        let parsed = mac.parse_body_with(|input: syn::parse::ParseStream<'_>| {
            let expr: Expr = input.parse()?;
            let rest: TokenStream = input.parse()?;
            Ok((expr, rest))
        });
        let Ok((mut expr, rest)) = parsed else {
            self.opaque(mac.tokens.clone());
            return;
        };
        let before = self.raced;
        self.visit_expr_mut(&mut expr);
        self.opaque(rest.clone());
        if self.raced != before {
            let mut tokens = expr.into_token_stream();
            tokens.extend(rest);
            mac.tokens = tokens;
        }
    }

    /// Input the rewriter cannot read: each `.await` in it warns.
    pub(super) fn opaque(&mut self, tokens: TokenStream) {
        let mut spans = Vec::new();
        unraced::await_spans(tokens, &mut spans);
        let found = spans
            .into_iter()
            .map(|span| Unraced {
                span,
                reason: Reason::Macro,
                bindable: false,
            })
            .collect();
        self.warn(found);
    }

    /// A `select!` that could not be read (or is another crate's): it and
    /// its awaits warn.
    fn unreadable_select(&mut self, mac: &Macro) {
        self.warn(vec![Unraced {
            span: name_span(mac),
            reason: Reason::UnknownSelect,
            bindable: false,
        }]);
        self.opaque(mac.tokens.clone());
    }
}

/// True if the top level of `tokens` has a `complete =>` or `default =>`
/// branch: futures' `select!`.
pub(crate) fn has_futures_branches(tokens: TokenStream) -> bool {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    trees.windows(3).any(|w| match w {
        [
            TokenTree::Ident(name),
            TokenTree::Punct(eq),
            TokenTree::Punct(gt),
        ] => {
            (name == "complete" || name == "default") && eq.as_char() == '=' && gt.as_char() == '>'
        }
        _ => false,
    })
}
