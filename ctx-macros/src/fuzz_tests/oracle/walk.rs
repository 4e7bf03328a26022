//! How many suspension points of a body the documentation (lib.rs, "What it
//! does" and "What is not raced, and warns") says are raced, and how many
//! warn.

use std::collections::HashSet;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Item, Macro, MacroDelimiter, Pat, Stmt, Token};

/// Macros that turn tokens into data: neither raced nor warned.
pub(super) const DATA: [&str; 6] = [
    "stringify",
    "concat",
    "quote",
    "quote_spanned",
    "parse_quote",
    "parse_quote_spanned",
];

/// What a body comes to.
#[derive(Default, Debug, PartialEq, Eq)]
pub(super) struct Prediction {
    pub(super) raced: usize,
    pub(super) warned: usize,
}

/// Where code is, for what its awaits come to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Place {
    /// The fn's own control flow: awaits raced.
    #[default]
    Own,
    /// Not rewritten and not driven by a raced future: awaits warn.
    Loose,
    /// Not rewritten, but driven by a raced future: silent.
    Driven,
}

/// Predicts the body of an `async fn` (`sync: false`) or a sync fn.
pub(super) fn predict(block: &syn::Block, sync: bool) -> Prediction {
    let mut walk = Walk {
        place: Place::Own,
        blocks: Place::Loose,
        sync,
        ..Walk::default()
    };
    walk.visit_block_mut(&mut block.clone());
    let bound_warnings: usize = walk
        .bound
        .iter()
        .filter(|(name, _)| !walk.awaited_names.contains(name))
        .map(|(_, n)| n)
        .sum();
    Prediction {
        raced: walk.raced,
        warned: walk.warned + bound_warnings,
    }
}

#[derive(Default)]
struct Walk {
    /// Where the awaits met now are.
    place: Place,
    /// Where the `async` blocks and closures met now put their awaits.
    blocks: Place,
    sync: bool,
    raced: usize,
    warned: usize,
    /// `let name = <init>`: the warnings of blocks in `init`, dropped if
    /// `name` is awaited (or joined, or selected) somewhere.
    bound: Vec<(String, usize)>,
    binding: Option<String>,
    awaited_names: HashSet<String>,
    /// In a `Loose` block or closure of the fn's own body (not a spawned
    /// task, not a biased select's future): its warnings are held back
    /// under a `let` binding.
    loose_from_block: bool,
}

fn count_awaits(tokens: TokenStream) -> usize {
    let mut n = 0;
    let mut dot = false;
    for tt in tokens {
        match &tt {
            TokenTree::Ident(i) if dot && i == "await" => n += 1,
            TokenTree::Group(g) => n += count_awaits(g.stream()),
            _ => {}
        }
        dot = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '.');
    }
    n
}

fn names_in(tokens: TokenStream, into: &mut HashSet<String>) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(i) => {
                into.insert(i.to_string());
            }
            TokenTree::Group(g) => names_in(g.stream(), into),
            _ => {}
        }
    }
}

fn spawn_name(expr: &Expr) -> bool {
    let name = match expr {
        Expr::Call(call) => match &*call.func {
            Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        },
        Expr::MethodCall(call) => Some(call.method.to_string()),
        _ => None,
    };
    name.is_some_and(|n| n.starts_with("spawn"))
}

impl Walk {
    fn within(&mut self, place: Place, blocks: Place, f: impl FnOnce(&mut Walk)) {
        let saved = (self.place, self.blocks);
        (self.place, self.blocks) = (place, blocks);
        f(self);
        (self.place, self.blocks) = saved;
    }

    /// A warning; those of blocks in a `let` initializer are held back.
    fn warn(&mut self, n: usize, from_a_block: bool) {
        match (&self.binding, from_a_block) {
            (Some(name), true) => {
                let name = name.clone();
                self.bound.push((name, n));
            }
            _ => self.warned += n,
        }
    }

    fn await_here(&mut self) {
        match self.place {
            Place::Own => self.raced += 1,
            Place::Loose => {
                let from_block = self.loose_from_block;
                self.warn(1, from_block);
            }
            Place::Driven => {}
        }
    }

    /// A raced position: the operand of an await, a joined argument, a
    /// select branch's future.
    fn raced_position(&mut self, expr: &mut Expr) {
        names_in(expr.to_token_stream(), &mut self.awaited_names);
        let place = self.place;
        self.within(place, Place::Driven, |w| w.visit_expr_mut(expr));
    }

    fn macro_call(&mut self, mac: &mut Macro) {
        let Some(last) = mac.path.segments.last() else {
            return self.unreadable(mac.tokens.clone());
        };
        let name = last.ident.to_string();
        let first = (mac.path.segments.len() > 1).then(|| mac.path.segments[0].ident.to_string());
        if DATA.contains(&name.as_str()) {
            return;
        }
        let select_named = name == "select" || name == "select_biased";
        let join_named = name == "join" || name == "try_join";
        if self.place != Place::Own {
            // Not rewritten: a select or join says so once, then its insides.
            if (select_named || join_named) && self.place == Place::Loose {
                self.warn(1, self.loose_from_block);
            }
            return self.exprs_or_tokens(mac);
        }
        if !self.sync && select_named {
            let known = match name.as_str() {
                "select" => matches!(
                    first.as_deref(),
                    None | Some("tokio" | "futures" | "futures_util")
                ),
                _ => matches!(first.as_deref(), None | Some("futures" | "futures_util")),
            };
            if known && let Some(select) = super::select::read(mac) {
                self.raced += 1;
                return self.select(select);
            }
            self.warn(1, false);
            return self.unreadable(mac.tokens.clone());
        }
        if !self.sync && join_named {
            if let Ok((_, mut args)) = mac.parse_body_with(super::select::join_args) {
                self.raced += 1;
                for arg in args.iter_mut() {
                    self.raced_position(arg);
                }
                return;
            }
            return self.unreadable(mac.tokens.clone());
        }
        let braced = matches!(mac.delimiter, MacroDelimiter::Brace(_));
        if braced || name == "stream" || name == "try_stream" {
            return self.unreadable(mac.tokens.clone());
        }
        if ["matches", "assert_matches", "debug_assert_matches"].contains(&name.as_str()) {
            let leading = |input: ParseStream<'_>| {
                let expr: Expr = input.parse()?;
                let rest: TokenStream = input.parse()?;
                Ok((expr, rest))
            };
            return match leading.parse2(mac.tokens.clone()) {
                Ok((mut expr, rest)) => {
                    self.visit_expr_mut(&mut expr);
                    self.unreadable(rest);
                }
                Err(_) => self.unreadable(mac.tokens.clone()),
            };
        }
        if let Ok(mut args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            return args.iter_mut().for_each(|a| self.visit_expr_mut(a));
        }
        let repeat = |input: ParseStream<'_>| {
            let value: Expr = input.parse()?;
            input.parse::<Token![;]>()?;
            let count: Expr = input.parse()?;
            Ok((value, count))
        };
        match repeat.parse2(mac.tokens.clone()) {
            Ok((mut value, mut count)) => {
                self.visit_expr_mut(&mut value);
                self.visit_expr_mut(&mut count);
            }
            Err(_) => self.unreadable(mac.tokens.clone()),
        }
    }

    /// Input `#[cancellable]` cannot read: each await warns (in the fn's
    /// own body) or is what its place makes it.
    fn unreadable(&mut self, tokens: TokenStream) {
        let n = count_awaits(tokens);
        match self.place {
            Place::Own => self.warn(n, false),
            Place::Loose => self.warn(n, self.loose_from_block),
            Place::Driven => {}
        }
    }

    /// Inside code that is not rewritten: a list of expressions is walked,
    /// anything else counted by its tokens.
    fn exprs_or_tokens(&mut self, mac: &mut Macro) {
        match mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            Ok(mut args) => args.iter_mut().for_each(|a| self.visit_expr_mut(a)),
            Err(_) => {
                let n = count_awaits(mac.tokens.clone());
                if self.place == Place::Loose {
                    self.warn(n, self.loose_from_block);
                }
            }
        }
    }

    fn select(&mut self, mut select: super::select::Read) {
        for cond in &mut select.preconditions {
            self.visit_expr_mut(cond);
        }
        for fut in &mut select.futures {
            if select.biased {
                names_in(fut.to_token_stream(), &mut self.awaited_names);
                self.within(Place::Loose, Place::Driven, |w| {
                    let saved = w.loose_from_block;
                    w.loose_from_block = false;
                    w.visit_expr_mut(fut);
                    w.loose_from_block = saved;
                });
            } else {
                self.raced_position(fut);
            }
        }
        for handler in &mut select.handlers {
            self.visit_expr_mut(handler);
        }
    }

    fn block_like(&mut self, f: impl FnOnce(&mut Walk)) {
        let blocks = self.blocks;
        let saved = self.loose_from_block;
        if blocks == Place::Loose && self.place != Place::Loose {
            self.loose_from_block = true;
        }
        self.within(blocks, blocks, f);
        self.loose_from_block = saved;
    }

    fn spawn(&mut self, expr: &mut Expr) {
        let (receiver, args) = match expr {
            Expr::Call(call) => (Some(&mut *call.func), &mut call.args),
            Expr::MethodCall(call) => (Some(&mut *call.receiver), &mut call.args),
            _ => return,
        };
        if let Some(receiver) = receiver {
            self.visit_expr_mut(receiver);
        }
        for arg in args.iter_mut() {
            match arg {
                Expr::Async(block) => {
                    let saved = (self.binding.take(), self.loose_from_block);
                    self.loose_from_block = false;
                    self.within(Place::Loose, Place::Loose, |w| {
                        w.visit_block_mut(&mut block.block)
                    });
                    (self.binding, self.loose_from_block) = saved;
                }
                Expr::Closure(closure) => {
                    self.within(Place::Driven, Place::Driven, |w| {
                        w.visit_expr_mut(&mut closure.body)
                    });
                }
                other => self.visit_expr_mut(other),
            }
        }
    }
}

impl VisitMut for Walk {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Await(a) => {
                if self.place == Place::Own && self.sync {
                    // Not in a sync fn's own flow (rustc says so).
                    self.visit_expr_mut(&mut a.base);
                } else if self.place == Place::Own {
                    self.raced_position(&mut a.base);
                    self.raced += 1;
                } else {
                    self.await_here();
                    self.visit_expr_mut(&mut a.base);
                }
            }
            Expr::Async(block) => self.block_like(|w| w.visit_block_mut(&mut block.block)),
            Expr::Closure(closure) => self.block_like(|w| w.visit_expr_mut(&mut closure.body)),
            Expr::Macro(mac) => self.macro_call(&mut mac.mac),
            _ if spawn_name(expr)
                && match expr {
                    Expr::Call(c) => c
                        .args
                        .iter()
                        .any(|a| matches!(a, Expr::Async(_) | Expr::Closure(_))),
                    Expr::MethodCall(c) => c
                        .args
                        .iter()
                        .any(|a| matches!(a, Expr::Async(_) | Expr::Closure(_))),
                    _ => false,
                } =>
            {
                self.spawn(expr)
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        match stmt {
            Stmt::Macro(mac) => self.macro_call(&mut mac.mac),
            Stmt::Local(local) if self.place == Place::Own => {
                let name = match &local.pat {
                    Pat::Ident(i) if i.subpat.is_none() => Some(i.ident.to_string()),
                    Pat::Type(t) => match &*t.pat {
                        Pat::Ident(i) if i.subpat.is_none() => Some(i.ident.to_string()),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(init) = &mut local.init {
                    let saved = std::mem::replace(&mut self.binding, name);
                    self.visit_expr_mut(&mut init.expr);
                    self.binding = None;
                    if let Some((_, diverge)) = &mut init.diverge {
                        self.visit_expr_mut(diverge);
                    }
                    self.binding = saved;
                }
            }
            _ => visit_mut::visit_stmt_mut(self, stmt),
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_macro_mut(&mut self, _: &mut Macro) {}
}
