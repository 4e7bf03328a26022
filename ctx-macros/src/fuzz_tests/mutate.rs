//! A token-level mutator: deletes, duplicates and swaps tokens, inserts
//! `.await`, renames identifiers, empties or re-delimits groups, and splices
//! in pieces of another input. Positions are indices into the pre-order list
//! of all token trees (inside groups too), taken modulo its length, so that
//! proptest can draw and shrink them as plain numbers.

use proc_macro2::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use proptest::prelude::*;

/// What the renaming draws from: the names and keywords the macro looks at.
const NAMES: [&str; 24] = [
    "ctx",
    "_ctx",
    "context",
    "self",
    "Self",
    "async",
    "await",
    "fn",
    "impl",
    "trait",
    "const",
    "mut",
    "ref",
    "Result",
    "Future",
    "Output",
    "Context",
    "cancellable",
    "skip",
    "timeout",
    "__ctx_watch",
    "__ctx_exit",
    "async_trait",
    "move",
];

#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    Delete(usize),
    Duplicate(usize),
    SwapWithNext(usize),
    InsertAwait(usize),
    Rename(usize, usize),
    Empty(usize),
    Redelimit(usize, usize),
    /// Inserts the `.1`th tree of the donor after the `.0`th.
    Splice(usize, usize),
}

pub(super) fn op() -> BoxedStrategy<Op> {
    let at = any::<usize>();
    prop_oneof![
        3 => at.prop_map(Op::Delete),
        2 => at.prop_map(Op::Duplicate),
        2 => at.prop_map(Op::SwapWithNext),
        3 => at.prop_map(Op::InsertAwait),
        3 => (at, 0..NAMES.len()).prop_map(|(a, b)| Op::Rename(a, b)),
        2 => at.prop_map(Op::Empty),
        1 => (at, 0..4usize).prop_map(|(a, b)| Op::Redelimit(a, b)),
        3 => (at, any::<usize>()).prop_map(|(a, b)| Op::Splice(a, b)),
    ]
    .boxed()
}

/// A token tree whose groups are open for editing.
#[derive(Clone)]
enum Node {
    Leaf(TokenTree),
    Group(Delimiter, Vec<Node>),
}

fn nodes(stream: TokenStream) -> Vec<Node> {
    stream
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(group) => Node::Group(group.delimiter(), nodes(group.stream())),
            leaf => Node::Leaf(leaf),
        })
        .collect()
}

fn stream(nodes: &[Node]) -> TokenStream {
    nodes
        .iter()
        .map(|node| match node {
            Node::Leaf(tt) => tt.clone(),
            Node::Group(delimiter, inner) => {
                TokenTree::Group(Group::new(*delimiter, stream(inner)))
            }
        })
        .collect()
}

fn count(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|node| match node {
            Node::Leaf(_) => 1,
            Node::Group(_, inner) => 1 + count(inner),
        })
        .sum()
}

/// The list holding the `at`th node in pre-order, and its index there.
fn locate(list: &mut Vec<Node>, mut at: usize) -> Result<(&mut Vec<Node>, usize), usize> {
    // Found in this list or one of its groups, or the number of nodes passed.
    let mut passed = 0;
    for i in 0..list.len() {
        if at == 0 {
            return Ok((list, i));
        }
        at -= 1;
        passed += 1;
        if let Node::Group(_, inner) = &list[i] {
            let size = count(inner);
            if at < size {
                let Node::Group(_, inner) = &mut list[i] else {
                    unreachable!()
                };
                return locate(inner, at);
            }
            at -= size;
            passed += size;
        }
    }
    Err(passed)
}

fn nth(list: &[Node], at: usize) -> Option<Node> {
    let mut list = list.to_vec();
    let (found, i) = locate(&mut list, at).ok()?;
    Some(found[i].clone())
}

fn dot_await() -> [Node; 2] {
    [
        Node::Leaf(TokenTree::Punct(Punct::new('.', Spacing::Alone))),
        Node::Leaf(TokenTree::Ident(Ident::new("await", Span::call_site()))),
    ]
}

fn apply(tree: &mut Vec<Node>, op: Op, donor: &[Node]) {
    let total = count(tree);
    if total == 0 {
        if let Op::Splice(_, from) = op
            && let Some(piece) = nth(donor, from % count(donor).max(1))
        {
            tree.push(piece);
        }
        return;
    }
    let at = |i: usize| i % total;
    match op {
        Op::Delete(i) => {
            if let Ok((list, j)) = locate(tree, at(i)) {
                list.remove(j);
            }
        }
        Op::Duplicate(i) => {
            if let Ok((list, j)) = locate(tree, at(i)) {
                let copy = list[j].clone();
                list.insert(j + 1, copy);
            }
        }
        Op::SwapWithNext(i) => {
            if let Ok((list, j)) = locate(tree, at(i))
                && j + 1 < list.len()
            {
                list.swap(j, j + 1);
            }
        }
        Op::InsertAwait(i) => {
            if let Ok((list, j)) = locate(tree, at(i)) {
                let [dot, word] = dot_await();
                list.insert(j + 1, word);
                list.insert(j + 1, dot);
            }
        }
        Op::Rename(i, name) => {
            if let Ok((list, j)) = locate(tree, at(i))
                && let Node::Leaf(TokenTree::Ident(ident)) = &list[j]
            {
                let renamed = Ident::new(NAMES[name % NAMES.len()], ident.span());
                list[j] = Node::Leaf(TokenTree::Ident(renamed));
            }
        }
        Op::Empty(i) => {
            if let Ok((list, j)) = locate(tree, at(i))
                && let Node::Group(_, inner) = &mut list[j]
            {
                inner.clear();
            }
        }
        Op::Redelimit(i, d) => {
            if let Ok((list, j)) = locate(tree, at(i))
                && let Node::Group(delimiter, _) = &mut list[j]
            {
                *delimiter = [
                    Delimiter::Parenthesis,
                    Delimiter::Brace,
                    Delimiter::Bracket,
                    Delimiter::None,
                ][d % 4];
            }
        }
        Op::Splice(i, from) => {
            let Some(piece) = nth(donor, from % count(donor).max(1)) else {
                return;
            };
            if let Ok((list, j)) = locate(tree, at(i)) {
                list.insert(j + 1, piece);
            }
        }
    }
}

/// `base` with `ops` applied in turn, pieces spliced from `donor`.
pub(super) fn mutate(base: TokenStream, donor: TokenStream, ops: &[Op]) -> TokenStream {
    let mut tree = nodes(base);
    let donor = nodes(donor);
    for &op in ops {
        apply(&mut tree, op, &donor);
    }
    respace(stream(&tree))
}

/// Makes the spacing of the puncts one a lexer could have produced, as the
/// compiler's always is: a punct is joint only to a following punct, a `'`
/// only starts a lifetime or label (it is dropped elsewhere).
fn respace(tokens: TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(tokens.len());
    for (i, tt) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1);
        match tt {
            TokenTree::Punct(punct) if punct.as_char() == '\'' => {
                if matches!(next, Some(TokenTree::Ident(_))) {
                    let mut joint = Punct::new('\'', Spacing::Joint);
                    joint.set_span(punct.span());
                    out.push(TokenTree::Punct(joint));
                }
            }
            TokenTree::Punct(punct)
                if punct.spacing() == Spacing::Joint
                    && !matches!(next, Some(TokenTree::Punct(p)) if p.as_char() != '\'') =>
            {
                let mut alone = Punct::new(punct.as_char(), Spacing::Alone);
                alone.set_span(punct.span());
                out.push(TokenTree::Punct(alone));
            }
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), respace(group.stream()));
                new.set_span(group.span());
                out.push(TokenTree::Group(new));
            }
            other => out.push(other.clone()),
        }
    }
    out.into_iter().collect()
}

/// `tokens` without any `.await`: the input of the round-trip property.
pub(super) fn strip_awaits(tokens: TokenStream) -> TokenStream {
    // `x.await?.await else` leaves a `?` that was joint to the `.`.
    respace(strip(tokens))
}

fn strip(tokens: TokenStream) -> TokenStream {
    let mut out: Vec<TokenTree> = Vec::new();
    for tt in tokens {
        match tt {
            TokenTree::Ident(ident) if ident == "await" => {
                if matches!(out.last(), Some(TokenTree::Punct(p)) if p.as_char() == '.') {
                    out.pop();
                } else {
                    out.push(TokenTree::Ident(ident));
                }
            }
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), strip(group.stream()));
                new.set_span(group.span());
                out.push(TokenTree::Group(new));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn positions_reach_inside_groups() {
        let base = quote!(a(b c) d);
        // Pre-order: a, (..), b, c, d.
        let out = mutate(base.clone(), quote!(), &[Op::Delete(3)]);
        assert_eq!(out.to_string(), "a (b) d");
        let out = mutate(base.clone(), quote!(x), &[Op::Splice(2, 0)]);
        assert_eq!(out.to_string(), "a (b x c) d");
        let out = mutate(base.clone(), quote!(), &[Op::InsertAwait(4)]);
        assert_eq!(out.to_string(), "a (b c) d . await");
        let out = mutate(base, quote!(), &[Op::Empty(1), Op::Rename(0, 0)]);
        assert_eq!(out.to_string(), "ctx () d");
    }

    #[test]
    fn awaits_are_stripped_everywhere() {
        let out = strip_awaits(quote!({ a.await?.b(c.await).await; await }));
        assert_eq!(out.to_string(), "{ a ? . b (c) ; await }");
        let out = strip_awaits("x.await?.await else".parse().unwrap());
        let question = out.into_iter().nth(1);
        assert!(
            matches!(&question, Some(TokenTree::Punct(p)) if p.spacing() == Spacing::Alone),
            "{question:?}"
        );
    }
}
