//! What `#[cancellable]` emits: each function with its prologue and its body
//! rewritten; on any error, the errors and the item as it was (with the type
//! checks of its signatures, so that they are reported in the same compile).

mod prologue;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{Block, Expr, Item, ItemFn, Signature, Stmt, TraitItemFn};

use crate::check::body;
use crate::check::signature::{self, Scope, Shape};
use crate::diag::Errors;
use crate::parse::item::{self, Plan};
use crate::parse::options::{self, Options};
use crate::rewrite::{self, Unraced};
use prologue::Prologue;

/// `#[cancellable(attr)] item`, on `proc_macro2` streams.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = match options::parse(attr) {
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
        block @ (Item::Impl(_) | Item::Trait(_)) => expand_block(&options, errors, block, item),
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
    for again in function.attrs.iter().filter(|a| options::is_cancellable(a)) {
        errors.push(syn::Error::new_spanned(
            again,
            "`#[cancellable]` is applied twice to this fn: remove one (options go in one attribute, \
             e.g. `#[cancellable(timeout = \"1s\")]`)",
        ));
    }
    if signature::rewritten_by_async_trait(&function.sig) {
        errors.push(async_trait_error());
        return with_original(errors.into_compile_errors(), original);
    }
    let mut unchanged = function.clone();
    let name = function.sig.ident.to_string();
    let checks = transform(
        options,
        &mut function.sig,
        &mut function.block,
        Scope::Fn,
        &name,
        &mut errors,
    );
    match errors.finish() {
        Ok(()) => function.into_token_stream(),
        Err(err) if checks.is_empty() => with_original(err.into_compile_error(), original),
        Err(err) => {
            prepend(&mut unchanged.block, checks);
            with_original(err.into_compile_error(), unchanged.into_token_stream())
        }
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
    if signature::rewritten_by_async_trait(&declaration.sig) {
        errors.push(async_trait_error());
    } else {
        signature::check(&declaration.sig, Scope::Fn, &mut errors);
    }
    match errors.finish() {
        Ok(()) => original,
        Err(err) => with_original(err.into_compile_error(), original),
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

/// `#[cancellable]` on an impl block or a trait: each of its methods, seen
/// through `item::Method`.
fn expand_block(
    options: &Options,
    mut errors: Errors,
    mut block: Item,
    original: TokenStream,
) -> TokenStream {
    block_options(options, &mut errors);
    let mut plans = Vec::new();
    for method in item::methods(&mut block) {
        if signature::rewritten_by_async_trait(method.sig) {
            errors.push(async_trait_error());
            return with_original(errors.into_compile_errors(), original);
        }
        plans.push(item::plan(options, method.attrs, method.sig, &mut errors));
    }
    // The item as written, minus our inner attributes, for the error case.
    let mut unchanged = block.clone();
    let owner = item::owner_name(&block);
    let mut checks = Vec::new();
    for (method, plan) in item::methods(&mut block).into_iter().zip(plans) {
        let name = format!("{owner}::{}", method.sig.ident);
        checks.push(match (plan, method.body) {
            (Plan::Leave, _) => TokenStream::new(),
            (Plan::CheckCtx, _) => {
                signature::check_ctx_only(method.sig, &mut errors);
                TokenStream::new()
            }
            (Plan::Expand { own_timeout, .. }, None) => {
                if let Some(span) = own_timeout {
                    errors.push(syn::Error::new(span, NO_BODY_FOR_TIMEOUT));
                }
                signature::check(method.sig, Scope::Block, &mut errors);
                TokenStream::new()
            }
            (Plan::Expand { options, .. }, Some(body)) => {
                transform(&options, method.sig, body, Scope::Block, &name, &mut errors)
            }
        });
    }
    match errors.finish() {
        Ok(()) => block.into_token_stream(),
        Err(err) => {
            for (method, checks) in item::methods(&mut unchanged).into_iter().zip(checks) {
                if let Some(body) = method.body {
                    prepend(body, checks);
                }
            }
            with_original(err.into_compile_error(), unchanged.into_token_stream())
        }
    }
}

/// Checks one function and rewrites its body in place if it has no problem.
/// Returns the checks its unchanged item keeps if the expansion fails.
fn transform(
    options: &Options,
    sig: &mut Signature,
    body: &mut Block,
    scope: Scope,
    function: &str,
    errors: &mut Errors,
) -> TokenStream {
    let before = errors.len();
    let parts = signature::check(sig, scope, errors);
    body::check(body, signature::mentions_ctx(sig), errors);
    let checks = prologue::checks_of(&parts);
    if errors.len() > before {
        return checks;
    }
    let Some(checked) = parts.checked() else {
        return checks;
    };
    let prologue = Prologue::new(&checked, options.timeout, function);
    if options.timeout.is_some() {
        // The body sees the child through a shadowing `let`, which takes
        // over the `mut` of the parameter.
        signature::strip_ctx_mut(sig);
    }
    let result = match checked.shape {
        Shape::Async => {
            let rewritten = rewrite::rewrite_block(body, errors);
            prepend(body, prologue.of_async(rewritten.raced));
            Ok(rewritten.unraced)
        }
        Shape::Sync => {
            let unraced = rewrite::unraced_in_sync(body);
            prepend(body, prologue.of_sync());
            Ok(unraced)
        }
        Shape::ImplFuture => impl_future(&prologue, body, errors),
    };
    match result {
        // The warnings of the awaits left unraced, in front of everything.
        Ok(unraced) if options.allow_unraced.is_none() => {
            prepend(body, rewrite::warnings(&unraced));
        }
        Ok(_) => {}
        Err(err) => errors.push(err),
    }
    checks
}

/// Puts generated statements in front of a body: a prologue, the warnings
/// of unraced awaits, or the type checks a body emitted unchanged keeps.
fn prepend(body: &mut Block, prologue: TokenStream) {
    if prologue.is_empty() {
        return;
    }
    // The generated statements go in as the tokens they are: nothing visits
    // them again, and parsing them only to print them back was a fifth of
    // an expansion.
    body.stmts.insert(0, Stmt::Item(Item::Verbatim(prologue)));
}

/// `fn f(ctx) -> impl Future<Output = R> { ...; async move { ... } }`: the
/// watch is made at the call and moved into the tail `async` block, which is
/// rewritten like the body of an `async fn`.
fn impl_future(
    prologue: &Prologue<'_>,
    body: &mut Block,
    errors: &mut Errors,
) -> syn::Result<Vec<Unraced>> {
    let Some((Stmt::Expr(Expr::Async(tail), None), sync_part)) = body.stmts.split_last_mut() else {
        let message = "a `#[cancellable]` fn returning `impl Future` must end in an `async` block \
                       (`async move { ... }`), whose awaits it rewrites; or make it an `async fn`";
        return Err(match body.stmts.last() {
            Some(stmt) => syn::Error::new_spanned(stmt, message),
            None => syn::Error::new(body.brace_token.span.join(), message),
        });
    };
    let rewritten = rewrite::rewrite_block(&mut tail.block, errors);
    prepend(&mut tail.block, prologue.of_future(rewritten.raced));
    let mut unraced = rewritten.unraced;
    let mut sync_part = Block {
        brace_token: body.brace_token,
        stmts: sync_part.to_vec(),
    };
    unraced.extend(rewrite::unraced_in_sync(&mut sync_part));
    prepend(body, prologue.of_call());
    Ok(unraced)
}

#[cfg(test)]
mod tests;
