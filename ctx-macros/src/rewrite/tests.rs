//! Tests of the rewriter, on syntax trees.

use super::*;
use crate::rewrite::unraced::Reason;
use quote::quote;

/// Rewrites the body of `input` and compares it to `expected`, both
/// printed from syntax trees.
#[track_caller]
fn assert_rewrites(input: TokenStream, expected: TokenStream, awaits: usize) {
    let mut block: Block = syn::parse2(input).expect("a block");
    let (raced, unraced) = rewrite(&mut block);
    assert_eq!(raced, awaits, "number of awaits rewritten");
    assert!(unraced.is_empty(), "{unraced:?}");
    let expected: Block = syn::parse2(expected).expect("the expected block");
    assert_eq!(
        block.into_token_stream().to_string(),
        expected.into_token_stream().to_string()
    );
}

/// Rewrites `block`: how many suspension points were raced, and why each
/// unraced one was not.
fn rewrite(block: &mut Block) -> (usize, Vec<Reason>) {
    let mut errors = Errors::default();
    let rewritten = rewrite_block(block, &mut errors);
    assert!(errors.finish().is_ok());
    let reasons = rewritten.unraced.iter().map(|u| u.reason).collect();
    (rewritten.raced, reasons)
}

/// Rewrites `input`; returns the printed result, the count, the reasons.
fn rewritten(input: TokenStream) -> (String, usize, Vec<Reason>) {
    let mut block: Block = syn::parse2(input).expect("a block");
    let (raced, reasons) = rewrite(&mut block);
    let printed = block.into_token_stream().to_string();
    syn::parse_str::<Block>(&printed).expect("the rewritten block parses");
    (printed, raced, reasons)
}

/// What one rewritten `.await` of `$base` looks like.
macro_rules! raced {
    ($($base:tt)*) => {
        quote! {
            match ::core::future::IntoFuture::into_future($($base)*) {
                __ctx_fut => match ::ctx_runtime::__private::race(&mut __ctx_watch, __ctx_fut).await {
                    ::core::result::Result::Ok(__ctx_value) => __ctx_value,
                    ::core::result::Result::Err(__ctx_err) => return __ctx_exit(__ctx_err),
                },
            }
        }
    };
}

#[test]
fn one_await() {
    let raced = raced!(fetch(url));
    assert_rewrites(
        quote!({
            let x = fetch(url).await;
        }),
        quote!({ let x = #raced; }),
        1,
    );
}

#[test]
fn await_of_await() {
    let inner = raced!(a);
    let outer = raced!(#inner);
    assert_rewrites(quote!({ a.await.await }), quote!({ #outer }), 2);
}

#[test]
fn await_try_method_await_try() {
    let first = raced!(f());
    let second = raced!(#first?.g());
    assert_rewrites(quote!({ f().await?.g().await? }), quote!({ #second? }), 2);
}

#[test]
fn match_scrutinee_and_guard() {
    let scrutinee = raced!(next());
    let guard = raced!(ok(n));
    let arm = raced!(handle(n));
    assert_rewrites(
        quote!({
            match next().await {
                Some(n) if ok(n).await => handle(n).await,
                _ => 0,
            }
        }),
        quote!({
            match #scrutinee {
                Some(n) if #guard => #arm,
                _ => 0,
            }
        }),
        3,
    );
}

#[test]
fn let_else_and_let_chains() {
    let init = raced!(read());
    let diverge = raced!(log());
    let chain = raced!(more());
    assert_rewrites(
        quote!({
            let Some(x) = read().await else {
                log().await;
                return Ok(());
            };
            if let Some(y) = x
                && more().await
            {}
        }),
        quote!({
            let Some(x) = (#init) else { #diverge; return Ok(()); };
            if let Some(y) = x && #chain { }
        }),
        3,
    );
}

#[test]
fn labeled_loops_and_blocks_with_break_value() {
    let in_loop = raced!(rx.recv());
    let in_block = raced!(probe());
    assert_rewrites(
        quote!({
            let n = 'outer: loop {
                while let Some(v) = rx.recv().await {
                    if v > 3 {
                        break 'outer v;
                    }
                }
            };
            let m = 'b: {
                break 'b probe().await;
            };
        }),
        quote!({
            let n = 'outer: loop {
                while let Some(v) = #in_loop {
                    if v > 3 { break 'outer v; }
                }
            };
            let m = 'b: { break 'b #in_block; };
        }),
        2,
    );
}

#[test]
fn closures_async_blocks_and_items_are_left_alone_and_warned() {
    let body = quote!({
        let c = |x| async move { x.await };
        let d = async { slow().await };
        let e = async || slow().await;
        fn nested() -> impl Future<Output = ()> {
            async { slow().await }
        }
        impl Foo {
            async fn bar(&self) {
                slow().await
            }
        }
    });
    let (printed, raced, reasons) = rewritten(body.clone());
    let unchanged: Block = syn::parse2(body).unwrap();
    assert_eq!(printed, unchanged.into_token_stream().to_string());
    assert_eq!(raced, 0);
    // Nested items are other fns: not this one's business.
    assert_eq!(
        reasons,
        [Reason::Closure, Reason::AsyncBlock, Reason::Closure]
    );
}

#[test]
fn blocks_awaited_in_place_or_through_their_binding_are_not_warned() {
    let (_, raced, reasons) = rewritten(quote!({
        ctx.run(async { a().await }).await?;
        timeout(d, async move { b().await }).await;
        let fut = async move { c().await };
        let by_hand = ctx.run(fut).await?;
        // tracing's `#[instrument]` above `#[cancellable]` writes this:
        let __tracing_instrument_future = async move { d().await };
        if !span.is_disabled() {
            Instrument::instrument(__tracing_instrument_future, span).await
        } else {
            __tracing_instrument_future.await
        }
    }));
    assert_eq!(raced, 5);
    assert_eq!(reasons, []);
    // Bound, never awaited: warned.
    let (_, _, reasons) = rewritten(quote!({
        let fut = async { a().await };
        drop(fut);
    }));
    assert_eq!(reasons, [Reason::AsyncBlock]);
}

#[test]
fn spawned_blocks_are_warned_tasks_under_a_context_are_not() {
    let (_, raced, reasons) = rewritten(quote!({
        tokio::spawn(async move { a().await });
        let handle = tokio::task::spawn_local(async { b().await });
        handle.await;
        set.spawn(async { c().await });
        ctx.run(tokio::spawn(async { d().await })).await?;
        ctx_runtime::spawn(&ctx, |ctx| async move { e(&ctx).await });
        group.spawn(|ctx| async move { f(&ctx).await });
    }));
    assert_eq!(raced, 2);
    assert_eq!(reasons, [Reason::Spawned; 4]);
}

#[test]
fn expression_macros_are_rewritten() {
    let a = raced!(a());
    let b = raced!(b());
    let c = raced!(c());
    let d = raced!(d());
    assert_rewrites(
        quote!({
            assert_eq!(a().await, 1, "a");
            println!("{} {x}", b().await, x = c().await);
            let v = vec![d().await];
        }),
        quote!({
            assert_eq!(#a, 1, "a");
            println!("{} {x}", #b, x = #c);
            let v = vec![#d];
        }),
        4,
    );
}

#[test]
fn expression_macros_of_every_form_are_rewritten() {
    let (printed, raced, reasons) = rewritten(quote!({
        let f = std::pin::pin!(c().await);
        vec![e().await; 3];
        matches!(f().await, Some(x) if x > 1);
    }));
    assert_eq!(raced, 3, "{printed}");
    assert_eq!(reasons, []);
}

#[test]
fn macros_it_cannot_read_warn() {
    let (_, raced, reasons) = rewritten(quote!({
        my_dsl! { d().await };
        tracing::info!(target: "x", "{}", a().await);
        let s = stream! { yield b().await; };
        matches!(x, Some(y) if g(y).await);
    }));
    assert_eq!(raced, 0);
    assert_eq!(reasons, [Reason::Macro; 4]);
}

#[test]
fn token_macros_keep_the_awaits_they_quote() {
    // These never evaluate their input: rewriting it would change the data.
    let body = quote!({
        let text = stringify!(fetch().await);
        assert_eq!(stringify!(a.await, b), "a.await, b");
        let tokens = quote::quote!(x.await);
        let spanned = quote_spanned!(span=> x.await);
        let expr: syn::Expr = parse_quote!(x.await);
    });
    assert_rewrites(body.clone(), body, 0);
}

#[test]
fn unchanged_macros_keep_their_tokens() {
    // Not re-printed when nothing changed (the tokens are kept verbatim).
    let mut block: Block = syn::parse2(quote!({
        println!("{}", x);
    }))
    .unwrap();
    assert_eq!(rewrite(&mut block), (0, Vec::new()));
    assert!(
        block
            .into_token_stream()
            .to_string()
            .contains("println ! (\"{}\" , x)")
    );
}

#[test]
fn struct_literal_futures_print_back() {
    let mut block: Block = syn::parse2(quote!({ Fut { inner }.await })).unwrap();
    assert_eq!(rewrite(&mut block), (1, Vec::new()));
    let printed = block.into_token_stream().to_string();
    assert!(
        printed.starts_with(
            "{ match :: core :: future :: IntoFuture :: into_future (Fut { inner }) {"
        ),
        "{printed}"
    );
    syn::parse_str::<Block>(&printed).unwrap();
}

/// Where `needle` is in `printed` (which must contain it).
#[track_caller]
fn at(printed: &str, needle: &str) -> usize {
    printed
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in {printed}"))
}

const WATCH_BRANCH: &str = ":: core :: option :: Option :: Some (__ctx_err) = :: ctx_runtime :: __private :: select_watch (& mut __ctx_watch , & __ctx_select) => { return __ctx_exit (__ctx_err) ; }";

#[test]
fn a_tokio_select_gets_a_watch_branch_last() {
    let (printed, raced, reasons) = rewritten(quote!({
        loop {
            tokio::select! {
                Some(n) = rx.recv(), if open => total += n.await,
                _ = tick.tick() => continue,
                else => break,
            }
        }
    }));
    assert_eq!(raced, 2, "the select and the handler's await");
    assert_eq!(reasons, []);
    assert!(
        printed.contains("let __ctx_select = :: ctx_runtime :: __private :: Select :: new (1u32)"),
        "{printed}"
    );
    assert!(printed.contains("Some (n) = :: ctx_runtime :: __private :: select_branch (& __ctx_select , rx . recv () ,"), "{printed}");
    assert!(
        printed.contains(
            ", if :: ctx_runtime :: __private :: Select :: enable (& __ctx_select , open) =>"
        ),
        "{printed}"
    );
    // Last, before `else`, which is kept.
    assert!(at(&printed, "tick . tick ()") < at(&printed, WATCH_BRANCH));
    assert!(at(&printed, WATCH_BRANCH) < at(&printed, "else => break"));
}

#[test]
fn under_biased_the_watch_comes_first_and_the_futures_are_not_raced() {
    let (printed, raced, reasons) = rewritten(quote!({
        tokio::select! {
            biased;
            v = make().await.recv() => v,
            _ = async { slow().await } => 0,
        }
    }));
    assert_eq!(raced, 1, "the select only");
    assert_eq!(
        reasons,
        [Reason::BiasedSelectFuture],
        "the await of the first future"
    );
    assert!(at(&printed, "biased ;") < at(&printed, WATCH_BRANCH));
    assert!(at(&printed, WATCH_BRANCH) < at(&printed, "make () . await"));
}

#[test]
fn futures_selects_get_a_fused_watch() {
    let (printed, raced, _) = rewritten(quote!({
        futures::select! {
            x = a => x,
            y = b.next() => y,
            complete => 0,
        }
    }));
    assert_eq!(raced, 1);
    assert!(
        printed.contains(
            "x = :: ctx_runtime :: __private :: fused_branch (& __ctx_select , & mut a) => x"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("fused_branch (& __ctx_select , b . next ())"),
        "{printed}"
    );
    let watch = at(
        &printed,
        "__ctx_err = :: ctx_runtime :: __private :: fused_watch (& mut __ctx_watch , & __ctx_select , true)",
    );
    assert!(at(&printed, "b . next ()") < watch && watch < at(&printed, "complete => 0"));

    let (printed, _, _) = rewritten(quote!({
        futures::select_biased! { x = a => x, default => 0 }
    }));
    let watch = at(
        &printed,
        "fused_watch (& mut __ctx_watch , & __ctx_select , false)",
    );
    assert!(
        watch < at(&printed, "x = "),
        "first, and only checking under `default`"
    );
}

#[test]
fn a_bare_select_is_tokio_s_unless_it_has_futures_branches() {
    let (printed, _, _) = rewritten(quote!({
        select! { x = a => x }
    }));
    assert!(printed.contains("select_watch"), "{printed}");
    let (printed, _, _) = rewritten(quote!({
        select! { x = a => x, complete => 0 }
    }));
    assert!(printed.contains("fused_watch"), "{printed}");
}

#[test]
fn selects_it_cannot_race_warn() {
    let (_, raced, reasons) = rewritten(quote!({
        other::select! { x = a => x };
        tokio::select! { this is not a select };
        let f = async {
            tokio::select! { x = a => x }
        };
        let g = || tokio::join!(a, b);
    }));
    assert_eq!(raced, 0);
    assert_eq!(
        reasons,
        [
            Reason::UnknownSelect,
            Reason::UnknownSelect,
            Reason::SelectOrJoin,
            Reason::SelectOrJoin
        ]
    );
}

#[test]
fn a_select_with_too_many_branches_is_an_error() {
    let branches = (0..64).map(|i| {
        let name = quote::format_ident!("b{i}");
        quote!(#name = f() => 0,)
    });
    let mut block: Block = syn::parse2(quote!({
        tokio::select! { #(#branches)* }
    }))
    .unwrap();
    let mut errors = Errors::default();
    rewrite_block(&mut block, &mut errors);
    let err = errors
        .finish()
        .expect_err("64 branches and the watch do not fit");
    assert!(err.to_string().contains("at most 64 branches"), "{err}");
}

#[test]
fn a_join_is_one_raced_await_over_its_evaluated_arguments() {
    let (printed, raced, reasons) = rewritten(quote!({
        let (a, b) = tokio::try_join!(first()?, second().await)?;
    }));
    assert_eq!(raced, 2, "the join and the argument's await");
    assert_eq!(reasons, []);
    let args = at(
        &printed,
        "match (first () ? , match :: core :: future :: IntoFuture :: into_future (second ())",
    );
    let joined = at(
        &printed,
        "async move { tokio :: try_join ! (__ctx_joined0 , __ctx_joined1) }",
    );
    assert!(args < joined, "{printed}");
    assert!(
        printed.contains("(__ctx_joined0 , __ctx_joined1 ,) =>"),
        "{printed}"
    );

    let (printed, raced, _) = rewritten(quote!({ join!(biased; a, b) }));
    assert_eq!(raced, 1);
    assert!(
        printed.contains("join ! (biased ; __ctx_joined0 , __ctx_joined1)"),
        "{printed}"
    );
}

#[test]
fn a_sync_body_is_only_scanned() {
    let mut block: Block = syn::parse2(quote!({
        let fut = async move { a().await };
        tokio::spawn(async { b().await });
        fut
    }))
    .unwrap();
    let before = block.to_token_stream().to_string();
    let unraced = unraced_in_sync(&mut block);
    assert_eq!(block.to_token_stream().to_string(), before);
    let reasons: Vec<Reason> = unraced.iter().map(|u| u.reason).collect();
    assert_eq!(reasons, [Reason::AsyncBlock, Reason::Spawned]);
}

#[test]
fn a_handler_that_starts_with_a_raced_await_stays_one_expression() {
    // `rx.recv().await + 1` becomes `match .. { .. } + 1`, which futures'
    // parser would end after the `match`: it is parenthesized.
    let (printed, raced, _) = rewritten(quote!({
        futures::select! { v = a => rx.recv().await + v, complete => b().await * 2 }
    }));
    assert_eq!(raced, 3);
    assert!(
        printed.contains("=> (match :: core :: future :: IntoFuture :: into_future (rx . recv ())"),
        "{printed}"
    );
    assert!(printed.contains("complete => (match"), "{printed}");
    // A handler that is a `match` or a block needs no parentheses.
    let (printed, _, _) = rewritten(quote!({
        tokio::select! { v = a => b().await, w = c => { d().await } }
    }));
    assert!(!printed.contains("=> (match"), "{printed}");
}
