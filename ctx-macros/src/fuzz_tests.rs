//! Property tests of the expansion (`emit::expand`, on `proc_macro2`
//! streams) over generated, mutated and real items.
//!
//! Inputs:
//! * the seed corpus: every fn, impl block and trait in the `.rs` files of
//!   `ui-tests/` and `tests/` (read at test time), with and without their
//!   attributes (`corpus.rs`);
//! * generated items: plausible fns, impl blocks and traits (`generate.rs`);
//! * mutated items: seeds and generated items with tokens deleted,
//!   duplicated, swapped, renamed, `.await`s inserted, groups emptied or
//!   re-delimited and pieces of another input spliced in (`mutate.rs`).
//!
//! Every input is checked as it is and with its `.await`s removed. The
//! properties (`check`):
//! 1. `expand` never panics.
//! 2. Its output is one of
//!    * an expansion: it parses as a file (from the tokens, and from their
//!      printed text to the same tree), and it is exactly what the
//!      documentation says (`oracle::check_expansion`): each fn starts with
//!      as many warnings as the documented rules leave awaits unraced (none
//!      under `allow_unraced`), then the documented prologue; with those
//!      removed and each raced await, `select!` and `join!` turned back into
//!      what was written, the item is the item as written, once both are
//!      printed the same way; and as many suspension points were raced as
//!      the rules say;
//!    * `compile_error!`s, then `#[allow(unused_variables)]` and the item
//!      (a block: minus its methods' `#[cancellable]` attributes), whose
//!      fns may start with the documented type checks of the parts of their
//!      signature that are right, and no other change
//!      (`oracle::check_rejected`); it parses as a file;
//!    * for an input that is not an item: `compile_error!`s then the input
//!      token for token, or `{ compile_error!(..); <input> }` for an
//!      expression.
//! 3. It is an expansion exactly when the documented rules accept the item
//!    (`oracle::accepted`: the options, the signature, the shape, and no
//!    footgun in a body).
//!
//! So every input without a suspension point and with a valid signature round-trips:
//! the expansion is the item with only the prologue (the entry check, and
//! the child of a `timeout`) added in front of its statements.
//!
//! `CTX_FUZZ_CASES` sets the number of generated and mutated cases of each
//! test (default below); `CTX_FUZZ_SEED` the seed (a number, or `random`;
//! fixed by default so that CI is reproducible). Each test prints what its
//! inputs came to (`--nocapture`): expanded, round trips, awaits raced,
//! rejected, not items.

mod corpus;
mod generate;
mod mutate;
mod oracle;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use quote::{ToTokens, quote};

use crate::emit::expand;

/// Cases of each proptest test when `CTX_FUZZ_CASES` is not set: about 5 s
/// per test in a debug build (RELIABILITY.md has the figures of a 50x run).
const DEFAULT_CASES: u32 = 600;

/// What the cases were, to show the tests reach every path.
#[derive(Default, Debug)]
struct Stats {
    inputs: usize,
    expanded: usize,
    /// Expansions of inputs without `.await`: the round trips.
    round_trips: usize,
    /// Awaits raced in the expansions.
    raced: usize,
    rejected: usize,
    not_items: usize,
}

/// Parses the output, and checks that its printed text reads back as the
/// same tree (the printer must add the parentheses a rewritten `match`
/// needs). Not when the output has invisible groups (from the input: what a
/// `macro_rules!` passes on), whose text is not what the compiler reads.
fn parse_file(tokens: &TokenStream) -> Result<syn::File, String> {
    let file: syn::File =
        syn::parse2(tokens.clone()).map_err(|err| format!("the output does not parse: {err}"))?;
    if has_invisible_group(tokens.clone()) {
        return Ok(file);
    }
    let text = tokens.to_string();
    let reread: syn::File =
        syn::parse_str(&text).map_err(|err| format!("the printed output does not parse: {err}"))?;
    if reread.to_token_stream().to_string() != file.to_token_stream().to_string() {
        return Err("the printed output reads back as a different tree".into());
    }
    Ok(file)
}

fn has_invisible_group(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Group(group) => {
            group.delimiter() == Delimiter::None || has_invisible_group(group.stream())
        }
        _ => false,
    })
}

fn same(tokens: &[TokenTree], expected: TokenStream) -> bool {
    tokens.iter().cloned().collect::<TokenStream>().to_string() == expected.to_string()
}

fn has_await(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => ident == "await",
        TokenTree::Group(group) => has_await(group.stream()),
        _ => false,
    })
}

/// Expands `#[cancellable(attr)] item` and checks every property.
fn check_one(attr: &TokenStream, item: &TokenStream, stats: &mut Stats) -> Result<(), String> {
    stats.inputs += 1;
    let out =
        catch_unwind(AssertUnwindSafe(|| expand(attr.clone(), item.clone()))).map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("expand panicked: {message}")
        })?;
    let tokens: Vec<TokenTree> = out.clone().into_iter().collect();

    let Ok(parsed) = syn::parse2::<syn::Item>(item.clone()) else {
        stats.not_items += 1;
        if syn::parse2::<syn::Expr>(item.clone()).is_ok() {
            // `{ compile_error!{..}; <expression> }`, where the expression was.
            let [TokenTree::Group(block)] = tokens.as_slice() else {
                return Err("an expression input did not give one block".into());
            };
            let inner: Vec<TokenTree> = block.stream().into_iter().collect();
            let (_, rest) = oracle::split_errors(&inner).ok_or("no compile_error! in the block")?;
            let semi = matches!(rest.first(), Some(TokenTree::Punct(p)) if p.as_char() == ';');
            if block.delimiter() != Delimiter::Brace || !semi || !same(&rest[1..], item.clone()) {
                return Err("the block is not `{ compile_error!; <input> }`".into());
            }
            // (syn reads an empty invisible group at the end of an
            // expression, but not of a block's last statement.)
            if !has_invisible_group(item.clone()) {
                syn::parse2::<syn::Expr>(out)
                    .map_err(|err| format!("the block does not parse: {err}"))?;
            }
        } else {
            let (_, rest) = oracle::split_errors(&tokens)
                .ok_or("an unparsable input gave no compile_error!")?;
            if !same(rest, item.clone()) {
                return Err("an unparsable input was not kept token for token".into());
            }
        }
        return Ok(());
    };

    let file = parse_file(&out)?;
    let accepted = oracle::accepted(attr, &parsed);
    match oracle::split_errors(&tokens) {
        Some((_, rest)) => {
            stats.rejected += 1;
            if accepted {
                return Err("rejected an item the documented rules accept".into());
            }
            oracle::check_rejected(attr, &parsed, item, rest)?;
            debug_assert!(!file.items.is_empty());
        }
        None => {
            stats.expanded += 1;
            if !accepted {
                return Err("expanded an item the documented rules reject".into());
            }
            oracle::check_expansion(attr, &parsed, &file)?;
            stats.raced += out.to_string().matches("IntoFuture :: into_future").count();
            if !has_await(item.clone()) {
                stats.round_trips += 1;
            }
        }
    }
    Ok(())
}

/// Checks an input as it is and without its awaits; the error names the input.
fn check(attr: &TokenStream, item: &TokenStream, stats: &mut Stats) -> Result<(), String> {
    let without = mutate::strip_awaits(item.clone());
    for item in [item.clone(), without] {
        check_one(attr, &item, stats)
            .map_err(|why| format!("{why}\n  attr: {attr}\n  item: {item}"))?;
    }
    Ok(())
}

fn tokens(text: &str) -> TokenStream {
    text.parse().unwrap_or_default()
}

fn cases() -> u32 {
    std::env::var("CTX_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn runner() -> TestRunner {
    let rng_seed = match std::env::var("CTX_FUZZ_SEED").as_deref() {
        Ok("random") => RngSeed::Random,
        Ok(n) => n.parse().map_or(RngSeed::Fixed(7), RngSeed::Fixed),
        Err(_) => RngSeed::Fixed(7),
    };
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        rng_seed,
        ..Config::default()
    })
}

fn report(name: &str, stats: &Stats) {
    eprintln!("{name}: {stats:?}");
}

#[test]
fn seeds_expand_as_documented() {
    let seeds = corpus::seeds();
    let files = corpus::files().len();
    assert!(files >= 30, "only {files} seed files: wrong directory?");
    assert!(seeds.len() >= 300, "only {} seeds", seeds.len());
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for seed in seeds {
        let (attr, item) = (tokens(&seed.attr), tokens(&seed.item));
        // As written, and with the options most items are used with.
        for attr in [attr, quote!(), quote!(timeout = "1.5s")] {
            if let Err(why) = check(&attr, &item, &mut stats) {
                failures.push(format!("{}: {why}", seed.origin));
            }
        }
    }
    report("seeds", &stats);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(stats.expanded > 100 && stats.round_trips > 50 && stats.raced > 100);
}

#[test]
fn generated_items_expand_as_documented() {
    let stats = RefCell::new(Stats::default());
    let result = runner().run(&generate::case(), |case| {
        let (attr, item) = (tokens(&case.attr), tokens(&case.item));
        check(&attr, &item, &mut stats.borrow_mut()).map_err(TestCaseError::fail)
    });
    let stats = stats.into_inner();
    report("generated", &stats);
    if let Err(err) = result {
        panic!("{err}");
    }
    // Most generated items are accepted, and reach the rewriter.
    assert!(stats.expanded * 3 > stats.inputs, "{stats:?}");
    assert!(stats.round_trips * 6 > stats.inputs, "{stats:?}");
    assert!(stats.raced * 8 > stats.inputs, "{stats:?}");
}

#[test]
fn mutated_items_never_panic_and_keep_the_item() {
    let seeds = corpus::seeds();
    // A base and a donor: a seed (by index) or a generated item.
    let input = || {
        prop_oneof![
            any::<prop::sample::Index>().prop_map(move |i| {
                let seed = &seeds[i.index(seeds.len())];
                (seed.attr.clone(), seed.item.clone())
            }),
            generate::case().prop_map(|case| (case.attr, case.item)),
        ]
    };
    let strategy = (
        input(),
        input(),
        prop::collection::vec(mutate::op(), 1..4),
        prop::collection::vec(mutate::op(), 0..2),
    );
    let stats = RefCell::new(Stats::default());
    let result = runner().run(&strategy, |((attr, item), (_, donor), ops, attr_ops)| {
        let item = mutate::mutate(tokens(&item), tokens(&donor), &ops);
        let attr = mutate::mutate(tokens(&attr), tokens(&donor), &attr_ops);
        check(&attr, &item, &mut stats.borrow_mut()).map_err(TestCaseError::fail)
    });
    let stats = stats.into_inner();
    report("mutated", &stats);
    if let Err(err) = result {
        panic!("{err}");
    }
    assert!(
        stats.expanded > 0 && stats.rejected > 0 && stats.not_items > 0,
        "{stats:?}"
    );
}

/// Prints a sample of generated items and how they fare, to tune the
/// generator: `cargo test -p ctx-macros -- dump_generated --ignored --nocapture`.
#[test]
#[ignore]
fn dump_generated() {
    use proptest::strategy::ValueTree;
    let mut runner = runner();
    let strategy = generate::case();
    for _ in 0..300 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let (attr, item) = (tokens(&case.attr), tokens(&case.item));
        let status = match syn::parse2::<syn::Item>(item.clone()) {
            Err(err) => format!("NOPARSE {err}"),
            Ok(parsed) => format!(
                "accepted={} awaits={} raced={}",
                oracle::accepted(&attr, &parsed),
                case.item.matches(".await").count(),
                expand(attr.clone(), item.clone())
                    .to_string()
                    .matches("IntoFuture :: into_future")
                    .count()
            ),
        };
        println!("{status}\n   #[cancellable({})] {}", case.attr, case.item);
    }
}
