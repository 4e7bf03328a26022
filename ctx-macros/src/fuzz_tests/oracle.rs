//! What the expansion of an item must be, written from the documented
//! behaviour of `#[cancellable]` (lib.rs) rather than from `expand.rs`, and
//! the checks of an actual expansion against it.
//!
//! Only the option parser (`crate::attr`) is shared with the macro: what a
//! `timeout` string means is tested there.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Attribute, Block, Expr, ExprAsync, ExprClosure, FnArg, GenericArgument, GenericParam, ImplItem,
    Item, Macro, MacroDelimiter, Pat, PathArguments, ReturnType, Signature, Stmt, Token, TraitItem,
    TraitItemFn, Type, TypeParamBound,
};

use crate::attr;

/// The options that matter to the expansion.
#[derive(Clone, Copy, Default)]
pub(super) struct Opts {
    /// `timeout = "..."`, as (seconds, nanoseconds).
    pub(super) timeout: Option<(u64, u32)>,
    pub(super) skip: bool,
}

fn opts_of(options: attr::Options) -> Opts {
    Opts {
        timeout: options.timeout.map(|t| (t.secs, t.nanos)),
        skip: options.skip.is_some(),
    }
}

/// The options of `#[cancellable(attr)]`, or `None` if they are invalid.
pub(super) fn outer_options(attr: &TokenStream) -> Option<Opts> {
    attr::parse(attr.clone()).ok().map(opts_of)
}

/// `#[cancellable]`, `#[cancellable(...)]`, `#[path::to::cancellable]`.
pub(super) fn is_cancellable(attribute: &Attribute) -> bool {
    attribute
        .path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "cancellable")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Shape {
    Async,
    ImplFuture,
    Sync,
}

fn strip_parens(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => strip_parens(&inner.elem),
        Type::Group(inner) => strip_parens(&inner.elem),
        other => other,
    }
}

/// `R` of `-> impl ... Future<Output = R> ...`.
fn future_output(sig: &Signature) -> Option<&Type> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    let Type::ImplTrait(imp) = strip_parens(ty) else {
        return None;
    };
    imp.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
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

/// The type the body produces: the return type, or the `Output` of an `impl Future`.
fn result_type(sig: &Signature) -> Option<&Type> {
    match (&sig.output, shape(sig)) {
        (ReturnType::Default, _) => None,
        (ReturnType::Type(_, ty), Shape::ImplFuture) => Some(future_output(sig).unwrap_or(ty)),
        (ReturnType::Type(_, ty), _) => Some(ty),
    }
}

fn typed_params(sig: &Signature) -> impl Iterator<Item = &syn::PatType> {
    sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(param) => Some(param),
        FnArg::Receiver(_) => None,
    })
}

/// The `ctx` parameter, if the signature follows the convention: the first
/// parameter after `self` is the plain name `ctx` (or `mut ctx`), not `&mut`.
fn ctx_param(sig: &Signature) -> Option<(&syn::PatIdent, &Type)> {
    let first = typed_params(sig).next()?;
    let Pat::Ident(ident) = &*first.pat else {
        return None;
    };
    if ident.ident != "ctx" || ident.by_ref.is_some() || ident.subpat.is_some() {
        return None;
    }
    if let Type::Reference(reference) = strip_parens(&first.ty)
        && reference.mutability.is_some()
    {
        return None;
    }
    Some((ident, &first.ty))
}

/// A signature `#[cancellable]` accepts: `ctx` first, a return type that is
/// not `()` or `!` (for `impl Future`, its `Output`), not `const`.
pub(super) fn signature_ok(sig: &Signature) -> bool {
    let ret_ok = result_type(sig).is_some_and(|ty| match strip_parens(ty) {
        Type::Tuple(tuple) => !tuple.elems.is_empty(),
        Type::Never(_) => false,
        _ => true,
    });
    sig.constness.is_none() && ctx_param(sig).is_some() && ret_ok
}

/// `#[cancellable]` was placed under `#[async_trait]`.
fn by_async_trait(sig: &Signature) -> bool {
    sig.generics.params.iter().any(
        |param| matches!(param, GenericParam::Lifetime(def) if def.lifetime.ident == "async_trait"),
    )
}

fn mentions_ctx(sig: &Signature) -> bool {
    fn any_ctx(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Ident(ident) => ident == "ctx",
            TokenTree::Group(group) => any_ctx(group.stream()),
            _ => false,
        })
    }
    typed_params(sig).any(|param| any_ctx(param.pat.to_token_stream()))
}

fn ends_in_async_block(body: &Block) -> bool {
    matches!(body.stmts.last(), Some(Stmt::Expr(Expr::Async(_), None)))
}

/// A fn body the macro can rewrite: for `-> impl Future`, one ending in an `async` block.
fn body_ok(sig: &Signature, body: &Block) -> bool {
    shape(sig) != Shape::ImplFuture || ends_in_async_block(body)
}

/// What a method of a `#[cancellable]` block gets.
pub(super) enum Plan {
    /// Left as it is (`skip`, a sync method, or one only checked).
    Leave,
    /// Expanded with these options.
    Expand(Opts),
    /// Its inner `#[cancellable]` attributes are wrong: an error.
    Invalid,
}

/// The plan of a method, from its attributes (before they are removed).
pub(super) fn plan(outer: Opts, attrs: &[Attribute], sig: &Signature) -> (Plan, bool) {
    let marks: Vec<&Attribute> = attrs.iter().filter(|a| is_cancellable(a)).collect();
    let inner = match marks.as_slice() {
        [] => Opts::default(),
        [one] => match attr::parse_attribute(one) {
            Ok(options) => opts_of(options),
            Err(_) => return (Plan::Invalid, false),
        },
        _ => return (Plan::Invalid, false),
    };
    let marked = !marks.is_empty();
    let options = Opts {
        timeout: inner.timeout.or(outer.timeout),
        skip: inner.skip,
    };
    if options.skip {
        return (Plan::Leave, true);
    }
    match shape(sig) {
        Shape::Async | Shape::ImplFuture => (Plan::Expand(options), true),
        Shape::Sync if marked => (Plan::Expand(options), true),
        // Only the place of `ctx` is checked.
        Shape::Sync if mentions_ctx(sig) => (Plan::Leave, ctx_param(sig).is_some()),
        Shape::Sync => (Plan::Leave, true),
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
                && !by_async_trait(&function.sig)
                && signature_ok(&function.sig)
                && body_ok(&function.sig, &function.block)
        }
        Item::Verbatim(tokens) => match syn::parse2::<TraitItemFn>(tokens.clone()) {
            Ok(declaration) => {
                !outer.skip
                    && outer.timeout.is_none()
                    && !by_async_trait(&declaration.sig)
                    && signature_ok(&declaration.sig)
            }
            Err(_) => false,
        },
        Item::Impl(block) => {
            let methods = block.items.iter().filter_map(|item| match item {
                ImplItem::Fn(method) => Some((&method.attrs, &method.sig, Some(&method.block))),
                _ => None,
            });
            !outer.skip && methods_ok(outer, methods)
        }
        Item::Trait(block) => {
            let methods = block.items.iter().filter_map(|item| match item {
                TraitItem::Fn(method) => {
                    Some((&method.attrs, &method.sig, method.default.as_ref()))
                }
                _ => None,
            });
            !outer.skip && methods_ok(outer, methods)
        }
        _ => false,
    }
}

fn methods_ok<'a>(
    outer: Opts,
    methods: impl Iterator<Item = (&'a Vec<Attribute>, &'a Signature, Option<&'a Block>)>,
) -> bool {
    let mut ok = true;
    for (attrs, sig, body) in methods {
        if by_async_trait(sig) {
            return false;
        }
        ok &= match plan(outer, attrs, sig) {
            (Plan::Invalid, _) => false,
            (Plan::Leave, fine) => fine,
            (Plan::Expand(_), _) => signature_ok(sig) && body.is_none_or(|body| body_ok(sig, body)),
        };
    }
    ok
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

/// The macros the rewriter leaves alone even with parentheses (documented in lib.rs).
const OPAQUE: [&str; 13] = [
    "select",
    "select_biased",
    "join",
    "try_join",
    "pin",
    "stream",
    "try_stream",
    "stringify",
    "concat",
    "quote",
    "quote_spanned",
    "parse_quote",
    "parse_quote_spanned",
];

/// The arguments of a macro whose input is a list of expressions, if it is
/// one the rewriter enters.
fn expression_args(mac: &Macro) -> Option<Punctuated<Expr, Token![,]>> {
    if matches!(mac.delimiter, MacroDelimiter::Brace(_)) {
        return None;
    }
    let last = mac.path.segments.last()?;
    if OPAQUE.iter().any(|name| last.ident == name) {
        return None;
    }
    mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
        .ok()
}

/// Counts the awaits the documentation says are rewritten: those of the
/// body itself, in expression macros too, not in closures, `async` blocks,
/// nested items or other macros.
pub(super) fn rewritable_awaits(block: &Block) -> usize {
    struct Count(usize);
    impl VisitMut for Count {
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            visit_mut::visit_expr_mut(self, expr);
            if matches!(expr, Expr::Await(_)) {
                self.0 += 1;
            }
        }
        fn visit_expr_closure_mut(&mut self, _: &mut ExprClosure) {}
        fn visit_expr_async_mut(&mut self, _: &mut ExprAsync) {}
        fn visit_item_mut(&mut self, _: &mut Item) {}
        fn visit_macro_mut(&mut self, mac: &mut Macro) {
            if let Some(mut args) = expression_args(mac) {
                for arg in args.iter_mut() {
                    self.visit_expr_mut(arg);
                }
            }
        }
    }
    let mut count = Count(0);
    count.visit_block_mut(&mut block.clone());
    count.0
}

/// Prints both sides of a comparison the same way: expression macros
/// re-printed from their parsed arguments (the rewriter re-prints those it
/// changed), and parentheses in expressions dropped, to be put back by the
/// printer where the tree needs them. (The printer adds those the rewritten
/// `match`es need, around them or around the expression they end, as in
/// `let Some(v) = (y = match .. {}) else ..`; they come back as
/// `Expr::Paren`s. The parse of the printed expansion is checked apart.)
pub(super) fn normalized(item: &Item) -> String {
    struct Normalize;
    impl VisitMut for Normalize {
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            visit_mut::visit_expr_mut(self, expr);
            if let Expr::Paren(paren) = expr
                && paren.attrs.is_empty()
            {
                let inner = std::mem::replace(&mut *paren.expr, Expr::PLACEHOLDER);
                *expr = inner;
            }
        }
        fn visit_macro_mut(&mut self, mac: &mut Macro) {
            if let Ok(mut args) =
                mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
            {
                for arg in args.iter_mut() {
                    self.visit_expr_mut(arg);
                }
                mac.tokens = args.into_token_stream();
            }
        }
    }
    let mut item = item.clone();
    Normalize.visit_item_mut(&mut item);
    item.into_token_stream().to_string()
}

/// Turns every raced await of an expansion back into `<expr>.await`.
/// Returns how many it found.
fn unrewrite(block: &mut Block) -> usize {
    struct Unrewrite {
        arm: String,
        found: usize,
    }
    impl VisitMut for Unrewrite {
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            visit_mut::visit_expr_mut(self, expr);
            let Expr::Match(matched) = expr else {
                return;
            };
            let Expr::Call(call) = &*matched.expr else {
                return;
            };
            let into_future = call.func.to_token_stream().to_string();
            if into_future != ":: core :: future :: IntoFuture :: into_future"
                || call.args.len() != 1
                || matched.arms.len() != 1
                || matched.arms[0].to_token_stream().to_string() != self.arm
            {
                return;
            }
            let base = call.args[0].clone();
            let attrs = std::mem::take(&mut matched.attrs);
            *expr = Expr::Await(syn::ExprAwait {
                attrs,
                base: Box::new(base),
                dot_token: Default::default(),
                await_token: Default::default(),
            });
            self.found += 1;
        }
        fn visit_macro_mut(&mut self, mac: &mut Macro) {
            if let Ok(mut args) =
                mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
            {
                let before = self.found;
                for arg in args.iter_mut() {
                    self.visit_expr_mut(arg);
                }
                if self.found != before {
                    mac.tokens = args.into_token_stream();
                }
            }
        }
    }
    // The one arm of a raced await, as documented in lib.rs.
    let template: syn::ExprMatch = syn::parse_quote! {
        match x {
            __ctx_fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, __ctx_fut).await {
                ::core::result::Result::Ok(__ctx_value) => __ctx_value,
                ::core::result::Result::Err(__ctx_err) => return __ctx_exit(__ctx_err),
            },
        }
    };
    let mut visitor = Unrewrite {
        arm: template.arms[0].to_token_stream().to_string(),
        found: 0,
    };
    visitor.visit_block_mut(block);
    visitor.found
}

/// Replaces `impl Trait` by `_` (the turbofish of `exit_fn` cannot name an opaque type).
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

/// The statements the macro adds, as the expansion documented in lib.rs and
/// the expected expansions of `expand.rs`'s tests spell them.
struct Prologue<'a> {
    sig: &'a Signature,
    timeout: Option<(u64, u32)>,
}

impl Prologue<'_> {
    fn exit_fn(&self) -> TokenStream {
        let ret = result_type(self.sig).map(infer_impl_trait);
        quote!(let __ctx_exit = ::ctx_runtime::__private::exit_fn::<#ret>();)
    }

    fn child(&self) -> TokenStream {
        let Some((secs, nanos)) = self.timeout else {
            return TokenStream::new();
        };
        quote! {
            let (__ctx_child, __ctx_guard) = ::ctx_runtime::__private::Context::with_timeout(
                ::ctx_runtime::__private::as_context(&ctx),
                ::ctx_runtime::__private::Duration::new(#secs, #nanos),
            );
        }
    }

    fn watched(&self) -> TokenStream {
        match self.timeout {
            Some(_) => quote!(&__ctx_child),
            None => quote!(::ctx_runtime::__private::as_context(&ctx)),
        }
    }

    fn shadow(&self) -> TokenStream {
        if self.timeout.is_none() {
            return TokenStream::new();
        }
        let Some((ident, ty)) = ctx_param(self.sig) else {
            return TokenStream::new();
        };
        let mutability = ident.mutability;
        let by_ref = matches!(strip_parens(ty), Type::Reference(_)).then(|| quote!(&));
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

    /// An `async fn` body (with rewritten awaits) or a sync one.
    fn of_body(&self, awaits: usize) -> TokenStream {
        let (exit_fn, child, watched, shadow) =
            (self.exit_fn(), self.child(), self.watched(), self.shadow());
        if awaits == 0 {
            let check = Self::check(quote!(::ctx_runtime::__private::Context::check(#watched)));
            quote!(#exit_fn #child #check #shadow)
        } else {
            let check = Self::check(quote!(__ctx_watch.check()));
            quote! {
                #exit_fn
                #child
                let mut __ctx_watch = ::ctx_runtime::__private::Watch::new(#watched);
                #shadow
                #check
            }
        }
    }

    /// The start of a `-> impl Future` fn's body.
    fn of_call(&self) -> TokenStream {
        let (child, watched) = (self.child(), self.watched());
        quote!(#child let __ctx_watch = ::ctx_runtime::__private::Watch::new(#watched);)
    }

    /// The start of the `async` block a `-> impl Future` fn returns.
    fn of_future(&self, awaits: usize) -> TokenStream {
        let (exit_fn, shadow) = (self.exit_fn(), self.shadow());
        let mutability = (awaits > 0).then(|| quote!(mut));
        let keep = self
            .timeout
            .map(|_| quote!(let __ctx_child = __ctx_child; let __ctx_guard = __ctx_guard;));
        let check = Self::check(quote!(__ctx_watch.check()));
        quote! {
            #exit_fn
            let #mutability __ctx_watch = __ctx_watch;
            #keep
            #shadow
            #check
        }
    }
}

/// Removes the expected prologue from the front of `stmts`, or says how it differs.
fn take_prologue(stmts: &mut Vec<Stmt>, expected: TokenStream) -> Result<(), String> {
    let expected = Block::parse_within
        .parse2(expected)
        .map_err(|err| format!("the test's own prologue does not parse: {err}"))?;
    let n = expected.len();
    let print = |stmts: &[Stmt]| {
        stmts
            .iter()
            .map(|s| s.to_token_stream().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let found = print(&stmts[..n.min(stmts.len())]);
    if found == print(&expected) {
        stmts.drain(..n);
        return Ok(());
    }
    // A body that starts with an empty statement (`{ ; .. }`): its `;` reads
    // back as that of the prologue's last statement, an `if`. Same tokens.
    if let Some(Stmt::Expr(last, None)) = expected.last()
        && let Some(Stmt::Expr(got, Some(semi))) = stmts.get(n.wrapping_sub(1))
        && last.to_token_stream().to_string() == got.to_token_stream().to_string()
        && print(&stmts[..n - 1]) == print(&expected[..n - 1])
    {
        let empty = Stmt::Expr(Expr::Verbatim(TokenStream::new()), Some(*semi));
        stmts.splice(..n, [empty]);
        return Ok(());
    }
    Err(format!(
        "the body does not start with the documented prologue\nexpected:\n{}\nfound:\n{found}",
        print(&expected),
    ))
}

/// `mut ctx` loses its `mut` under a timeout (the shadowing `let` has it).
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

/// Checks the expansion of one fn (`sig` and `body` as written, `out_body`
/// as emitted), and turns `out_body` back into what was written: prologues
/// removed, raced awaits turned back into `.await`.
fn undo_fn(
    sig: &Signature,
    body: &Block,
    out_body: &mut Block,
    timeout: Option<(u64, u32)>,
) -> Result<(), String> {
    let prologue = Prologue { sig, timeout };
    let rewritten = match shape(sig) {
        Shape::Sync => {
            take_prologue(&mut out_body.stmts, prologue.of_body(0))?;
            0
        }
        Shape::Async => {
            let awaits = rewritable_awaits(body);
            take_prologue(&mut out_body.stmts, prologue.of_body(awaits))?;
            awaits
        }
        Shape::ImplFuture => {
            let Some(Stmt::Expr(Expr::Async(tail), None)) = body.stmts.last() else {
                return Err("expanded an `impl Future` fn that does not end in `async`".into());
            };
            let awaits = rewritable_awaits(&tail.block);
            take_prologue(&mut out_body.stmts, prologue.of_call())?;
            let Some(Stmt::Expr(Expr::Async(out_tail), None)) = out_body.stmts.last_mut() else {
                return Err("the expansion does not end in the `async` block".into());
            };
            take_prologue(&mut out_tail.block.stmts, prologue.of_future(awaits))?;
            awaits
        }
    };
    let found = unrewrite(out_body);
    if found != rewritten {
        return Err(format!(
            "{rewritten} awaits should have been raced, {found} were"
        ));
    }
    Ok(())
}

/// Checks a successful expansion `out` of `#[cancellable(attr)] item`: the
/// item with its awaits put back and its prologues removed is the item as
/// written (token for token, once both are printed the same way), except for
/// the documented changes: the inner `#[cancellable]` attributes of a block
/// are removed, and `mut ctx` loses its `mut` under a timeout.
pub(super) fn check_expansion(
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
            undo_fn(
                &written.sig,
                &written.block,
                &mut emitted.block,
                outer.timeout,
            )?;
            if outer.timeout.is_some() {
                strip_ctx_mut(&mut written.sig);
            }
        }
        (Item::Verbatim(_), _) => {
            // A declaration: emitted as it was.
            let (a, b) = (item.to_token_stream(), out.items[0].to_token_stream());
            if a.to_string() != b.to_string() {
                return Err("a declaration was changed".into());
            }
            return Ok(());
        }
        (Item::Impl(written), Item::Impl(emitted)) => {
            if written.items.len() != emitted.items.len() {
                return Err("the block has a different number of items".into());
            }
            for (w, e) in written.items.iter_mut().zip(&mut emitted.items) {
                if let (ImplItem::Fn(w), ImplItem::Fn(e)) = (w, e)
                    && let (Plan::Expand(options), _) = plan(outer, &w.attrs, &w.sig)
                {
                    undo_fn(&w.sig, &w.block, &mut e.block, options.timeout)?;
                    if options.timeout.is_some() {
                        strip_ctx_mut(&mut w.sig);
                    }
                }
            }
        }
        (Item::Trait(written), Item::Trait(emitted)) => {
            if written.items.len() != emitted.items.len() {
                return Err("the trait has a different number of items".into());
            }
            for (w, e) in written.items.iter_mut().zip(&mut emitted.items) {
                if let (TraitItem::Fn(w), TraitItem::Fn(e)) = (w, e)
                    && let (Plan::Expand(options), _) = plan(outer, &w.attrs, &w.sig)
                    && let (Some(body), Some(out_body)) = (&w.default, &mut e.default)
                {
                    undo_fn(&w.sig, body, out_body, options.timeout)?;
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
