//! What `#[cancellable]` emits: the prologue of each function, the rewritten
//! body, and, on any error, the errors plus the item as it was.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Attribute, Block, Expr, ImplItem, Item, ItemFn, ItemImpl, ItemTrait, Signature, Stmt,
    TraitItem, TraitItemFn, Type,
};

use crate::Errors;
use crate::attr::{self, Options, Timeout};
use crate::rewrite;
use crate::sig::{self, Checked, Scope, Shape};

/// `#[cancellable(attr)] item`, on `proc_macro2` streams.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = match attr::parse(attr) {
        Ok(options) => options,
        Err(err) => {
            errors.push(err);
            Options::default()
        }
    };
    let parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(err) => return unparsable(err, item),
    };
    match parsed {
        Item::Fn(function) => expand_fn(&options, errors, function, item),
        Item::Impl(block) => expand_impl(&options, errors, block, item),
        Item::Trait(block) => expand_trait(&options, errors, block, item),
        // A method declaration without a body (in a trait) is not an `Item`.
        Item::Verbatim(tokens) => match syn::parse2::<TraitItemFn>(tokens) {
            Ok(declaration) => expand_declaration(&options, errors, &declaration, item),
            Err(_) => {
                errors.push(syn::Error::new_spanned(&item, not_a_fn("this item")));
                with_original(errors.into_compile_errors(), item)
            }
        },
        other => {
            errors.push(unsupported(&other));
            with_original(errors.into_compile_errors(), item)
        }
    }
}

/// The errors, then the item as it was: the rest of the crate (and IDE
/// completion) keeps working, and no "cannot find function" errors follow.
/// Its lints are silenced: "unused variable `ctx`, rename it `_ctx`" would
/// be bad advice next to the errors.
fn with_original(errors: TokenStream, original: TokenStream) -> TokenStream {
    let mut out = errors;
    out.extend(quote!(#[allow(unused_variables)]));
    out.extend(original);
    out
}

/// Not an item: on stable Rust that is a closure or a block, given to an
/// attribute the compiler already rejects on expressions. Otherwise the
/// item has a syntax error: kept as it was (so that the compiler reports it
/// and an IDE can still complete in it) with the reason.
fn unparsable(err: syn::Error, item: TokenStream) -> TokenStream {
    if let Ok(expr) = syn::parse2::<Expr>(item.clone()) {
        let what = match expr {
            Expr::Closure(_) => "a closure",
            Expr::Async(_) => "an async block",
            _ => "an expression",
        };
        let error = syn::Error::new_spanned(
            &item,
            format_args!(
                "`#[cancellable]` cannot be used on {what}: put the code in an `async fn` that takes \
                 `ctx: &Context` first and mark that fn, or race the awaits by hand with `ctx.run(fut).await?`"
            ),
        )
        .into_compile_error();
        // One expression, so that it fits where the closure was.
        return quote!({ #error; #item });
    }
    let error = syn::Error::new(
        err.span(),
        format_args!("`#[cancellable]` cannot parse this item ({err}); it is left as it is"),
    );
    let mut out = error.into_compile_error();
    out.extend(item);
    out
}

fn not_a_fn(what: &str) -> String {
    format!(
        "`#[cancellable]` cannot be used on {what}: it goes on an `async fn` that takes `ctx: &Context` \
         first (or on a fn, an impl block or a trait)"
    )
}

/// The error for an item `#[cancellable]` does not apply to, at its keyword and name.
fn unsupported(item: &Item) -> syn::Error {
    let (what, tokens) = match item {
        Item::Struct(s) => ("a struct", keyword_and_name(&s.struct_token, &s.ident)),
        Item::Enum(e) => ("an enum", keyword_and_name(&e.enum_token, &e.ident)),
        Item::Union(u) => ("a union", keyword_and_name(&u.union_token, &u.ident)),
        Item::Const(c) => ("a const", keyword_and_name(&c.const_token, &c.ident)),
        Item::Static(s) => ("a static", keyword_and_name(&s.static_token, &s.ident)),
        Item::Type(t) => ("a type alias", keyword_and_name(&t.type_token, &t.ident)),
        Item::Mod(m) => ("a module", keyword_and_name(&m.mod_token, &m.ident)),
        Item::Use(u) => ("a `use` declaration", u.to_token_stream()),
        Item::Macro(m) => ("a macro invocation", m.mac.path.to_token_stream()),
        other => ("this item", other.to_token_stream()),
    };
    syn::Error::new_spanned(tokens, not_a_fn(what))
}

fn keyword_and_name(keyword: &impl ToTokens, name: &syn::Ident) -> TokenStream {
    let mut tokens = keyword.to_token_stream();
    name.to_tokens(&mut tokens);
    tokens
}

fn async_trait_error() -> syn::Error {
    syn::Error::new(
        Span::call_site(),
        "`#[cancellable]` ran after `#[async_trait]`, which has already turned the `async fn`s into fns \
         returning `Pin<Box<dyn Future>>`: put `#[cancellable]` on the impl block or trait, above \
         `#[async_trait]` (attributes run from the top down), and use `#[cancellable(...)]` on a method \
         only for its options",
    )
}

/// Options that make no sense on a single fn.
fn fn_options(options: &Options, errors: &mut Errors) {
    if let Some(skip) = options.skip {
        errors.push(syn::Error::new(
            skip,
            "`skip` is for a method inside a `#[cancellable]` impl block or trait; on a fn, remove \
             `#[cancellable]` instead",
        ));
    }
}

/// `#[cancellable]` on a single fn.
fn expand_fn(
    options: &Options,
    mut errors: Errors,
    mut function: ItemFn,
    original: TokenStream,
) -> TokenStream {
    fn_options(options, &mut errors);
    for again in function.attrs.iter().filter(|a| attr::is_cancellable(a)) {
        errors.push(syn::Error::new_spanned(
            again,
            "`#[cancellable]` is applied twice to this fn: remove one (options go in one attribute, \
             e.g. `#[cancellable(timeout = \"1s\")]`)",
        ));
    }
    if sig::rewritten_by_async_trait(&function.sig) {
        errors.push(async_trait_error());
    } else {
        transform(
            options,
            &mut function.sig,
            &mut function.block,
            Scope::Fn,
            &mut errors,
        );
    }
    match errors.finish() {
        Ok(()) => function.into_token_stream(),
        Err(err) => with_original(err.into_compile_error(), original),
    }
}

const NO_BODY_FOR_TIMEOUT: &str = "a method without a body has no awaits for a `timeout` to apply \
     to: put the option on the methods that implement it";

/// `#[cancellable]` on a method declaration without a body: the signature
/// check only, as there is nothing to rewrite.
fn expand_declaration(
    options: &Options,
    mut errors: Errors,
    declaration: &TraitItemFn,
    original: TokenStream,
) -> TokenStream {
    fn_options(options, &mut errors);
    if let Some(timeout) = options.timeout {
        errors.push(syn::Error::new(timeout.span, NO_BODY_FOR_TIMEOUT));
    }
    if sig::rewritten_by_async_trait(&declaration.sig) {
        errors.push(async_trait_error());
    } else {
        sig::check(&declaration.sig, Scope::Fn, &mut errors);
    }
    match errors.finish() {
        Ok(()) => original,
        Err(err) => with_original(err.into_compile_error(), original),
    }
}

/// What a method of a `#[cancellable]` block gets.
enum Plan {
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
fn plan(outer: &Options, attrs: &mut Vec<Attribute>, sig: &Signature, errors: &mut Errors) -> Plan {
    let mut inner: Option<Options> = None;
    let mut marked = false;
    let mut kept = Vec::with_capacity(attrs.len());
    for attribute in attrs.drain(..) {
        if !attr::is_cancellable(&attribute) {
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
        match attr::parse_attribute(&attribute) {
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
    match sig::shape(sig) {
        Shape::Async | Shape::ImplFuture => Plan::Expand {
            options,
            own_timeout,
        },
        Shape::Sync if marked => Plan::Expand {
            options,
            own_timeout,
        },
        Shape::Sync if sig::mentions_ctx(sig) => Plan::CheckCtx,
        Shape::Sync => Plan::Leave,
    }
}

fn block_options(options: &Options, errors: &mut Errors) {
    if let Some(skip) = options.skip {
        errors.push(syn::Error::new(
            skip,
            "`skip` goes on a method inside a `#[cancellable]` impl block or trait, not on the block itself",
        ));
    }
}

/// `#[cancellable]` on an impl block: each async method.
fn expand_impl(
    options: &Options,
    mut errors: Errors,
    mut block: ItemImpl,
    original: TokenStream,
) -> TokenStream {
    block_options(options, &mut errors);
    let mut plans = Vec::new();
    for item in &mut block.items {
        if let ImplItem::Fn(method) = item {
            if sig::rewritten_by_async_trait(&method.sig) {
                errors.push(async_trait_error());
                return with_original(errors.into_compile_errors(), original);
            }
            plans.push(plan(options, &mut method.attrs, &method.sig, &mut errors));
        }
    }
    // The item as written, minus our inner attributes, for the error case.
    let stripped = block.clone();
    let methods = block.items.iter_mut().filter_map(|item| match item {
        ImplItem::Fn(method) => Some(method),
        _ => None,
    });
    for (method, plan) in methods.zip(plans) {
        match plan {
            Plan::Leave => {}
            Plan::CheckCtx => sig::check_ctx_only(&method.sig, &mut errors),
            Plan::Expand { options, .. } => transform(
                &options,
                &mut method.sig,
                &mut method.block,
                Scope::Block,
                &mut errors,
            ),
        }
    }
    match errors.finish() {
        Ok(()) => block.into_token_stream(),
        Err(err) => with_original(err.into_compile_error(), stripped.into_token_stream()),
    }
}

/// `#[cancellable]` on a trait: each async method with a default body; the
/// signatures of those without are checked.
fn expand_trait(
    options: &Options,
    mut errors: Errors,
    mut block: ItemTrait,
    original: TokenStream,
) -> TokenStream {
    block_options(options, &mut errors);
    let mut plans = Vec::new();
    for item in &mut block.items {
        if let TraitItem::Fn(method) = item {
            if sig::rewritten_by_async_trait(&method.sig) {
                errors.push(async_trait_error());
                return with_original(errors.into_compile_errors(), original);
            }
            plans.push(plan(options, &mut method.attrs, &method.sig, &mut errors));
        }
    }
    let stripped = block.clone();
    let methods = block.items.iter_mut().filter_map(|item| match item {
        TraitItem::Fn(method) => Some(method),
        _ => None,
    });
    for (method, plan) in methods.zip(plans) {
        match (plan, &mut method.default) {
            (Plan::Leave, _) => {}
            (Plan::CheckCtx, _) => sig::check_ctx_only(&method.sig, &mut errors),
            (Plan::Expand { own_timeout, .. }, None) => {
                if let Some(span) = own_timeout {
                    errors.push(syn::Error::new(span, NO_BODY_FOR_TIMEOUT));
                }
                sig::check(&method.sig, Scope::Block, &mut errors);
            }
            (Plan::Expand { options, .. }, Some(body)) => {
                transform(&options, &mut method.sig, body, Scope::Block, &mut errors);
            }
        }
    }
    match errors.finish() {
        Ok(()) => block.into_token_stream(),
        Err(err) => with_original(err.into_compile_error(), stripped.into_token_stream()),
    }
}

/// Checks one function and rewrites its body in place.
fn transform(
    options: &Options,
    sig: &mut Signature,
    body: &mut Block,
    scope: Scope,
    errors: &mut Errors,
) {
    let Some(checked) = sig::check(sig, scope, errors) else {
        return;
    };
    let names = Names::new(&checked, options.timeout);
    if options.timeout.is_some() {
        // The body sees the child through a shadowing `let`, which takes
        // over the `mut` of the parameter.
        sig::strip_ctx_mut(sig);
    }
    let result = match checked.shape {
        Shape::Async => {
            let awaits = rewrite::rewrite_block(body);
            prepend(body, names.async_prologue(awaits))
        }
        Shape::Sync => prepend(body, names.sync_prologue()),
        Shape::ImplFuture => impl_future(&names, body),
    };
    if let Err(err) = result {
        errors.push(err);
    }
}

fn prepend(body: &mut Block, prologue: TokenStream) -> syn::Result<()> {
    let mut stmts = Block::parse_within.parse2(prologue)?;
    stmts.append(&mut body.stmts);
    body.stmts = stmts;
    Ok(())
}

/// `fn f(ctx) -> impl Future<Output = R> { ...; async move { ... } }`: the
/// watch is made at the call and moved into the tail `async` block, which is
/// rewritten like the body of an `async fn`.
fn impl_future(names: &Names<'_>, body: &mut Block) -> syn::Result<()> {
    let tail = match body.stmts.last_mut() {
        Some(Stmt::Expr(Expr::Async(tail), None)) => tail,
        other => {
            let message = "a `#[cancellable]` fn returning `impl Future` must end in an `async` block \
                           (`async move { ... }`), whose awaits it rewrites; or make it an `async fn`";
            return Err(match other {
                Some(stmt) => syn::Error::new_spanned(stmt, message),
                None => syn::Error::new(body.brace_token.span.join(), message),
            });
        }
    };
    let awaits = rewrite::rewrite_block(&mut tail.block);
    prepend(&mut tail.block, names.future_prologue(awaits))?;
    prepend(body, names.call_prologue())
}

/// The tokens every prologue is made of.
struct Names<'a> {
    checked: &'a Checked,
    timeout: Option<Timeout>,
    mixed: Span,
}

impl<'a> Names<'a> {
    fn new(checked: &'a Checked, timeout: Option<Timeout>) -> Self {
        Names {
            checked,
            timeout,
            mixed: Span::mixed_site(),
        }
    }

    fn ident(&self, name: &str) -> syn::Ident {
        syn::Ident::new(name, self.mixed)
    }

    /// `let __ctx_exit = exit_fn::<R>();`, spanned at the return type so that
    /// a return type that cannot carry a cancellation is reported there.
    fn exit_fn(&self) -> TokenStream {
        let exit = rewrite::exit_ident();
        let ret = &self.checked.ret;
        let at = self.mixed.located_at(ret.span());
        let ret = infer_impl_trait(ret.clone());
        quote_spanned! {at=>
            let #exit = ::ctx_runtime::__private::exit_fn::<#ret>();
        }
    }

    /// `as_context(&ctx)`, spanned at the type of `ctx` so that a type that is
    /// not a context is reported there.
    fn as_context(&self) -> TokenStream {
        let ty = &self.checked.ctx.ty;
        let at = self.checked.ctx.ident.span().located_at(ty.span());
        let ctx = syn::Ident::new("ctx", at);
        quote_spanned! {at=>
            ::ctx_runtime::__private::as_context(&#ctx)
        }
    }

    /// With a timeout: `let (__ctx_child, __ctx_guard) = ...;`.
    fn derive_child(&self) -> TokenStream {
        let Some(timeout) = self.timeout else {
            return TokenStream::new();
        };
        let (child, guard) = (self.ident("__ctx_child"), self.ident("__ctx_guard"));
        let (secs, nanos) = (timeout.secs, timeout.nanos);
        let at = self.mixed.located_at(timeout.span);
        let parent = self.as_context();
        quote_spanned! {at=>
            let (#child, #guard) = ::ctx_runtime::__private::Context::with_timeout(
                #parent,
                ::ctx_runtime::__private::Duration::new(#secs, #nanos),
            );
        }
    }

    /// The `&Context` to watch: the parameter's, or the child.
    fn watched(&self) -> TokenStream {
        match self.timeout {
            Some(_) => {
                let child = self.ident("__ctx_child");
                quote!(&#child)
            }
            None => self.as_context(),
        }
    }

    /// With a timeout: `let ctx = &__ctx_child;` (or by value), so that the
    /// body passes the child on.
    fn shadow_ctx(&self) -> TokenStream {
        if self.timeout.is_none() {
            return TokenStream::new();
        }
        let child = self.ident("__ctx_child");
        let ctx = &self.checked.ctx.ident;
        let mutability = &self.checked.ctx.mutability;
        // The body may not use `ctx` (but the child must still be watched).
        let allow = quote_spanned!(self.mixed=> #[allow(unused_variables, unused_mut)]);
        if self.checked.ctx.by_ref {
            quote!(#allow let #mutability #ctx = &#child;)
        } else {
            quote!(#allow let #mutability #ctx = #child;)
        }
    }

    fn early_return(&self, check: TokenStream) -> TokenStream {
        let (exit, err) = (rewrite::exit_ident(), self.ident("__ctx_err"));
        quote_spanned! {self.mixed=>
            if let ::core::result::Result::Err(#err) = #check {
                return #exit(#err);
            }
        }
    }

    /// The start of an `async fn` with `awaits` rewritten awaits.
    fn async_prologue(&self, awaits: usize) -> TokenStream {
        if awaits == 0 {
            return self.sync_prologue();
        }
        let watch = rewrite::watch_ident();
        let exit_fn = self.exit_fn();
        let child = self.derive_child();
        let watched = self.watched();
        let shadow = self.shadow_ctx();
        let check = self.early_return(quote!(#watch.check()));
        quote_spanned! {self.mixed=>
            #exit_fn
            #child
            let mut #watch = ::ctx_runtime::__private::Watch::new(#watched);
            #shadow
            #check
        }
    }

    /// The start of a sync fn, or of an `async fn` without awaits: a check.
    fn sync_prologue(&self) -> TokenStream {
        let exit_fn = self.exit_fn();
        let child = self.derive_child();
        let watched = self.watched();
        let check = self.early_return(quote!(::ctx_runtime::__private::Context::check(#watched)));
        let shadow = self.shadow_ctx();
        quote! {
            #exit_fn
            #child
            #check
            #shadow
        }
    }

    /// The start of a `-> impl Future` fn: the child and the watch, made at
    /// the call, own no borrow and move into the returned future.
    fn call_prologue(&self) -> TokenStream {
        let watch = rewrite::watch_ident();
        let child = self.derive_child();
        let watched = self.watched();
        quote_spanned! {self.mixed=>
            #child
            let #watch = ::ctx_runtime::__private::Watch::new(#watched);
        }
    }

    /// The start of the `async` block a `-> impl Future` fn returns.
    fn future_prologue(&self, awaits: usize) -> TokenStream {
        let watch = rewrite::watch_ident();
        let exit_fn = self.exit_fn();
        let mutability = (awaits > 0).then(|| quote!(mut));
        // Moving them in by value makes even a non-`move` block own them.
        let keep = self.timeout.map(|_| {
            let (child, guard) = (self.ident("__ctx_child"), self.ident("__ctx_guard"));
            quote!(let #child = #child; let #guard = #guard;)
        });
        let shadow = self.shadow_ctx();
        let check = self.early_return(quote!(#watch.check()));
        quote_spanned! {self.mixed=>
            #exit_fn
            let #mutability #watch = #watch;
            #keep
            #shadow
            #check
        }
    }
}

/// `Result<impl Display, E>` -> `Result<_, E>`: the turbofish of `exit_fn`
/// cannot name an opaque type, and inference finds it.
fn infer_impl_trait(mut ty: Type) -> Type {
    struct Infer;
    impl VisitMut for Infer {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(imp) = ty {
                let underscore = syn::Token![_](imp.impl_token.span);
                *ty = Type::Infer(syn::TypeInfer {
                    attrs: Vec::new(),
                    underscore_token: underscore,
                });
            } else {
                visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    Infer.visit_type_mut(&mut ty);
    ty
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands `#[cancellable(attr)] item` and compares it with `expected`,
    /// both printed from parsed syntax trees.
    #[track_caller]
    fn assert_expands(attr: TokenStream, item: TokenStream, expected: TokenStream) {
        let actual = expand(attr, item);
        let actual: syn::File = syn::parse2(actual).expect("the expansion parses");
        let expected: syn::File = syn::parse2(expected).expect("the expected expansion parses");
        assert_eq!(
            actual.into_token_stream().to_string(),
            expected.into_token_stream().to_string()
        );
    }

    #[test]
    fn async_fn() {
        assert_expands(
            quote!(),
            quote! {
                async fn f(ctx: &Context, x: u32) -> Result<u32, E> {
                    let a = g(x).await?;
                    Ok(a)
                }
            },
            quote! {
                async fn f(ctx: &Context, x: u32) -> Result<u32, E> {
                    let __ctx_exit = ::ctx_runtime::__private::exit_fn::<Result<u32, E> >();
                    let mut __ctx_watch = ::ctx_runtime::__private::Watch::new(
                        ::ctx_runtime::__private::as_context(&ctx)
                    );
                    if let ::core::result::Result::Err(__ctx_err) = __ctx_watch.check() {
                        return __ctx_exit(__ctx_err);
                    }
                    let a = match ::core::future::IntoFuture::into_future(g(x)) {
                        __ctx_fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, __ctx_fut).await {
                            ::core::result::Result::Ok(__ctx_value) => __ctx_value,
                            ::core::result::Result::Err(__ctx_err) => return __ctx_exit(__ctx_err),
                        },
                    }?;
                    Ok(a)
                }
            },
        );
    }

    #[test]
    fn async_fn_without_awaits_and_sync_fn_check_once() {
        let check = quote! {
            let __ctx_exit = ::ctx_runtime::__private::exit_fn::<io::Result<()> >();
            if let ::core::result::Result::Err(__ctx_err) = ::ctx_runtime::__private::Context::check(
                ::ctx_runtime::__private::as_context(&ctx)
            ) {
                return __ctx_exit(__ctx_err);
            }
        };
        assert_expands(
            quote!(),
            quote!(
                pub async fn f(ctx: Context) -> io::Result<()> {
                    work();
                    Ok(())
                }
            ),
            quote!(pub async fn f(ctx: Context) -> io::Result<()> { #check work(); Ok(()) }),
        );
        assert_expands(
            quote!(),
            quote!(
                fn f(ctx: Context) -> io::Result<()> {
                    work();
                    Ok(())
                }
            ),
            quote!(fn f(ctx: Context) -> io::Result<()> { #check work(); Ok(()) }),
        );
    }

    #[test]
    fn timeout_shadows_ctx_with_the_child() {
        assert_expands(
            quote!(timeout = "1.5s"),
            quote! {
                async fn f(mut ctx: &Context) -> Result<(), E> {
                    h(ctx).await
                }
            },
            quote! {
                async fn f(ctx: &Context) -> Result<(), E> {
                    let __ctx_exit = ::ctx_runtime::__private::exit_fn::<Result<(), E> >();
                    let (__ctx_child, __ctx_guard) = ::ctx_runtime::__private::Context::with_timeout(
                        ::ctx_runtime::__private::as_context(&ctx),
                        ::ctx_runtime::__private::Duration::new(1u64, 500000000u32),
                    );
                    let mut __ctx_watch = ::ctx_runtime::__private::Watch::new(&__ctx_child);
                    #[allow(unused_variables, unused_mut)]
                    let mut ctx = &__ctx_child;
                    if let ::core::result::Result::Err(__ctx_err) = __ctx_watch.check() {
                        return __ctx_exit(__ctx_err);
                    }
                    match ::core::future::IntoFuture::into_future(h(ctx)) {
                        __ctx_fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, __ctx_fut).await {
                            ::core::result::Result::Ok(__ctx_value) => __ctx_value,
                            ::core::result::Result::Err(__ctx_err) => return __ctx_exit(__ctx_err),
                        },
                    }
                }
            },
        );
    }

    #[test]
    fn impl_future_moves_the_watch_into_its_async_block() {
        assert_expands(
            quote!(),
            quote! {
                fn f(ctx: &Context) -> impl Future<Output = Result<impl Display, E>> + '_ {
                    let n = 1;
                    async move { Ok(n) }
                }
            },
            quote! {
                fn f(ctx: &Context) -> impl Future<Output = Result<impl Display, E>> + '_ {
                    let __ctx_watch = ::ctx_runtime::__private::Watch::new(
                        ::ctx_runtime::__private::as_context(&ctx)
                    );
                    let n = 1;
                    async move {
                        let __ctx_exit = ::ctx_runtime::__private::exit_fn::<Result<_, E> >();
                        let __ctx_watch = __ctx_watch;
                        if let ::core::result::Result::Err(__ctx_err) = __ctx_watch.check() {
                            return __ctx_exit(__ctx_err);
                        }
                        Ok(n)
                    }
                }
            },
        );
    }

    #[test]
    fn blocks_strip_their_inner_attributes() {
        let prologue = quote! {
            let __ctx_exit = ::ctx_runtime::__private::exit_fn::<R>();
            if let ::core::result::Result::Err(__ctx_err) = ::ctx_runtime::__private::Context::check(
                ::ctx_runtime::__private::as_context(&ctx)
            ) {
                return __ctx_exit(__ctx_err);
            }
        };
        assert_expands(
            quote!(),
            quote! {
                impl S {
                    async fn a(&self, ctx: &Context) -> R { Ok(()) }
                    #[cancellable(skip)]
                    async fn b(&self) {}
                    fn c(&self) -> u8 { 0 }
                    #[ctx_runtime::cancellable]
                    fn d(&self, ctx: &Context) -> R { Ok(()) }
                }
            },
            quote! {
                impl S {
                    async fn a(&self, ctx: &Context) -> R { #prologue Ok(()) }
                    async fn b(&self) {}
                    fn c(&self) -> u8 { 0 }
                    fn d(&self, ctx: &Context) -> R { #prologue Ok(()) }
                }
            },
        );
    }

    #[test]
    fn errors_come_with_the_item_unchanged() {
        let item = quote!(
            async fn f(x: u32) {}
        );
        let out = expand(quote!(), item.clone()).to_string();
        assert!(out.starts_with(":: core :: compile_error !"), "{out}");
        assert!(
            out.ends_with(&format!("# [allow (unused_variables)] {item}")),
            "{out}"
        );
        // Two problems, two errors.
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");

        // In a block, the inner attributes are removed from what is kept.
        let out = expand(
            quote!(),
            quote!(impl S { #[cancellable(skip)] async fn a(&self) {} async fn b(&self) {} }),
        )
        .to_string();
        assert_eq!(
            out.matches("compile_error").count(),
            2,
            "no ctx, no return type: {out}"
        );
        let kept = out
            .split("# [allow (unused_variables)]")
            .nth(1)
            .unwrap_or_default();
        assert_eq!(
            kept,
            " impl S { async fn a (& self) { } async fn b (& self) { } }"
        );
    }

    #[test]
    fn a_timeout_on_a_trait_method_without_a_body_is_an_error() {
        let out = expand(
            quote!(),
            quote!(
                trait T {
                    #[cancellable(timeout = "1s")]
                    async fn f(&self, ctx: &Context) -> Result<(), Error>;
                }
            ),
        )
        .to_string();
        assert!(out.contains("has no awaits for a `timeout`"), "{out}");
        // The trait's own default is not an error for a method without a body.
        let out = expand(
            quote!(timeout = "1s"),
            quote!(
                trait T {
                    async fn f(&self, ctx: &Context) -> Result<(), Error>;
                }
            ),
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn never_panics() {
        let inputs = [
            quote!(),
            quote!(fn),
            quote!(async fn f(),),
            quote!(async fn f(ctx) -> {}),
            quote!(struct;),
            quote!(+ - * /),
            quote!(impl {}),
            quote!(
                trait T {
                    fn f(ctx: &Context) -> R;
                }
            ),
            quote!(
                fn f(self, ctx: &Context) -> R {}
            ),
            quote!(
                async fn f<'async_trait>(ctx: &Context) -> R {}
            ),
            quote!(
                fn f(ctx: &Context) -> impl Future {}
            ),
            quote!(
                fn f(ctx: &Context) -> impl Future<Output = R> {}
            ),
            quote!(
                async fn f(ctx: &Context) -> R {
                    x!(a.await,,);
                    y![;];
                    z! {}
                }
            ),
            quote!(|ctx| async {}),
            quote!(
                async fn f(ctx: &Context) -> R {
                    let Some(x) = a.await else { return };
                }
            ),
        ];
        let attrs = [
            quote!(),
            quote!(timeout),
            quote!(timeout = ),
            quote!(timeout = "1x"),
            quote!(= "1s"),
            quote!(skip, skip),
            quote!(timeout = "99999999999999999999999999h"),
        ];
        for item in &inputs {
            for attr in &attrs {
                let _ = expand(attr.clone(), item.clone());
            }
        }
    }
}
