//! The prologue of each function: the statements `#[cancellable]` puts in
//! front of its body (the exit closure, the child of a `timeout`, the watch,
//! the entry check), and the checks an item emitted unchanged keeps.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};

use crate::check::signature::{Checked, Parts};
use crate::idents;
use crate::parse::options::Timeout;

/// Builds the prologue of one function.
pub(crate) struct Prologue<'a> {
    checked: &'a Checked,
    timeout: Option<Timeout>,
    /// The fn's name (`fetch`, `Client::get`), for the `tracing` event.
    function: &'a str,
    mixed: Span,
}

impl<'a> Prologue<'a> {
    pub(crate) fn new(checked: &'a Checked, timeout: Option<Timeout>, function: &'a str) -> Self {
        Prologue {
            checked,
            timeout,
            function,
            mixed: Span::mixed_site(),
        }
    }

    /// `let __ctx_exit = |err| exit(<R as CancelReturn>::WRAP, FROM, name, err);`,
    /// spanned at the return type, where a return type that is not a
    /// `Result`, or an error type that cannot hold a cancellation, is then
    /// reported, once (two constants, not a call with bounds: no "required
    /// by a bound in" note, no error repeated at each early return). The
    /// closure captures nothing: it takes no room in the fn's future.
    fn exit_fn(&self) -> TokenStream {
        let (exit, err) = (idents::ident(idents::EXIT), idents::ident(idents::ERR));
        let ret = &self.checked.ret;
        let at = self.mixed.located_at(ret.span());
        let from = from_error(ret);
        let ret = infer_impl_trait(ret.clone());
        let function = self.function;
        quote_spanned! {at=>
            let #exit = |#err: ::ctx_runtime::__private::Error| {
                ::ctx_runtime::__private::exit(
                    <#ret as ::ctx_runtime::__private::CancelReturn>::WRAP,
                    #from,
                    ::core::concat!(::core::module_path!(), "::", #function),
                    #err,
                )
            };
        }
    }

    /// The `&Context` of `ctx`, spanned at the type of `ctx` so that a type
    /// that is not a context is reported there.
    fn as_context(&self) -> TokenStream {
        as_context(&self.checked.ctx.ident, &self.checked.ctx.ty)
    }

    /// With a timeout: `let (__ctx_child, __ctx_guard) = ...;`.
    fn derive_child(&self) -> TokenStream {
        let Some(timeout) = self.timeout else {
            return TokenStream::new();
        };
        let (child, guard) = (idents::ident(idents::CHILD), idents::ident(idents::GUARD));
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
                let child = idents::ident(idents::CHILD);
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
        let child = idents::ident(idents::CHILD);
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
        let (exit, err) = (idents::ident(idents::EXIT), idents::ident(idents::ERR));
        quote_spanned! {self.mixed=>
            if let ::core::result::Result::Err(#err) = #check {
                return #exit(#err);
            }
        }
    }

    /// The start of an `async fn` with `raced` raced suspension points.
    pub(crate) fn of_async(&self, raced: usize) -> TokenStream {
        if raced == 0 {
            return self.of_sync();
        }
        let watch = idents::ident(idents::WATCH);
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
    pub(crate) fn of_sync(&self) -> TokenStream {
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
    pub(crate) fn of_call(&self) -> TokenStream {
        let watch = idents::ident(idents::WATCH);
        let child = self.derive_child();
        let watched = self.watched();
        quote_spanned! {self.mixed=>
            #child
            let #watch = ::ctx_runtime::__private::Watch::new(#watched);
        }
    }

    /// The start of the `async` block a `-> impl Future` fn returns.
    pub(crate) fn of_future(&self, raced: usize) -> TokenStream {
        let watch = idents::ident(idents::WATCH);
        let exit_fn = self.exit_fn();
        let mutability = (raced > 0).then(|| quote!(mut));
        // Moving them in by value makes even a non-`move` block own them.
        let keep = self.timeout.map(|_| {
            let (child, guard) = (idents::ident(idents::CHILD), idents::ident(idents::GUARD));
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

/// `IsContext::context(&ctx)`, spanned at the type of `ctx`.
fn as_context(ctx: &syn::Ident, ty: &Type) -> TokenStream {
    let at = ctx.span().located_at(ty.span());
    let ctx = syn::Ident::new("ctx", at);
    quote_spanned! {at=>
        ::ctx_runtime::__private::IsContext::context(&#ctx)
    }
}

/// The type checks of the prologue, for an item emitted unchanged because of
/// other errors: every problem of a fn is reported in one compile, a wrong
/// return type even when `ctx` is out of place.
pub(crate) fn checks_of(parts: &Parts) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(ctx) = &parts.ctx {
        let context = as_context(&ctx.ident, &ctx.ty);
        out.extend(quote_spanned!(Span::mixed_site()=> let _ = #context;));
    }
    if let Some(ret) = &parts.ret {
        let at = Span::mixed_site().located_at(ret.span());
        let from = from_error(ret);
        let ret = infer_impl_trait(ret.clone());
        out.extend(quote_spanned! {at=>
            ::ctx_runtime::__private::check(
                <#ret as ::ctx_runtime::__private::CancelReturn>::WRAP,
                #from,
            );
        });
    }
    out
}

/// `FromContextError::FROM`, spanned at `E` when the return type is written
/// `Result<T, E>` (else at the return type), where an error type that cannot
/// hold a cancellation is then reported.
fn from_error(ret: &Type) -> TokenStream {
    let mut at = ret.span();
    if let Type::Path(path) = ret
        && let Some(last) = path.path.segments.last()
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && args.args.len() >= 2
        && let Some(syn::GenericArgument::Type(err)) = args.args.last()
    {
        at = err.span();
    }
    let at = Span::mixed_site().located_at(at);
    quote_spanned!(at=> ::ctx_runtime::__private::FromContextError::FROM)
}

/// `Result<impl Display, E>` -> `Result<_, E>`: a qualified path cannot
/// name an opaque type, and inference finds it.
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
