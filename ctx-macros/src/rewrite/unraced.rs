//! The awaits `#[cancellable]` does not race, found so that none is left
//! without a word: each becomes a compile-time warning at that `.await`.
//!
//! Stable procedural macros cannot emit warnings. Each warning is the use of
//! a deprecated item of `ctx_runtime::__private::unraced`, whose note says
//! why and what to do, spanned at the user's `.await`: rustc then prints
//! "use of deprecated function `...`: (the note)" there.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote_spanned;
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprClosure, Item, Macro, Stmt, Token};

use super::macros::{self, MacroKind};

/// Why an await is not raced: one deprecated item (and note) each.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reason {
    /// In an `async` block not awaited where it is written.
    AsyncBlock,
    /// In a closure.
    Closure,
    /// In an `async` block given to a spawn call (`tokio::spawn`, `JoinSet::spawn`).
    Spawned,
    /// Inside a macro whose input is not a list of expressions.
    Macro,
    /// In the future of a branch of a `biased;` `select!`.
    BiasedSelectFuture,
    /// A `select!` or `join!` in an `async` block, closure or task.
    SelectOrJoin,
    /// A `select!` that could not be read.
    UnknownSelect,
}

impl Reason {
    /// The deprecated item of `ctx_runtime::__private::unraced`.
    pub(crate) fn item(self) -> &'static str {
        match self {
            Reason::AsyncBlock => "in_an_async_block",
            Reason::Closure => "in_a_closure",
            Reason::Spawned => "in_a_spawned_task",
            Reason::Macro => "in_a_macro",
            Reason::BiasedSelectFuture => "in_a_biased_select_future",
            Reason::SelectOrJoin => "select_or_join_not_raced",
            Reason::UnknownSelect => "unknown_select",
        }
    }
}

/// One await (or macro) left unraced, and where.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unraced {
    pub(crate) span: Span,
    pub(crate) reason: Reason,
    /// Found in an `async` block or closure of the fn's own body (not a
    /// spawned one): raced after all if that block is bound by `let` to a
    /// name that is awaited.
    pub(crate) bindable: bool,
}

/// The warnings, as statements for the start of the fn's body: a use of
/// the deprecated item, every token at the user's `.await`.
pub(crate) fn warnings(unraced: &[Unraced]) -> TokenStream {
    let mut out = TokenStream::new();
    for Unraced { span, reason, .. } in unraced {
        let item = syn::Ident::new(reason.item(), *span);
        out.extend(quote_spanned! {*span=>
            let _ = ::ctx_runtime::__private::unraced::#item;
        });
    }
    out
}

/// A spawn call with a task in its arguments: `tokio::spawn(async { .. })`,
/// `set.spawn(async { .. })`, `ctx_runtime::spawn(&ctx, |ctx| async { .. })`.
pub(super) fn is_spawn(expr: &Expr) -> bool {
    let (name, args) = match expr {
        Expr::Call(call) => match &*call.func {
            Expr::Path(path) => match path.path.segments.last() {
                Some(last) => (last.ident.to_string(), &call.args),
                None => return false,
            },
            _ => return false,
        },
        Expr::MethodCall(call) => (call.method.to_string(), &call.args),
        _ => return false,
    };
    name.starts_with("spawn")
        && args
            .iter()
            .any(|arg| matches!(arg, Expr::Async(_) | Expr::Closure(_)))
}

/// Finds the awaits of code that is not rewritten. `direct` is the reason
/// for awaits met directly (`None`: they are raced by an enclosing raced
/// future), `nested` the reason for those in `async` blocks and closures
/// inside it.
pub(super) struct Scan {
    direct: Option<Reason>,
    nested: Option<Reason>,
    pub(super) found: Vec<Unraced>,
}

impl Scan {
    pub(super) fn new(direct: Option<Reason>, nested: Option<Reason>) -> Scan {
        Scan {
            direct,
            nested,
            found: Vec::new(),
        }
    }

    fn push(&mut self, span: Span, reason: Option<Reason>) {
        if let Some(reason) = reason {
            let bindable = matches!(self.direct, Some(Reason::AsyncBlock | Reason::Closure));
            self.found.push(Unraced {
                span,
                reason,
                bindable,
            });
        }
    }

    fn with(&mut self, reason: Option<Reason>, visit: impl FnOnce(&mut Scan)) {
        let saved = (self.direct, self.nested);
        (self.direct, self.nested) = (reason, reason);
        visit(self);
        (self.direct, self.nested) = saved;
    }

    pub(super) fn visit_closure(&mut self, closure: &mut ExprClosure) {
        self.visit_expr_mut(&mut closure.body);
    }

    /// The tasks of a spawn call: an `async` block is a task of its own (its
    /// awaits unraced however the spawn call is used); a closure is given a
    /// context by the spawner (`ctx_runtime::spawn`, `Group::spawn`), so its
    /// awaits are the task's business.
    pub(super) fn visit_spawn(&mut self, expr: &mut Expr) {
        let args = match expr {
            Expr::Call(call) => &mut call.args,
            Expr::MethodCall(call) => &mut call.args,
            _ => return,
        };
        for arg in args.iter_mut() {
            match arg {
                Expr::Async(block) => self.with(Some(Reason::Spawned), |scan| {
                    scan.visit_block_mut(&mut block.block);
                }),
                Expr::Closure(closure) => self.with(None, |scan| scan.visit_closure(closure)),
                _ => {}
            }
        }
    }

    fn visit_macro(&mut self, mac: &mut Macro) {
        match macros::kind(mac) {
            MacroKind::Tokens => {}
            MacroKind::Select(_) | MacroKind::Join => {
                self.push(
                    macros::name_span(mac),
                    self.direct.map(|_| Reason::SelectOrJoin),
                );
                self.visit_tokens_or_exprs(mac);
            }
            MacroKind::Exprs | MacroKind::LeadingExpr | MacroKind::Opaque => {
                self.visit_tokens_or_exprs(mac);
            }
        }
    }

    /// The expressions of a macro if it reads as a list of them, else its
    /// tokens: awaits are found either way.
    fn visit_tokens_or_exprs(&mut self, mac: &mut Macro) {
        match mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            Ok(mut args) => {
                for arg in args.iter_mut() {
                    self.visit_expr_mut(arg);
                }
            }
            Err(_) => {
                let mut spans = Vec::new();
                await_spans(mac.tokens.clone(), &mut spans);
                for span in spans {
                    self.push(span, self.direct);
                }
            }
        }
    }
}

impl VisitMut for Scan {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Await(await_expr) => {
                self.push(await_expr.await_token.span, self.direct);
                self.visit_expr_mut(&mut await_expr.base);
            }
            Expr::Async(block) => {
                let nested = self.nested;
                self.with(nested, |scan| scan.visit_block_mut(&mut block.block));
            }
            Expr::Closure(closure) => {
                let nested = self.nested;
                self.with(nested, |scan| scan.visit_closure(closure));
            }
            Expr::Macro(mac) => self.visit_macro(&mut mac.mac),
            _ if is_spawn(expr) => {
                self.visit_spawn(expr);
                if let Some((head, args)) = super::spawn_parts(expr) {
                    self.visit_expr_mut(head);
                    args.for_each(|arg| self.visit_expr_mut(arg));
                }
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        match stmt {
            Stmt::Macro(mac) => self.visit_macro(&mut mac.mac),
            _ => visit_mut::visit_stmt_mut(self, stmt),
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_block_mut(&mut self, block: &mut Block) {
        visit_mut::visit_block_mut(self, block);
    }
}

/// The span of the `await` of every `.await` in `tokens`.
pub(super) fn await_spans(tokens: TokenStream, into: &mut Vec<Span>) {
    let mut dot = false;
    for tt in tokens {
        match &tt {
            TokenTree::Ident(ident) if dot && ident == "await" => into.push(ident.span()),
            TokenTree::Group(group) => await_spans(group.stream(), into),
            _ => {}
        }
        dot = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '.');
    }
}
