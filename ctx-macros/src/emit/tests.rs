//! Tests of the expansion, on token streams.

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
                        let __ctx_exit = |__ctx_err: ::ctx_runtime::__private::Error| {
            ::ctx_runtime::__private::exit(
                <Result<u32, E> as ::ctx_runtime::__private::CancelReturn>::WRAP,
                ::ctx_runtime::__private::FromContextError::FROM,
                ::core::concat!(::core::module_path!(), "::", "f"),
                __ctx_err,
            )
        };
                        let mut __ctx_watch = ::ctx_runtime::__private::Watch::new(
                            ::ctx_runtime::__private::IsContext::context(&ctx)
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
            let __ctx_exit = |__ctx_err: ::ctx_runtime::__private::Error| {
        ::ctx_runtime::__private::exit(
            <io::Result<()> as ::ctx_runtime::__private::CancelReturn>::WRAP,
            ::ctx_runtime::__private::FromContextError::FROM,
            ::core::concat!(::core::module_path!(), "::", "f"),
            __ctx_err,
        )
    };
            if let ::core::result::Result::Err(__ctx_err) = ::ctx_runtime::__private::Context::check(
                ::ctx_runtime::__private::IsContext::context(&ctx)
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
                        let __ctx_exit = |__ctx_err: ::ctx_runtime::__private::Error| {
            ::ctx_runtime::__private::exit(
                <Result<(), E> as ::ctx_runtime::__private::CancelReturn>::WRAP,
                ::ctx_runtime::__private::FromContextError::FROM,
                ::core::concat!(::core::module_path!(), "::", "f"),
                __ctx_err,
            )
        };
                        let (__ctx_child, __ctx_guard) = ::ctx_runtime::__private::Context::with_timeout(
                            ::ctx_runtime::__private::IsContext::context(&ctx),
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
                            ::ctx_runtime::__private::IsContext::context(&ctx)
                        );
                        let n = 1;
                        async move {
                            let __ctx_exit = |__ctx_err: ::ctx_runtime::__private::Error| {
            ::ctx_runtime::__private::exit(
                <Result<_, E> as ::ctx_runtime::__private::CancelReturn>::WRAP,
                ::ctx_runtime::__private::FromContextError::FROM,
                ::core::concat!(::core::module_path!(), "::", "f"),
                __ctx_err,
            )
        };
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
    let prologue = |name: &str| {
        quote! {
            let __ctx_exit = |__ctx_err: ::ctx_runtime::__private::Error| {
                ::ctx_runtime::__private::exit(
                    <R as ::ctx_runtime::__private::CancelReturn>::WRAP,
                    ::ctx_runtime::__private::FromContextError::FROM,
                    ::core::concat!(::core::module_path!(), "::", #name),
                    __ctx_err,
                )
            };
            if let ::core::result::Result::Err(__ctx_err) = ::ctx_runtime::__private::Context::check(
                ::ctx_runtime::__private::IsContext::context(&ctx)
            ) {
                return __ctx_exit(__ctx_err);
            }
        }
    };
    let (a, d) = (prologue("S::a"), prologue("S::d"));
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
                async fn a(&self, ctx: &Context) -> R { #a Ok(()) }
                async fn b(&self) {}
                fn c(&self) -> u8 { 0 }
                fn d(&self, ctx: &Context) -> R { #d Ok(()) }
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
