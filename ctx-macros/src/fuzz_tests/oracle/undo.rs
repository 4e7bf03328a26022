//! Undoing the documented rewrites of a body (raced awaits, selects, joins)
//! and printing both sides of the comparison the same way.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, Item, Macro, Stmt, Token};

use super::select;

/// `vec![<value>; <count>]`.
fn repeat(input: syn::parse::ParseStream<'_>) -> syn::Result<(Expr, Token![;], Expr)> {
    Ok((input.parse()?, input.parse()?, input.parse()?))
}

/// `matches!(<expr>, <the rest>)`.
fn leading(input: syn::parse::ParseStream<'_>) -> syn::Result<(Expr, TokenStream)> {
    Ok((input.parse()?, input.parse()?))
}

/// Turns every raced await, select and join of an expansion back into what
/// was written (selects and joins canonically printed). Returns how many.
pub(super) fn undo(block: &mut Block) -> Result<usize, String> {
    struct Undo {
        arm: String,
        found: usize,
        failed: Option<String>,
    }
    impl Undo {
        /// `match into_future(<base>) { <the documented arm> }`
        fn raced_base(&self, expr: &Expr) -> Option<Expr> {
            let Expr::Match(matched) = expr else {
                return None;
            };
            let Expr::Call(call) = &*matched.expr else {
                return None;
            };
            (call.func.to_token_stream().to_string()
                == ":: core :: future :: IntoFuture :: into_future"
                && call.args.len() == 1
                && matched.arms.len() == 1
                && matched.arms[0].to_token_stream().to_string() == self.arm)
                .then(|| call.args[0].clone())
        }
    }
    impl VisitMut for Undo {
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            visit_mut::visit_expr_mut(self, expr);
            if let Some(base) = self.raced_base(expr) {
                let attrs = match expr {
                    Expr::Match(m) => std::mem::take(&mut m.attrs),
                    _ => Vec::new(),
                };
                *expr = Expr::Await(syn::ExprAwait {
                    attrs,
                    base: Box::new(base),
                    dot_token: Default::default(),
                    await_token: Default::default(),
                });
                self.found += 1;
                return;
            }
            // `{ let __ctx_select = Select::new(n); <select> }`
            if let Expr::Block(block) = expr
                && let [
                    Stmt::Local(local),
                    Stmt::Macro(_) | Stmt::Expr(Expr::Macro(_), None),
                ] = block.block.stmts.as_slice()
                && local.pat.to_token_stream().to_string() == "__ctx_select"
            {
                let mut mac = match &block.block.stmts[1] {
                    Stmt::Macro(m) => m.mac.clone(),
                    Stmt::Expr(Expr::Macro(m), _) => m.mac.clone(),
                    _ => return,
                };
                let mut read = match select::unwrap_select(&mac) {
                    Ok(read) => read,
                    Err(why) => {
                        self.failed = Some(why);
                        return;
                    }
                };
                // Its parts are not seen by the visit of the block: undo them here.
                read.exprs_mut(|e| self.visit_expr_mut(e));
                mac.tokens = read.canonical();
                mac.delimiter = syn::MacroDelimiter::Brace(Default::default());
                let attrs = std::mem::take(&mut block.attrs);
                *expr = Expr::Macro(syn::ExprMacro { attrs, mac });
                self.found += 1;
                return;
            }
            // `match (a, b,) { (__ctx_joined0, __ctx_joined1,) => <raced join> }`
            if let Expr::Match(matched) = expr
                && matched.arms.len() == 1
                && matched.arms[0]
                    .pat
                    .to_token_stream()
                    .to_string()
                    .starts_with("(__ctx_joined0")
                && let Expr::Tuple(args) = &*matched.expr
                && let Expr::Await(joined) = &*matched.arms[0].body
                && let Expr::Async(block) = &*joined.base
                && let [Stmt::Expr(Expr::Macro(join), None)] = block.block.stmts.as_slice()
            {
                let mut mac = join.mac.clone();
                let biased = mac.tokens.to_string().starts_with("biased ;");
                let args: Punctuated<Expr, Token![,]> = args.elems.clone();
                mac.tokens = select::canonical_join(biased, &args);
                mac.delimiter = syn::MacroDelimiter::Paren(Default::default());
                let attrs = std::mem::take(&mut matched.attrs);
                *expr = Expr::Macro(syn::ExprMacro { attrs, mac });
                // The join was counted as the raced await of its `async` block.
            }
        }
        fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
            visit_mut::visit_stmt_mut(self, stmt);
            // A select in statement position comes back as a statement macro.
            if let Stmt::Expr(Expr::Macro(mac), semi) = stmt
                && matches!(mac.mac.delimiter, syn::MacroDelimiter::Brace(_))
            {
                *stmt = Stmt::Macro(syn::StmtMacro {
                    attrs: std::mem::take(&mut mac.attrs),
                    mac: mac.mac.clone(),
                    semi_token: *semi,
                });
            }
        }
        fn visit_macro_mut(&mut self, mac: &mut Macro) {
            let before = self.found;
            if let Ok(mut args) =
                mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
            {
                args.iter_mut().for_each(|a| self.visit_expr_mut(a));
                if self.found != before {
                    mac.tokens = args.into_token_stream();
                }
            } else if let Ok((mut value, semi, mut count)) = mac.parse_body_with(repeat) {
                self.visit_expr_mut(&mut value);
                self.visit_expr_mut(&mut count);
                if self.found != before {
                    mac.tokens = quote!(#value #semi #count);
                }
            } else if let Ok((mut leading, rest)) = mac.parse_body_with(leading) {
                self.visit_expr_mut(&mut leading);
                if self.found != before {
                    mac.tokens = quote!(#leading #rest);
                }
            }
        }
    }
    let template: syn::ExprMatch = syn::parse_quote! {
        match x {
            __ctx_fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, __ctx_fut).await {
                ::core::result::Result::Ok(__ctx_value) => __ctx_value,
                ::core::result::Result::Err(__ctx_err) => return __ctx_exit(__ctx_err),
            },
        }
    };
    let mut undo = Undo {
        arm: template.arms[0].to_token_stream().to_string(),
        found: 0,
        failed: None,
    };
    undo.visit_block_mut(block);
    match undo.failed {
        Some(why) => Err(why),
        None => Ok(undo.found),
    }
}

/// Both sides of the comparison printed the same way: parentheses in
/// expressions dropped (the printer puts back those the tree needs),
/// expression macros re-printed from their arguments, selects and joins
/// canonically, statement macros as statements.
pub(super) fn normalized(item: &Item) -> String {
    struct Normalize;
    impl VisitMut for Normalize {
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            visit_mut::visit_expr_mut(self, expr);
            if let Expr::Paren(paren) = expr
                && paren.attrs.is_empty()
            {
                *expr = std::mem::replace(&mut *paren.expr, Expr::PLACEHOLDER);
            }
        }
        fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
            if let Stmt::Expr(Expr::Macro(mac), semi) = stmt
                && matches!(mac.mac.delimiter, syn::MacroDelimiter::Brace(_))
            {
                *stmt = Stmt::Macro(syn::StmtMacro {
                    attrs: std::mem::take(&mut mac.attrs),
                    mac: mac.mac.clone(),
                    semi_token: *semi,
                });
            }
            visit_mut::visit_stmt_mut(self, stmt);
        }
        fn visit_macro_mut(&mut self, mac: &mut Macro) {
            let name = super::macro_name(mac);
            if (name == "select" || name == "select_biased")
                && let Some(mut read) = select::read(mac)
            {
                read.exprs_mut(|e| self.visit_expr_mut(e));
                mac.tokens = read.canonical();
                mac.delimiter = syn::MacroDelimiter::Brace(Default::default());
                return;
            }
            if (name == "join" || name == "try_join")
                && let Ok((biased, mut args)) = mac.parse_body_with(select::join_args)
            {
                args.iter_mut().for_each(|e| self.visit_expr_mut(e));
                mac.tokens = select::canonical_join(biased, &args);
                mac.delimiter = syn::MacroDelimiter::Paren(Default::default());
                return;
            }
            if let Ok(mut args) =
                mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
            {
                args.iter_mut().for_each(|a| self.visit_expr_mut(a));
                mac.tokens = args.into_token_stream();
            } else if let Ok((mut value, semi, mut count)) = mac.parse_body_with(repeat) {
                self.visit_expr_mut(&mut value);
                self.visit_expr_mut(&mut count);
                mac.tokens = quote!(#value #semi #count);
            } else if let Ok((mut leading, rest)) = mac.parse_body_with(leading) {
                self.visit_expr_mut(&mut leading);
                mac.tokens = quote!(#leading #rest);
            }
        }
    }
    let mut item = item.clone();
    Normalize.visit_item_mut(&mut item);
    item.into_token_stream().to_string()
}
