//! The documented expansion ("Expansion" in lib.rs): the prologues and
//! warnings each fn must start with, and the undoing of every raced await,
//! select and join, after which the item must be the item as written.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::parse::Parser;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, FnArg, ImplItem, Item, Pat, Signature, Stmt, TraitItem, Type};

use super::tokens::{self, Shape};
use super::undo::{normalized, undo};
use super::{Opts, Plan, outer_options, plan, strip_inner_marks, walk};

/// `impl Trait` replaced by `_` (a qualified path cannot name it).
fn infer_impl_trait(ty: &Type) -> Type {
    struct Infer;
    impl VisitMut for Infer {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if matches!(ty, Type::ImplTrait(_)) {
                *ty = syn::parse_quote!(_);
            } else {
                visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    Infer.visit_type_mut(&mut ty);
    ty
}

/// The documented statements, as lib.rs spells them.
struct Prologue<'a> {
    sig: &'a Signature,
    timeout: Option<(u64, u32)>,
    function: String,
}

impl Prologue<'_> {
    fn exit(&self) -> TokenStream {
        let ret = tokens::body_type(self.sig).map(|t| infer_impl_trait(&t));
        let function = &self.function;
        quote! {
            let __ctx_exit = |__ctx_err: ::ctx_runtime::__private::Error| {
                ::ctx_runtime::__private::exit(
                    <#ret as ::ctx_runtime::__private::CancelReturn>::WRAP,
                    ::ctx_runtime::__private::FromContextError::FROM,
                    ::core::concat!(::core::module_path!(), "::", #function),
                    __ctx_err,
                )
            };
        }
    }

    fn child(&self) -> TokenStream {
        let Some((secs, nanos)) = self.timeout else {
            return TokenStream::new();
        };
        quote! {
            let (__ctx_child, __ctx_guard) = ::ctx_runtime::__private::Context::with_timeout(
                ::ctx_runtime::__private::IsContext::context(&ctx),
                ::ctx_runtime::__private::Duration::new(#secs, #nanos),
            );
        }
    }

    fn watched(&self) -> TokenStream {
        match self.timeout {
            Some(_) => quote!(&__ctx_child),
            None => quote!(::ctx_runtime::__private::IsContext::context(&ctx)),
        }
    }

    fn shadow(&self) -> TokenStream {
        let (Some(_), Some((by_mut, ty))) = (self.timeout, tokens::ctx_param(self.sig)) else {
            return TokenStream::new();
        };
        let mutability = by_mut.then(|| quote!(mut));
        let by_ref = matches!(tokens::unparen(ty.to_token_stream()).first(),
            Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == '&')
        .then(|| quote!(&));
        quote! {
            #[allow(unused_variables, unused_mut)]
            let #mutability ctx = #by_ref __ctx_child;
        }
    }

    fn check(check: TokenStream) -> TokenStream {
        quote! {
            if let ::core::result::Result::Err(__ctx_err) = #check {
                return __ctx_exit(__ctx_err);
            }
        }
    }

    fn of_body(&self, raced: usize) -> TokenStream {
        let (exit, child, watched, shadow) =
            (self.exit(), self.child(), self.watched(), self.shadow());
        if raced == 0 {
            let check = Self::check(quote!(::ctx_runtime::__private::Context::check(#watched)));
            quote!(#exit #child #check #shadow)
        } else {
            let check = Self::check(quote!(__ctx_watch.check()));
            quote!(#exit #child let mut __ctx_watch = ::ctx_runtime::__private::Watch::new(#watched); #shadow #check)
        }
    }

    fn of_call(&self) -> TokenStream {
        let (child, watched) = (self.child(), self.watched());
        quote!(#child let __ctx_watch = ::ctx_runtime::__private::Watch::new(#watched);)
    }

    fn of_future(&self, raced: usize) -> TokenStream {
        let (exit, shadow) = (self.exit(), self.shadow());
        let mutability = (raced > 0).then(|| quote!(mut));
        let keep = self
            .timeout
            .map(|_| quote!(let __ctx_child = __ctx_child; let __ctx_guard = __ctx_guard;));
        let check = Self::check(quote!(__ctx_watch.check()));
        quote!(#exit let #mutability __ctx_watch = __ctx_watch; #keep #shadow #check)
    }
}

fn print(stmts: &[Stmt]) -> String {
    stmts
        .iter()
        .map(|s| s.to_token_stream().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes the expected statements from the front of `stmts`, or says how they differ.
fn take(stmts: &mut Vec<Stmt>, expected: TokenStream) -> Result<(), String> {
    let expected = Block::parse_within
        .parse2(expected)
        .map_err(|err| format!("the oracle's own prologue does not parse: {err}"))?;
    let n = expected.len();
    if n == 0 {
        return Ok(());
    }
    if print(&stmts[..n.min(stmts.len())]) == print(&expected) {
        stmts.drain(..n);
        return Ok(());
    }
    // A body that starts with an empty statement (`{ ; .. }`): its `;` reads
    // back as that of the prologue's last statement, an `if`. Same tokens.
    if let Some(Stmt::Expr(last, None)) = expected.last()
        && let Some(Stmt::Expr(got, Some(semi))) = stmts.get(n - 1)
        && last.to_token_stream().to_string() == got.to_token_stream().to_string()
        && print(&stmts[..n - 1]) == print(&expected[..n - 1])
    {
        let empty = Stmt::Expr(Expr::Verbatim(TokenStream::new()), Some(*semi));
        stmts.splice(..n, [empty]);
        return Ok(());
    }
    Err(format!(
        "the body does not start with the documented statements\nexpected:\n{}\nfound:\n{}",
        print(&expected),
        print(&stmts[..n.min(stmts.len())]),
    ))
}

/// Removes the leading warnings (`let _ = ::ctx_runtime::__private::unraced::<why>;`).
fn take_warnings(stmts: &mut Vec<Stmt>) -> usize {
    const WHY: [&str; 7] = [
        "in_an_async_block",
        "in_a_closure",
        "in_a_spawned_task",
        "in_a_macro",
        "in_a_biased_select_future",
        "select_or_join_not_raced",
        "unknown_select",
    ];
    let is_warning = |stmt: &Stmt| {
        let text = stmt.to_token_stream().to_string();
        WHY.iter()
            .any(|why| text == format!("let _ = :: ctx_runtime :: __private :: unraced :: {why} ;"))
    };
    let n = stmts.iter().take_while(|s| is_warning(s)).count();
    stmts.drain(..n);
    n
}

fn strip_ctx_mut(sig: &mut Signature) {
    for arg in &mut sig.inputs {
        if let FnArg::Typed(param) = arg
            && let Pat::Ident(ident) = &mut *param.pat
            && ident.ident == "ctx"
        {
            ident.mutability = None;
            return;
        }
    }
}

/// Checks the expansion of one fn and turns `out_body` back into what was
/// written.
fn undo_fn(
    sig: &Signature,
    body: &Block,
    out_body: &mut Block,
    options: Opts,
    function: String,
) -> Result<(), String> {
    let prologue = Prologue {
        sig,
        timeout: options.timeout,
        function,
    };
    let shape = tokens::shape(sig);
    let (raced, warned) = match shape {
        Shape::Sync => (0, walk::predict(body, true).warned),
        Shape::Async => {
            let predicted = walk::predict(body, false);
            (predicted.raced, predicted.warned)
        }
        Shape::ImplFuture => {
            let Some((Stmt::Expr(Expr::Async(tail), None), sync_part)) = body.stmts.split_last()
            else {
                return Err("expanded an `impl Future` fn that does not end in `async`".into());
            };
            let predicted = walk::predict(&tail.block, false);
            let sync_part = Block {
                brace_token: body.brace_token,
                stmts: sync_part.to_vec(),
            };
            (
                predicted.raced,
                predicted.warned + walk::predict(&sync_part, true).warned,
            )
        }
    };
    // The warnings come first, then the prologue.
    let warned = if options.allow_unraced { 0 } else { warned };
    let found = take_warnings(&mut out_body.stmts);
    if found != warned {
        return Err(format!("{warned} warnings expected, {found} found"));
    }
    match shape {
        Shape::Sync => take(&mut out_body.stmts, prologue.of_body(0))?,
        Shape::Async => take(&mut out_body.stmts, prologue.of_body(raced))?,
        Shape::ImplFuture => {
            take(&mut out_body.stmts, prologue.of_call())?;
            let Some(Stmt::Expr(Expr::Async(out_tail), None)) = out_body.stmts.last_mut() else {
                return Err("the expansion does not end in the `async` block".into());
            };
            take(&mut out_tail.block.stmts, prologue.of_future(raced))?;
        }
    }
    let found = undo(out_body)?;
    if found != raced {
        return Err(format!(
            "{raced} suspension points should have been raced, {found} were"
        ));
    }
    Ok(())
}

/// Checks a successful expansion `out` of `#[cancellable(attr)] item`: with
/// its warnings and prologues removed and its raced awaits, selects and joins
/// undone, it is the item as written (once both are printed the same way),
/// except for the documented changes: the inner `#[cancellable]` attributes
/// of a block are removed, and `mut ctx` loses its `mut` under a timeout.
pub(crate) fn check_expansion(
    attr: &TokenStream,
    item: &Item,
    out: &syn::File,
) -> Result<(), String> {
    let outer = outer_options(attr).ok_or("expanded despite invalid options")?;
    if !out.attrs.is_empty() || out.items.len() != 1 {
        return Err(format!("{} items, expected one", out.items.len()));
    }
    let mut expected = item.clone();
    let mut undone = out.items[0].clone();
    match (&mut expected, &mut undone) {
        (Item::Fn(written), Item::Fn(emitted)) => {
            let name = written.sig.ident.to_string();
            undo_fn(
                &written.sig,
                &written.block,
                &mut emitted.block,
                outer,
                name,
            )?;
            if outer.timeout.is_some() {
                strip_ctx_mut(&mut written.sig);
            }
        }
        (Item::Verbatim(_), _) => {
            return if item.to_token_stream().to_string()
                == out.items[0].to_token_stream().to_string()
            {
                Ok(())
            } else {
                Err("a declaration was changed".into())
            };
        }
        (Item::Impl(written), Item::Impl(emitted)) => {
            let owner = owner(&written.self_ty);
            if written.items.len() != emitted.items.len() {
                return Err("the block has a different number of items".into());
            }
            for (w, e) in written.items.iter_mut().zip(&mut emitted.items) {
                if let (ImplItem::Fn(w), ImplItem::Fn(e)) = (w, e)
                    && let (Plan::Expand(options), _) = plan(outer, &w.attrs, &w.sig)
                {
                    undo_fn(
                        &w.sig,
                        &w.block,
                        &mut e.block,
                        options,
                        format!("{owner}::{}", w.sig.ident),
                    )?;
                    if options.timeout.is_some() {
                        strip_ctx_mut(&mut w.sig);
                    }
                }
            }
        }
        (Item::Trait(written), Item::Trait(emitted)) => {
            let owner = written.ident.to_string();
            if written.items.len() != emitted.items.len() {
                return Err("the trait has a different number of items".into());
            }
            for (w, e) in written.items.iter_mut().zip(&mut emitted.items) {
                if let (TraitItem::Fn(w), TraitItem::Fn(e)) = (w, e)
                    && let (Plan::Expand(options), _) = plan(outer, &w.attrs, &w.sig)
                    && let (Some(body), Some(out_body)) = (&w.default, &mut e.default)
                {
                    undo_fn(
                        &w.sig,
                        body,
                        out_body,
                        options,
                        format!("{owner}::{}", w.sig.ident),
                    )?;
                    if options.timeout.is_some() {
                        strip_ctx_mut(&mut w.sig);
                    }
                }
            }
        }
        _ => return Err("the expansion is a different kind of item".into()),
    }
    strip_inner_marks(&mut expected);
    let (want, got) = (normalized(&expected), normalized(&undone));
    if want != got {
        return Err(format!(
            "the expansion, undone, is not the item as written\nwritten: {want}\nundone:  {got}"
        ));
    }
    Ok(())
}

/// `Client` of `impl Client<T>`: the last name of the path, as documented
/// for the `tracing` event (`my_crate::Client::get`).
fn owner(ty: &Type) -> String {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .map_or_else(String::new, |s| s.ident.to_string()),
        other => crate::diag::pretty(other),
    }
}

/// Removes, from the bodies of a kept item's fns that would have been
/// rewritten, the documented checks of the parts of their signature that
/// are right (and checks that they are exactly those).
pub(crate) fn remove_signature_checks(
    attr: &TokenStream,
    item: &Item,
    emitted: &mut Item,
) -> Result<(), String> {
    let outer = outer_options(attr).unwrap_or_default();
    let checks = |sig: &Signature| {
        let mut out = TokenStream::new();
        if tokens::ctx_param(sig).is_some() {
            out.extend(quote!(let _ = ::ctx_runtime::__private::IsContext::context(&ctx);));
        }
        if let Some(ty) = tokens::body_type(sig)
            && !tokens::is_unit(&ty)
            && !tokens::is_never(&ty)
            && !tokens::is_boxed_future(&ty)
        {
            let ty = infer_impl_trait(&ty);
            out.extend(quote! {
                ::ctx_runtime::__private::check(
                    <#ty as ::ctx_runtime::__private::CancelReturn>::WRAP,
                    ::ctx_runtime::__private::FromContextError::FROM,
                );
            });
        }
        out
    };
    match (item, emitted) {
        (Item::Fn(written), Item::Fn(kept)) if !tokens::by_async_trait(&written.sig) => {
            take(&mut kept.block.stmts, checks(&written.sig))?;
        }
        (Item::Impl(_) | Item::Trait(_), kept) => {
            // The methods it would have rewritten: expanded, with a body.
            let rewritten: Vec<Option<TokenStream>> = super::methods_of(item)
                .iter()
                .map(|m| match plan(outer, m.attrs, m.sig) {
                    (Plan::Expand(_), _) if m.body.is_some() => Some(checks(m.sig)),
                    _ => None,
                })
                .collect();
            let mut bodies: Vec<Option<&mut Block>> = match kept {
                Item::Impl(block) => block
                    .items
                    .iter_mut()
                    .filter_map(|i| match i {
                        ImplItem::Fn(m) => Some(Some(&mut m.block)),
                        _ => None,
                    })
                    .collect(),
                Item::Trait(block) => block
                    .items
                    .iter_mut()
                    .filter_map(|i| match i {
                        TraitItem::Fn(m) => Some(m.default.as_mut()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if bodies.len() != rewritten.len() {
                return Err("the kept block has a different number of methods".into());
            }
            for (body, checks) in bodies.iter_mut().zip(rewritten) {
                if let (Some(body), Some(checks)) = (body, checks) {
                    take(&mut body.stmts, checks)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}
