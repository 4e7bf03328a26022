//! A generator of plausible items for `#[cancellable]`: fns with and without
//! `ctx` (first, later, misnamed, as a pattern), receivers, generics and
//! return types of every kind the documentation names, and bodies that nest
//! `if`, `match`, loops, closures, `async` blocks, macros and awaits; impl
//! blocks and traits of such fns; and a few things that are not fns.
//!
//! Items are built as source text (it is what a person writes), biased
//! towards signatures the macro accepts so that most cases reach the
//! rewriter.

use proptest::prelude::*;
use proptest::strategy::Union;

/// One input of the macro: the tokens inside `#[cancellable(...)]` and the item.
#[derive(Clone, Debug)]
pub(super) struct Case {
    pub(super) attr: String,
    pub(super) item: String,
}

/// One of the strings, by weight.
fn pick(choices: &'static [(u32, &'static str)]) -> BoxedStrategy<String> {
    Union::new_weighted(
        choices
            .iter()
            .map(|&(weight, text)| (weight, Just(text.to_owned()).boxed()))
            .collect(),
    )
    .boxed()
}

/// An expression and whether it can take a postfix operator or be an
/// operand as it is (else it is parenthesized first).
type E = (String, bool);

/// As the receiver of `.await`, `?`, a method or an operand.
fn p(e: &E) -> String {
    if e.1 {
        e.0.clone()
    } else {
        format!("({})", e.0)
    }
}

/// As a condition, scrutinee or guard, where a struct literal or block
/// would be read as the body (and `return x { .. }` or `y = ..` would
/// swallow it): parenthesized unless plain.
fn c(e: &E) -> String {
    if e.1 && !e.0.contains('{') {
        e.0.clone()
    } else {
        format!("({})", e.0)
    }
}

fn atom(s: String) -> E {
    (s, true)
}

fn compound(s: String) -> E {
    (s, false)
}

fn leaf() -> BoxedStrategy<E> {
    pick(&[
        (3, "x"),
        (2, "1"),
        (1, "\"s\""),
        (3, "ctx"),
        (1, "self.inner"),
        (3, "fetch(id)"),
        (2, "client.get(ctx, key)"),
        (2, "Ok(())"),
        (1, "Some(1u8)"),
        (2, "rx.recv()"),
        (2, "tokio::time::sleep(d)"),
        (1, "ctx.done()"),
        (1, "std::future::ready(3)"),
        (1, "S { a: 1 }"),
        (1, "[1, 2]"),
        (1, "()"),
        (1, "v"),
        (1, "Self::NAME"),
        (1, "<T as Default>::default()"),
        (1, "r#type"),
        (8, "fetch(id).await"),
        (5, "rx.recv().await"),
        (5, "tokio::time::sleep(d).await"),
        (3, "self.get(ctx, key).await?"),
    ])
    .prop_map(atom)
    .boxed()
}

/// Expressions, nested up to a few levels.
pub(super) fn expr() -> BoxedStrategy<E> {
    leaf()
        .prop_recursive(3, 24, 3, |inner| {
            let two = (inner.clone(), inner.clone());
            let three = (inner.clone(), inner.clone(), inner.clone());
            let block = block_of(inner.clone());
            let block2 = (block_of(inner.clone()), block_of(inner.clone()));
            prop_oneof![
                // Awaits, in every postfix position.
                10 => inner.clone().prop_map(|e| atom(format!("{}.await", p(&e)))),
                2 => inner.clone().prop_map(|e| atom(format!("{}.await?", p(&e)))),
                1 => inner.clone().prop_map(|e| atom(format!("{}.await.await", p(&e)))),
                1 => inner.clone().prop_map(|e| atom(format!("ctx.run({}).await?", e.0))),
                2 => inner.clone().prop_map(|e| atom(format!("{}?", p(&e)))),
                2 => two.clone().prop_map(|(a, b)| atom(format!("{}.call({})", p(&a), b.0))),
                1 => inner.clone().prop_map(|e| atom(format!("{}.field", p(&e)))),
                2 => two.clone().prop_map(|(a, b)| atom(format!("f({}, {})", a.0, b.0))),
                1 => two.clone().prop_map(|(a, b)| atom(format!("{}[{}]", p(&a), b.0))),
                1 => two.clone().prop_map(|(a, b)| atom(format!("({}, {})", a.0, b.0))),
                1 => inner.clone().prop_map(|e| atom(format!("({})", e.0))),
                1 => inner.clone().prop_map(|e| atom(format!("{}(1)", p(&e)))),
                1 => two.clone().prop_map(|(a, b)| compound(format!("{}..{}", p(&a), p(&b)))),
                1 => inner.clone().prop_map(|e| compound(format!("*{}", p(&e)))),
                1 => inner.clone().prop_map(|e| compound(format!("&mut {}", p(&e)))),
                1 => inner.clone().prop_map(|e| compound(format!("-{} as i64 + 1", p(&e)))),
                // Operators.
                2 => two.clone().prop_map(|(a, b)| compound(format!("{} + {}", p(&a), p(&b)))),
                1 => two.clone().prop_map(|(a, b)| compound(format!("{} == {}", p(&a), p(&b)))),
                1 => two.clone().prop_map(|(a, b)| compound(format!("{} && {}", p(&a), p(&b)))),
                1 => inner.clone().prop_map(|e| compound(format!("!{}", p(&e)))),
                1 => inner.clone().prop_map(|e| compound(format!("&{}", p(&e)))),
                1 => inner.clone().prop_map(|e| compound(format!("{} as u32", p(&e)))),
                1 => inner.clone().prop_map(|e| compound(format!("return {}", e.0))),
                1 => inner.clone().prop_map(|e| compound(format!("break {}", e.0))),
                1 => inner.clone().prop_map(|e| compound(format!("y = {}", e.0))),
                // Control flow.
                2 => (inner.clone(), block2.clone()).prop_map(|(e, (a, b))| {
                    compound(format!("if {} {a} else {b}", c(&e)))
                }),
                1 => (two.clone(), block.clone()).prop_map(|((a, b), k)| {
                    compound(format!("if let Some(v) = {} && {} {k}", c(&a), c(&b)))
                }),
                2 => (three.clone(), inner.clone()).prop_map(|((a, b, d), e)| {
                    compound(format!(
                        "match {} {{ Some(v) if {} => {}, None => {{ {} }} _ => 0 }}",
                        c(&a), c(&b), d.0, e.0
                    ))
                }),
                1 => (block.clone(), inner.clone())
                    .prop_map(|(k, e)| compound(format!("loop {{ {k} break {}; }}", e.0))),
                1 => (inner.clone(), block.clone())
                    .prop_map(|(e, k)| compound(format!("while let Some(v) = {} {k}", c(&e)))),
                1 => (inner.clone(), block.clone())
                    .prop_map(|(e, k)| compound(format!("while {} {k}", c(&e)))),
                1 => (inner.clone(), block.clone())
                    .prop_map(|(e, k)| compound(format!("for v in {} {k}", c(&e)))),
                1 => inner.clone().prop_map(|e| compound(format!("'b: {{ break 'b {}; }}", e.0))),
                1 => block.clone().prop_map(|k| compound(format!("unsafe {k}"))),
                1 => block.clone().prop_map(compound),
                // Closures and async blocks (left alone by the rewriter).
                2 => inner.clone().prop_map(|e| compound(format!("|v| {}", e.0))),
                1 => block.clone().prop_map(|k| compound(format!("|| async move {k}"))),
                1 => block.clone().prop_map(|k| compound(format!("move |v: u32| -> u32 {k}"))),
                2 => block.clone().prop_map(|k| compound(format!("async move {k}"))),
                1 => block.clone().prop_map(|k| compound(format!("async {k}"))),
                1 => inner.clone().prop_map(|e| compound(format!("async || {}", e.0))),
                1 => inner.clone().prop_map(|e| compound(format!("async move |v| {}", e.0))),
                1 => block.clone().prop_map(|k| atom(format!("Box::pin(async move {k})"))),
                // Macros: expression lists (rewritten) and the rest (left alone).
                1 => inner.clone().prop_map(|e| atom(format!("println!(\"{{}}\", {})", e.0))),
                1 => two.clone().prop_map(|(a, b)| atom(format!("assert_eq!({}, {}, \"why\")", a.0, b.0))),
                1 => two.clone().prop_map(|(a, b)| atom(format!("assert!({}, \"{{}}\", {})", a.0, b.0))),
                1 => two.clone().prop_map(|(a, b)| atom(format!("vec![{}, {}]", a.0, b.0))),
                1 => inner.clone().prop_map(|e| atom(format!("format!(\"{{x}}\", x = {})", e.0))),
                1 => inner.clone().prop_map(|e| atom(format!("dbg!({})", e.0))),
                1 => inner.clone().prop_map(|e| atom(format!("stringify!({})", e.0))),
                1 => inner.clone().prop_map(|e| atom(format!("write!(out, \"{{}}\", {})", e.0))),
                1 => two.clone().prop_map(|(a, b)| atom(format!(
                    "tokio::select! {{ v = {} => v, _ = ctx.done() => {} }}", a.0, b.0
                ))),
                1 => two.clone().prop_map(|(a, b)| atom(format!("tokio::join!({}, {})", a.0, b.0))),
                // The selects and joins `#[cancellable]` races, in every form.
                1 => (three.clone(), inner.clone()).prop_map(|((a, b, d), e)| atom(format!(
                    "tokio::select! {{ biased; Some(v) = {} => {}, _ = {}, if {} => {{ {} }} else => 0 }}",
                    a.0, b.0, d.0, c(&e), e.0
                ))),
                1 => two.clone().prop_map(|(a, b)| atom(format!(
                    "select! {{ v = {} => {{ continue }} w = {}, if ok => break, }}", a.0, b.0
                ))),
                1 => two.clone().prop_map(|(a, b)| atom(format!(
                    "futures::select! {{ v = fut => v, w = {} => {}, complete => 0 }}", a.0, b.0
                ))),
                1 => two.clone().prop_map(|(a, b)| atom(format!(
                    "futures::select_biased! {{ v = {} => v, default => {} }}", a.0, b.0
                ))),
                1 => three.clone().prop_map(|(a, b, d)| atom(format!(
                    "tokio::try_join!({}?, {}, {})?", p(&a), b.0, d.0
                ))),
                1 => two.clone().prop_map(|(a, b)| atom(format!("futures::join!({}, {})", a.0, b.0))),
                1 => block.clone().prop_map(|k| atom(format!("tokio::spawn(async move {k})"))),
                1 => block.clone().prop_map(|k| atom(format!("ctx_runtime::spawn(&ctx, |ctx| async move {k})"))),
                1 => block.clone().prop_map(|k| atom(format!("ctx.run(async {k}).await?"))),
                1 => inner.clone().prop_map(|e| atom(format!("std::pin::pin!({})", e.0))),
                1 => inner.clone().prop_map(|e| atom(format!("matches!({}, Some(_))", e.0))),
                1 => inner.clone().prop_map(|e| atom(format!("my_dsl! {{ {} }}", e.0))),
                1 => inner.clone().prop_map(|e| atom(format!("vec![{}; 3]", e.0))),
                1 => Just(atom("todo!()".to_owned())),
            ]
        })
        .boxed()
}

/// A statement.
fn stmt(inner: BoxedStrategy<E>) -> BoxedStrategy<String> {
    let two = (inner.clone(), inner.clone());
    prop_oneof![
        4 => inner.clone().prop_map(|e| format!("let v = {};", e.0)),
        1 => inner.clone().prop_map(|e| format!("let mut w: u32 = {};", e.0)),
        2 => two.prop_map(|(a, b)| {
            let init = if a.0.ends_with('}') { format!("({})", a.0) } else { a.0 };
            format!("let Some(v) = {init} else {{ return Err({}.into()); }};", p(&b))
        }),
        4 => inner.clone().prop_map(|e| format!("{};", e.0)),
        1 => inner.clone().prop_map(|e| format!("#[allow(unused)] let z = {};", e.0)),
        1 => inner.clone().prop_map(|e| format!("fn nested() -> u32 {{ {} }}", e.0)),
        1 => inner.clone().prop_map(|e| format!("async fn inner() -> u32 {{ {} }}", e.0)),
        1 => inner.clone().prop_map(|e| format!(
            "impl Local {{ async fn m(&self, ctx: &Context) -> R {{ {} }} }}", e.0
        )),
        1 => Just("struct Local;".to_owned()),
        1 => inner.clone().prop_map(|e| format!("let c = || {};", e.0)),
        // A block bound and awaited (raced as a whole), or not.
        1 => inner.clone().prop_map(|e| format!("let fut = async move {{ {} }}; fut.await;", e.0)),
        1 => inner.clone().prop_map(|e| format!("let fut = async move {{ {} }}; drop(fut);", e.0)),
        // The footguns, which are errors.
        1 => Just("let (child, _) = ctx.with_cancel();".to_owned()),
        1 => Just("let (child, _cancel) = ctx.with_timeout(d);".to_owned()),
        1 => Just("let root = Context::background();".to_owned()),
    ]
    .boxed()
}

/// `{ statements tail }`.
fn block_of(inner: BoxedStrategy<E>) -> BoxedStrategy<String> {
    (
        prop::collection::vec(stmt(inner.clone()), 0..3),
        prop::option::weighted(0.6, inner),
    )
        .prop_map(|(stmts, tail)| {
            let tail = tail.map(|e| e.0).unwrap_or_default();
            format!("{{ {} {tail} }}", stmts.join(" "))
        })
        .boxed()
}

fn outer_attrs() -> BoxedStrategy<String> {
    prop::collection::vec(
        pick(&[
            (3, "#[inline]"),
            (2, "#[allow(dead_code)]"),
            (2, "/// Does the thing.\n"),
            (1, "#[doc = \"x\"]"),
            (1, "#[must_use]"),
            (1, "#[cfg(test)]"),
            (1, "#[tracing::instrument(skip(ctx))]"),
            (1, "#[cancellable]"),
            (1, "#[cancellable(timeout = \"1s\")]"),
            (1, "#[ctx_runtime::cancellable]"),
        ]),
        0..2,
    )
    .prop_map(|attrs| attrs.join(" "))
    .boxed()
}

/// The parameters: an optional receiver, `ctx` somewhere (or not), others.
fn params(receiver_weight: u32) -> BoxedStrategy<String> {
    let receiver = Union::new_weighted(vec![
        (10, Just(String::new()).boxed()),
        (
            receiver_weight,
            pick(&[
                (4, "&self"),
                (1, "self"),
                (1, "&mut self"),
                (1, "mut self"),
                (1, "self: Arc<Self>"),
                (1, "self: Pin<&mut Self>"),
                (1, "&'a self"),
            ]),
        ),
    ]);
    let ctx_pat = pick(&[
        (40, "ctx"),
        (8, "mut ctx"),
        (1, "_ctx"),
        (1, "context"),
        (1, "ref ctx"),
        (1, "cx"),
        (1, "(ctx, _)"),
        (1, "_"),
        (1, "ctx @ _"),
    ]);
    let ctx_ty = pick(&[
        (24, "&Context"),
        (6, "Context"),
        (4, "Arc<Context>"),
        (1, "&'a Context"),
        (4, "impl AsContext"),
        (1, "&impl AsContext"),
        (1, "ctx_runtime::Context"),
        (1, "&mut Context"),
        (1, "(&Context)"),
        (1, "(&mut Context)"),
        (1, "Box<dyn AsContext + Send>"),
        (1, "MyRequest"),
    ]);
    let others = prop::collection::vec(
        pick(&[
            (3, "x: u32"),
            (2, "id: &str"),
            (1, "mut buf: Vec<u8>"),
            (1, "f: impl Fn(u32) -> u32"),
            (1, "(a, b): (u8, u8)"),
            (1, "rx: mpsc::Receiver<T>"),
            (1, "_: ()"),
            (1, "ctx: &Context"),
        ]),
        0..3,
    );
    let place = Union::new_weighted(vec![(16, Just(0usize)), (1, Just(1)), (1, Just(2))]);
    (
        receiver,
        prop::option::weighted(0.95, (ctx_pat, ctx_ty)),
        place,
        others,
        any::<bool>(),
    )
        .prop_map(|(receiver, ctx, place, mut list, trailing)| {
            if let Some((pat, ty)) = ctx {
                let at = place.min(list.len());
                list.insert(at, format!("{pat}: {ty}"));
            }
            if !receiver.is_empty() {
                list.insert(0, receiver);
            }
            let comma = if trailing && !list.is_empty() {
                ","
            } else {
                ""
            };
            format!("{}{comma}", list.join(", "))
        })
        .boxed()
}

fn return_type() -> BoxedStrategy<String> {
    pick(&[
        (20, "-> Result<(), Error>"),
        (10, "-> Result<u32, E>"),
        (4, "-> io::Result<()>"),
        (4, "-> anyhow::Result<Vec<u8>>"),
        (4, "-> Result<impl Display, Error>"),
        (
            1,
            "-> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>>",
        ),
        (1, "-> Result<T, <T as Tr>::Error>"),
        (1, "-> R"),
        (1, "-> u32"),
        (1, "-> Option<u32>"),
        (1, "-> Self"),
        (3, ""),
        (1, "-> ()"),
        (1, "-> (())"),
        (1, "-> !"),
        (1, "-> impl Future<Output = Result<u32, Error>>"),
    ])
}

fn generics() -> BoxedStrategy<(String, String)> {
    Union::new_weighted(vec![
        (12, Just((String::new(), String::new())).boxed()),
        (
            2,
            Just(("<T>".into(), " where T: Send + 'static".into())).boxed(),
        ),
        (
            1,
            Just(("<'a, T: Clone + Send>".into(), String::new())).boxed(),
        ),
        (1, Just(("<const N: usize>".into(), String::new())).boxed()),
        (
            1,
            Just(("<T, U>".into(), " where T: Into<U>, U: Send,".into())).boxed(),
        ),
        (1, Just(("<'async_trait>".into(), String::new())).boxed()),
    ])
    .boxed()
}

/// A fn, async or not (or `-> impl Future` ending in an `async` block).
pub(super) fn function(receiver_weight: u32) -> BoxedStrategy<String> {
    let qualifiers = pick(&[
        (24, "async "),
        (5, ""),
        (1, "const "),
        (1, "async unsafe "),
        (1, "unsafe "),
        (1, "async extern \"C\" "),
    ]);
    let name = pick(&[(3, "fetch"), (1, "get_quickly"), (1, "r#match"), (1, "run")]);
    let vis = pick(&[(4, ""), (2, "pub "), (1, "pub(crate) "), (1, "pub(super) ")]);
    let e = expr();
    // Inner attributes go before the prologue, which goes before the statements.
    let plain = (
        qualifiers,
        return_type(),
        block_of(e.clone()),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(quals, ret, body, inner_attr)| {
            let body = if inner_attr {
                body.replacen('{', "{ #![allow(unused_variables)]", 1)
            } else {
                body
            };
            (quals, ret, body)
        });
    let impl_future = (
        block_of(e.clone()),
        prop::collection::vec(stmt(e), 0..2),
        prop::bool::weighted(0.85),
    )
        .prop_map(|(inner, stmts, tail)| {
            let ret = "-> impl Future<Output = Result<u32, Error>> + Send + '_".to_owned();
            let tail = if tail {
                format!("async move {inner}")
            } else {
                inner
            };
            (
                String::new(),
                ret,
                format!("{{ {} {tail} }}", stmts.join(" ")),
            )
        });
    let shape = prop_oneof![6 => plain, 1 => impl_future];
    (
        outer_attrs(),
        vis,
        shape,
        name,
        generics(),
        params(receiver_weight),
    )
        .prop_map(
            |(attrs, vis, (quals, ret, body), name, (generic, wh), params)| {
                format!("{attrs} {vis}{quals}fn {name}{generic}({params}) {ret}{wh} {body}")
            },
        )
        .boxed()
}

/// A method of a block, with the inner attributes a block's methods can have.
fn method() -> BoxedStrategy<String> {
    let inner = pick(&[
        (8, ""),
        (2, "#[cancellable(skip)]"),
        (2, "#[cancellable(timeout = \"250ms\")]"),
        (1, "#[cancellable]"),
        (1, "#[ctx_runtime::cancellable]"),
        (1, "#[cancellable(bogus)]"),
        (1, "#[cancellable(skip)] #[cancellable]"),
    ]);
    let member = prop_oneof![
        8 => function(8),
        1 => Just("const C: u8 = 1;".to_owned()),
        1 => Just("type Out = u8;".to_owned()),
        1 => Just("fn helper(&self) -> u8 { 0 }".to_owned()),
    ];
    (inner, member)
        .prop_map(|(inner, member)| format!("{inner} {member}"))
        .boxed()
}

fn impl_block() -> BoxedStrategy<String> {
    let header = pick(&[
        (3, "impl Client"),
        (2, "impl<T: Send> Service for Handler<T>"),
        (1, "unsafe impl Tr for S"),
    ]);
    (header, prop::collection::vec(method(), 0..4))
        .prop_map(|(header, methods)| format!("{header} {{ {} }}", methods.join(" ")))
        .boxed()
}

fn trait_block() -> BoxedStrategy<String> {
    let declaration =
        (params(8), return_type(), any::<bool>()).prop_map(|(params, ret, is_async)| {
            let asyncness = if is_async { "async " } else { "" };
            format!("{asyncness}fn declared({params}) {ret};")
        });
    let member = prop_oneof![3 => method(), 2 => declaration];
    (
        pick(&[(3, "trait Api"), (1, "pub trait Api: Send + Sync")]),
        prop::collection::vec(member, 0..4),
    )
        .prop_map(|(header, members)| format!("{header} {{ {} }}", members.join(" ")))
        .boxed()
}

/// Anything the attribute may be put on.
pub(super) fn item() -> BoxedStrategy<String> {
    let declaration = (params(1), return_type())
        .prop_map(|(params, ret)| format!("async fn declared({params}) {ret};"));
    prop_oneof![
        14 => function(1),
        3 => impl_block(),
        2 => trait_block(),
        1 => declaration,
        1 => pick(&[
            (1, "struct S;"),
            (1, "const X: u8 = 1;"),
            (1, "|ctx| async move { ctx.done().await }"),
            (1, "async { 1 }"),
            (1, "x + 1"),
            (1, "mod m {}"),
            (1, "use a::b;"),
            (1, "macro_rules! m { () => {} }"),
            (1, "m!();"),
            (1, "extern \"C\" { fn f(ctx: &Context) -> R; }"),
        ]),
    ]
    .boxed()
}

/// The options of the attribute: mostly valid, sometimes not.
pub(super) fn attr() -> BoxedStrategy<String> {
    pick(&[
        (40, ""),
        (8, "timeout = \"1.5s\""),
        (1, "timeout = \"250ms\""),
        (1, "timeout = \"1m30s\""),
        (1, "skip"),
        (1, "timeout"),
        (1, "timeout = 5"),
        (1, "bogus"),
        (1, "timeout = \"1s\", timeout = \"2s\""),
        (1, "= \"1s\""),
        (1, "timeout = \"99999999999999999999999h\""),
        (1, "timeout = \"5 s\","),
        (4, "allow_unraced"),
        (1, "allow_unraced, timeout = \"1s\""),
        (1, "allow_unraced = true"),
    ])
}

pub(super) fn case() -> BoxedStrategy<Case> {
    (attr(), item())
        .prop_map(|(attr, item)| Case { attr, item })
        .boxed()
}
