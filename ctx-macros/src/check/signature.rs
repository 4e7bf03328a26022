//! The signature check: `ctx` first, a `Result` return type.
//!
//! Only what can be decided from the syntax is checked here: where `ctx` is,
//! how it is bound, `&mut`, a missing or `()` return type. Whether the type
//! of `ctx` is a context and whether the error type can hold a cancellation
//! are left to the compiler, through the spanned trait paths of the
//! prologue (`emit/prologue.rs`), so that type aliases, wrappers and generic
//! types work.

use proc_macro2::{Delimiter, Group, TokenStream};
use quote::{ToTokens, TokenStreamExt};
use syn::{
    FnArg, GenericArgument, GenericParam, Ident, Pat, PatType, PathArguments, ReturnType,
    Signature, Type, TypeParamBound,
};

use crate::diag::{Errors, pretty};

/// Where the function is, for the wording of errors.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `#[cancellable]` on the function itself.
    Fn,
    /// A method of a `#[cancellable]` impl block or trait.
    Block,
}

/// The `ctx` parameter of a signature that follows the convention.
pub(crate) struct CtxParam {
    /// `ctx`, with the user's span.
    pub(crate) ident: Ident,
    /// `mut` in `mut ctx: Context`.
    pub(crate) mutability: Option<syn::token::Mut>,
    /// Its type, to span the `AsContext` check.
    pub(crate) ty: Type,
    /// Taken by reference (`&Context`, `&impl AsContext`), not by value.
    pub(crate) by_ref: bool,
}

/// How the function produces its result.
pub(crate) enum Shape {
    /// `async fn`: the body is rewritten.
    Async,
    /// `fn ... -> impl Future<Output = R>` whose body ends in an `async`
    /// block: that block is rewritten.
    ImplFuture,
    /// A plain `fn`: entry check only.
    Sync,
}

/// What the expansion needs to know about a signature.
pub(crate) struct Checked {
    pub(crate) ctx: CtxParam,
    /// The type the body evaluates to (for `impl Future`, its `Output`).
    pub(crate) ret: Type,
    pub(crate) shape: Shape,
}

/// The shape of a signature: `async fn`, `fn -> impl Future`, or sync.
pub(crate) fn shape(sig: &Signature) -> Shape {
    if sig.asyncness.is_some() {
        Shape::Async
    } else if future_output(sig).is_some() {
        Shape::ImplFuture
    } else {
        Shape::Sync
    }
}

/// What could be checked of a signature: the parts that are right, and
/// whether everything is.
pub(crate) struct Parts {
    /// `ctx`, if it is in its place, plainly bound, not `&mut`.
    pub(crate) ctx: Option<CtxParam>,
    /// The type the body evaluates to, if it can be a `Result`.
    pub(crate) ret: Option<Type>,
    pub(crate) shape: Shape,
    /// No problem at all.
    pub(crate) ok: bool,
}

impl Parts {
    /// What the expansion needs, if there was no problem.
    pub(crate) fn checked(self) -> Option<Checked> {
        match (self.ok, self.ctx, self.ret) {
            (true, Some(ctx), Some(ret)) => Some(Checked {
                ctx,
                ret,
                shape: self.shape,
            }),
            _ => None,
        }
    }
}

/// Checks `sig` against the convention, pushing every problem to `errors`.
pub(crate) fn check(sig: &Signature, scope: Scope, errors: &mut Errors) -> Parts {
    let before = errors.len();
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "`#[cancellable]` cannot be used on a `const fn`, which cannot await or watch a context: \
             remove `const`, or remove `#[cancellable]`",
        ));
    }
    let ctx = check_ctx(sig, scope, errors);
    let shape = shape(sig);
    let ret = check_return(sig, &shape, errors);
    Parts {
        ctx,
        ret,
        shape,
        ok: errors.len() == before,
    }
}

/// True if `async_trait` has already rewritten this method: `#[cancellable]`
/// was placed under `#[async_trait]`.
pub(crate) fn rewritten_by_async_trait(sig: &Signature) -> bool {
    sig.generics.params.iter().any(
        |param| matches!(param, GenericParam::Lifetime(def) if def.lifetime.ident == "async_trait"),
    )
}

/// True if a parameter binds a name `ctx`.
pub(crate) fn mentions_ctx(sig: &Signature) -> bool {
    typed_params(sig).any(|param| binds_ctx(&param.pat))
}

/// For a sync method of a `#[cancellable]` block that was not asked for:
/// only the place and binding of `ctx` are checked.
pub(crate) fn check_ctx_only(sig: &Signature, errors: &mut Errors) {
    let _ = check_ctx(sig, Scope::Block, errors);
}

/// Removes `mut` from `mut ctx`: with a timeout, the shadowing `let` has it.
pub(crate) fn strip_ctx_mut(sig: &mut Signature) {
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

fn typed_params(sig: &Signature) -> impl Iterator<Item = &PatType> {
    sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(pat) => Some(pat),
        FnArg::Receiver(_) => None,
    })
}

/// `ctx`, plainly bound: `ctx` or `mut ctx`.
fn plain_ctx(pat: &Pat) -> Option<&syn::PatIdent> {
    match pat {
        Pat::Ident(ident)
            if ident.ident == "ctx" && ident.by_ref.is_none() && ident.subpat.is_none() =>
        {
            Some(ident)
        }
        _ => None,
    }
}

/// Any binding of an identifier named `ctx` inside a pattern.
fn binds_ctx(pat: &Pat) -> bool {
    fn any_ctx(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            proc_macro2::TokenTree::Ident(ident) => ident == "ctx",
            proc_macro2::TokenTree::Group(group) => any_ctx(group.stream()),
            _ => false,
        })
    }
    any_ctx(pat.to_token_stream())
}

/// `Context`, `&Context`, `Arc<ctx_runtime::Context>`, `impl AsContext`: looks like a context.
fn looks_like_context(ty: &Type) -> bool {
    ty.to_token_stream().to_string().contains("Context")
}

fn name_of(pat: &Pat) -> String {
    match pat {
        Pat::Ident(ident) => ident.ident.to_string(),
        other => pretty(other),
    }
}

/// `name(&self, ctx: &Context, a: A, b: B)`: the parameters with `ctx` moved first.
fn reordered(sig: &Signature, ctx: &PatType) -> String {
    let mut params: Vec<String> = Vec::new();
    if let Some(receiver) = sig.receiver() {
        params.push(pretty(receiver));
    }
    params.push(pretty(ctx));
    for param in typed_params(sig) {
        if !std::ptr::eq(param, ctx) {
            params.push(pretty(param));
        }
    }
    format!("{}({})", sig.ident, params.join(", "))
}

fn check_ctx(sig: &Signature, scope: Scope, errors: &mut Errors) -> Option<CtxParam> {
    let has_self = sig.receiver().is_some();
    let first_place = if has_self {
        "the first parameter after `self`"
    } else {
        "the first parameter"
    };
    let opt_out = match scope {
        Scope::Fn => "",
        Scope::Block => "\n(to leave this method alone, mark it `#[cancellable(skip)]`)",
    };
    let params: Vec<&PatType> = typed_params(sig).collect();
    let Some(first) = params.first().copied() else {
        errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            format_args!(
                "`{}` has no context to watch: a `#[cancellable]` fn takes `ctx: &Context` as {first_place}, \
                 e.g. `{}({}ctx: &Context)`{opt_out}",
                sig.ident,
                sig.ident,
                if has_self { "&self, " } else { "" },
            ),
        ));
        return None;
    };

    if let Some(ident) = plain_ctx(&first.pat) {
        check_ctx_type(first, errors)?;
        return Some(CtxParam {
            ident: ident.ident.clone(),
            mutability: ident.mutability,
            ty: (*first.ty).clone(),
            by_ref: matches!(strip_parens(&first.ty), Type::Reference(_)),
        });
    }

    // Misplaced: a parameter named `ctx` further on.
    if let Some(later) = params.iter().skip(1).find(|p| plain_ctx(&p.pat).is_some()) {
        errors.push(syn::Error::new_spanned(
            later,
            format_args!(
                "`ctx` must be {first_place}: the context comes first, before `{}`, so that every caller \
                 sees that this fn can be cancelled; move it to the front: `{}`{opt_out}",
                name_of(&first.pat),
                reordered(sig, later),
            ),
        ));
        let _ = check_ctx_type(later, errors);
        return None;
    }

    match &*first.pat {
        Pat::Ident(ident) if ident.ident == "_ctx" => errors.push(syn::Error::new_spanned(
            &ident.ident,
            "`_ctx` says the context is unused, but `#[cancellable]` watches it at every `.await`: \
             rename it to `ctx` (a `#[cancellable]` fn takes its context first, named `ctx`)",
        )),
        Pat::Ident(ident) if ident.by_ref.is_some() || ident.subpat.is_some() => {
            errors.push(pattern_error(first));
        }
        Pat::Ident(ident) if looks_like_context(&first.ty) || is_context_name(&ident.ident) => {
            errors.push(syn::Error::new_spanned(
                &ident.ident,
                format_args!(
                    "the context parameter of a `#[cancellable]` fn must be named `ctx`, not `{}`: \
                     rename it to `ctx: {}`",
                    ident.ident,
                    pretty(&first.ty),
                ),
            ));
        }
        Pat::Ident(_) => errors.push(missing_error(first, first_place, opt_out)),
        pat if binds_ctx(pat) || looks_like_context(&first.ty) => errors.push(pattern_error(first)),
        _ => errors.push(missing_error(first, first_place, opt_out)),
    }
    let _ = check_ctx_type(first, errors);
    None
}

fn is_context_name(ident: &Ident) -> bool {
    let name = ident.to_string().to_ascii_lowercase();
    let name = name.trim_start_matches('_');
    name.contains("ctx") || name.contains("context") || name == "cx"
}

fn pattern_error(param: &PatType) -> syn::Error {
    syn::Error::new_spanned(
        &param.pat,
        "the context must be a parameter of its own, bound to the plain name `ctx` (not a pattern, \
         `ref` or `@` binding), so that `#[cancellable]` can watch it: e.g. `ctx: &Context`",
    )
}

fn missing_error(first: &PatType, first_place: &str, opt_out: &str) -> syn::Error {
    syn::Error::new_spanned(
        first,
        format_args!(
            "a `#[cancellable]` fn takes its context as {first_place}, named `ctx`, but this is `{}`: \
             add `ctx: &Context` before it{opt_out}",
            name_of(&first.pat),
        ),
    )
}

fn strip_parens(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => strip_parens(&inner.elem),
        Type::Group(inner) => strip_parens(&inner.elem),
        other => other,
    }
}

/// `&mut Context` is rejected here; everything else is left to `AsContext`.
fn check_ctx_type(param: &PatType, errors: &mut Errors) -> Option<()> {
    if let Type::Reference(reference) = strip_parens(&param.ty)
        && let Some(mutability) = &reference.mutability
    {
        let mut span = TokenStream::new();
        reference.and_token.to_tokens(&mut span);
        mutability.to_tokens(&mut span);
        errors.push(syn::Error::new_spanned(
            span,
            format_args!(
                "`ctx` cannot be `&mut`: a `Context` is immutable and shared by every task under it; \
                 take it as `ctx: &{}` (or by value)",
                pretty(&reference.elem),
            ),
        ));
        return None;
    }
    Some(())
}

/// `R` in `-> impl Future<Output = R>`.
pub(crate) fn future_output(sig: &Signature) -> Option<&Type> {
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

fn check_return(sig: &Signature, shape: &Shape, errors: &mut Errors) -> Option<Type> {
    const FIX: &str = "so that it can return early when `ctx` is cancelled (it takes its context first, \
                       named `ctx`, and returns `Err(..)` when it is done): return e.g. \
                       `Result<(), ctx_runtime::Error>`, or a `Result<T, E>` whose `E` implements \
                       `From<ctx_runtime::Error>`";
    let ty = match (&sig.output, shape) {
        (ReturnType::Default, _) => {
            // From the name to the closing parenthesis: where `-> ...` goes.
            let mut span = sig.ident.to_token_stream();
            let mut parens = Group::new(Delimiter::Parenthesis, TokenStream::new());
            parens.set_span(sig.paren_token.span.join());
            span.append(parens);
            errors.push(syn::Error::new_spanned(
                span,
                format_args!(
                    "`{}` returns nothing, but a `#[cancellable]` fn must return a `Result` {FIX}",
                    sig.ident
                ),
            ));
            return None;
        }
        (ReturnType::Type(_, ty), Shape::ImplFuture) => future_output(sig).unwrap_or(ty),
        (ReturnType::Type(_, ty), _) => ty,
    };
    match strip_parens(ty) {
        Type::Tuple(tuple) if tuple.elems.is_empty() => {
            errors.push(syn::Error::new_spanned(
                ty,
                format_args!("a `#[cancellable]` fn must return a `Result`, not `()`, {FIX}"),
            ));
            None
        }
        Type::Never(_) => {
            errors.push(syn::Error::new_spanned(
                ty,
                format_args!("a `#[cancellable]` fn must return a `Result`, not `!`, {FIX}"),
            ));
            None
        }
        other if boxed_future(other) => {
            errors.push(syn::Error::new_spanned(
                ty,
                "`#[cancellable]` cannot reach the awaits of a future boxed by hand: write this fn as \
                 an `async fn` that takes `ctx` first and returns a `Result` (or as \
                 `fn .. -> impl Future<Output = Result<..>>` ending in an `async` block), whose awaits \
                 it races against `ctx`; with `#[async_trait]`, put `#[cancellable]` above it; or \
                 remove `#[cancellable]` and race the awaits by hand with `ctx.run(fut).await?`",
            ));
            None
        }
        _ => Some(ty.clone()),
    }
}

/// `Pin<Box<dyn Future<..>>>`, `Box<dyn Future<..>>`, `BoxFuture<'_, T>`.
fn boxed_future(ty: &Type) -> bool {
    fn mentions_future(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            proc_macro2::TokenTree::Ident(ident) => ident == "Future",
            proc_macro2::TokenTree::Group(group) => mentions_future(group.stream()),
            _ => false,
        })
    }
    let Type::Path(path) = ty else {
        return false;
    };
    match path.path.segments.last() {
        Some(last) if last.ident == "BoxFuture" || last.ident == "LocalBoxFuture" => true,
        Some(last) if last.ident == "Pin" || last.ident == "Box" => {
            mentions_future(last.arguments.to_token_stream())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(sig: TokenStream) -> Vec<String> {
        let sig: Signature = syn::parse2(sig).expect("a signature");
        let mut errors = Errors::default();
        let checked = check(&sig, Scope::Fn, &mut errors).checked();
        let messages: Vec<String> = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        };
        assert_eq!(checked.is_some(), messages.is_empty());
        messages
    }

    #[test]
    fn accepts_the_convention() {
        use quote::quote;
        assert!(errors_of(quote!(async fn f(ctx: &Context) -> Result<(), Error>)).is_empty());
        assert!(
            errors_of(quote!(async fn f(&self, ctx: Context, x: u32) -> io::Result<u32>))
                .is_empty()
        );
        assert!(errors_of(quote!(fn f(mut ctx: Arc<Context>) -> Result<(), E>)).is_empty());
        assert!(
            errors_of(quote!(fn f(ctx: impl AsContext) -> impl Future<Output = Result<(), E>>))
                .is_empty()
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        use quote::quote;
        let errors = errors_of(quote!(async fn f(x: u32, ctx: &mut Context)));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("`ctx` must be the first parameter"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("`ctx` cannot be `&mut`"),
            "{errors:?}"
        );
        assert!(errors[2].starts_with("`f` returns nothing"), "{errors:?}");
    }

    #[test]
    fn names_and_patterns() {
        use quote::quote;
        assert!(errors_of(quote!(fn f(_ctx: &Context) -> R))[0].starts_with("`_ctx` says"));
        assert!(
            errors_of(quote!(fn f(context: &Context) -> R))[0]
                .contains("must be named `ctx`, not `context`")
        );
        assert!(
            errors_of(quote!(fn f(ref ctx: Context) -> R))[0]
                .starts_with("the context must be a parameter of its own")
        );
        assert!(
            errors_of(quote!(fn f((ctx, _): (Context, u8)) -> R))[0]
                .starts_with("the context must be a parameter of its own")
        );
        assert!(
            errors_of(quote!(fn f(_: &Context) -> R))[0]
                .starts_with("the context must be a parameter of its own")
        );
        assert!(errors_of(quote!(fn f(x: u32) -> R))[0].contains("but this is `x`"));
        assert!(errors_of(quote!(fn f() -> R))[0].starts_with("`f` has no context"));
        assert!(errors_of(quote!(fn f(&self) -> R))[0].contains("after `self`"));
        assert!(errors_of(quote!(fn f(ctx: &Context) -> ()))[0].contains("not `()`"));
        assert!(errors_of(quote!(const fn f(ctx: &Context) -> R))[0].contains("const fn"));
        for boxed in [
            quote!(fn f(ctx: &Context) -> Pin<Box<dyn Future<Output = R> + Send + '_>>),
            quote!(fn f(ctx: &Context) -> std::pin::Pin<Box<dyn Future<Output = R>>>),
            quote!(fn f(ctx: &Context) -> BoxFuture<'_, R>),
        ] {
            let errors = errors_of(boxed);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains("a future boxed by hand"), "{errors:?}");
            assert!(!errors[0].contains("Result<Pin"), "{errors:?}");
        }
        // A `Result` of a boxed future is a `Result`.
        assert!(
            errors_of(quote!(fn f(ctx: &Context) -> Result<Pin<Box<dyn Future<Output = u8>>>, E>))
                .is_empty()
        );
    }
}
