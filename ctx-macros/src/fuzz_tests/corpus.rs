//! The seed corpus: every fn, impl block and trait of the `.rs` files of
//! `ui-tests/` and `tests/`, read at test time, each with and without its
//! attributes, and as `#[cancellable(...)]` itself would receive it when it
//! carries one.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, ImplItemFn, Item, Meta, TraitItemFn};

use super::oracle::is_cancellable;

/// One seed: the options and the item, as source text (token streams are
/// not `Sync`), and where it comes from.
pub(super) struct Seed {
    pub(super) attr: String,
    pub(super) item: String,
    pub(super) origin: String,
}

/// The seeds, read once per test binary.
pub(super) fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(load)
}

/// The files, in a stable order.
pub(super) fn files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["ui-tests", "tests"] {
        walk(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "target") {
                walk(&path, files);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

fn load() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for path in files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let origin = path
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .unwrap_or(&path)
            .display()
            .to_string();
        let items = match syn::parse_file(&text) {
            Ok(file) => items_of(file),
            // A file with a syntax error (the ui test of one): its fns, cut
            // out at the token level.
            Err(_) => match text.parse::<TokenStream>() {
                Ok(tokens) => cut_fns(tokens),
                Err(_) => Vec::new(),
            },
        };
        for (attr, item) in items {
            let (attr, item) = (attr.to_string(), item.to_string());
            if seen.insert((attr.clone(), item.clone())) {
                seeds.push(Seed {
                    attr,
                    item,
                    origin: origin.clone(),
                });
            }
        }
    }
    seeds
}

/// Every fn, method, impl block and trait of a file, nested ones too.
fn items_of(mut file: syn::File) -> Vec<(TokenStream, TokenStream)> {
    struct Collect(Vec<(TokenStream, TokenStream)>);

    impl Collect {
        fn add(&mut self, attrs: &[Attribute], without_attrs: TokenStream, all: TokenStream) {
            self.0.push((TokenStream::new(), all));
            if attrs.is_empty() {
                return;
            }
            self.0.push((TokenStream::new(), without_attrs.clone()));
            // What `#[cancellable(...)]` receives: its options, and the item
            // with the other attributes.
            if let Some(mark) = attrs.iter().position(is_cancellable) {
                let options = match &attrs[mark].meta {
                    Meta::List(list) => list.tokens.clone(),
                    _ => TokenStream::new(),
                };
                let mut item = TokenStream::new();
                for (i, attr) in attrs.iter().enumerate() {
                    if i != mark {
                        attr.to_tokens(&mut item);
                    }
                }
                item.extend(without_attrs);
                self.0.push((options, item));
            }
        }
    }

    impl VisitMut for Collect {
        fn visit_item_mut(&mut self, item: &mut Item) {
            let attrs = match item {
                Item::Fn(f) => Some(std::mem::take(&mut f.attrs)),
                Item::Impl(b) => Some(std::mem::take(&mut b.attrs)),
                Item::Trait(t) => Some(std::mem::take(&mut t.attrs)),
                _ => None,
            };
            if let Some(attrs) = attrs {
                let bare = item.to_token_stream();
                let mut all = TokenStream::new();
                attrs.iter().for_each(|a| a.to_tokens(&mut all));
                all.extend(bare.clone());
                self.add(&attrs, bare, all);
                match item {
                    Item::Fn(f) => f.attrs = attrs,
                    Item::Impl(b) => b.attrs = attrs,
                    Item::Trait(t) => t.attrs = attrs,
                    _ => {}
                }
            }
            visit_mut::visit_item_mut(self, item);
        }

        fn visit_impl_item_fn_mut(&mut self, method: &mut ImplItemFn) {
            let attrs = std::mem::take(&mut method.attrs);
            let bare = method.to_token_stream();
            let mut all = TokenStream::new();
            attrs.iter().for_each(|a| a.to_tokens(&mut all));
            all.extend(bare.clone());
            self.add(&attrs, bare, all);
            method.attrs = attrs;
            visit_mut::visit_impl_item_fn_mut(self, method);
        }

        fn visit_trait_item_fn_mut(&mut self, method: &mut TraitItemFn) {
            let attrs = std::mem::take(&mut method.attrs);
            let bare = method.to_token_stream();
            let mut all = TokenStream::new();
            attrs.iter().for_each(|a| a.to_tokens(&mut all));
            all.extend(bare.clone());
            self.add(&attrs, bare, all);
            method.attrs = attrs;
            visit_mut::visit_trait_item_fn_mut(self, method);
        }
    }

    let mut collect = Collect(Vec::new());
    collect.visit_file_mut(&mut file);
    collect.0
}

/// The fns of a file that does not parse, from their attributes and
/// qualifiers to their body (or `;`), as token slices.
fn cut_fns(tokens: TokenStream) -> Vec<(TokenStream, TokenStream)> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let word = |tt: &TokenTree, words: &[&str]| matches!(tt, TokenTree::Ident(i) if words.iter().any(|w| i == w));
    let mut out = Vec::new();
    for (at, tt) in tokens.iter().enumerate() {
        if !word(tt, &["fn"]) {
            continue;
        }
        // Back over qualifiers and attributes.
        let mut start = at;
        loop {
            match start.checked_sub(1).map(|i| &tokens[i]) {
                Some(tt) if word(tt, &["pub", "async", "unsafe", "const", "extern"]) => start -= 1,
                Some(TokenTree::Literal(_)) => start -= 1,
                Some(TokenTree::Group(_))
                    if start >= 2
                        && matches!(&tokens[start - 2], TokenTree::Punct(p) if p.as_char() == '#') =>
                {
                    start -= 2;
                }
                _ => break,
            }
        }
        let Some(end) = tokens[at..].iter().position(|tt| match tt {
            TokenTree::Group(g) => g.delimiter() == proc_macro2::Delimiter::Brace,
            TokenTree::Punct(p) => p.as_char() == ';',
            _ => false,
        }) else {
            continue;
        };
        let item: TokenStream = tokens[start..=at + end].iter().cloned().collect();
        out.push((TokenStream::new(), item));
    }
    out
}
