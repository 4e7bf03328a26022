//! Diagnostics: the errors of one expansion, collected and reported
//! together, and types printed as a person writes them.

use quote::ToTokens;

/// Tokens as a person would write them, for error messages: `&Context`,
/// `Result<u32, Error>`, not `& Context`, `Result < u32 , Error >`.
pub(crate) fn pretty(tokens: impl ToTokens) -> String {
    use proc_macro2::{Delimiter, Spacing, TokenTree};

    fn word(tt: &TokenTree) -> bool {
        matches!(tt, TokenTree::Ident(_) | TokenTree::Literal(_))
    }

    fn walk(stream: proc_macro2::TokenStream, out: &mut String) {
        let mut prev: Option<TokenTree> = None;
        for tt in stream {
            let space = match (&prev, &tt) {
                (None, _) => false,
                (Some(p), t) if word(p) && word(t) => true,
                (Some(TokenTree::Punct(p)), _) if p.as_char() == ',' => true,
                (Some(TokenTree::Punct(p)), _)
                    if p.as_char() == '=' || (p.as_char() == '>' && out.ends_with("->")) =>
                {
                    true
                }
                (Some(TokenTree::Punct(p)), _) if p.as_char() == '+' => true,
                (_, TokenTree::Punct(t)) if t.as_char() == '+' || t.as_char() == '=' => true,
                (_, TokenTree::Punct(t)) if t.as_char() == '-' && t.spacing() == Spacing::Joint => {
                    true
                }
                (Some(p), TokenTree::Punct(t)) if word(p) && t.as_char() == '\'' => true,
                (Some(TokenTree::Punct(p)), _)
                    if p.as_char() == ':' && p.spacing() == Spacing::Alone =>
                {
                    !out.ends_with("::")
                }
                (Some(TokenTree::Group(_)), t) if word(t) => true,
                _ => false,
            };
            if space {
                out.push(' ');
            }
            match &tt {
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{ ", " }"),
                        Delimiter::None => ("", ""),
                    };
                    out.push_str(open);
                    walk(group.stream(), out);
                    out.push_str(close);
                }
                other => out.push_str(&other.to_string()),
            }
            prev = Some(tt);
        }
    }

    let mut out = String::new();
    walk(tokens.into_token_stream(), &mut out);
    out
}

/// Errors collected across one expansion, reported together.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
    count: usize,
}

impl Errors {
    pub(crate) fn push(&mut self, err: syn::Error) {
        self.count += err.clone().into_iter().count();
        match &mut self.combined {
            Some(all) => all.combine(err),
            None => self.combined = Some(err),
        }
    }

    /// How many errors so far.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    pub(crate) fn into_compile_errors(self) -> proc_macro2::TokenStream {
        self.combined
            .map(|err| err.into_compile_error())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::pretty;
    use quote::quote;

    #[test]
    fn pretty_prints_like_a_person() {
        assert_eq!(pretty(quote!(&Context)), "&Context");
        assert_eq!(pretty(quote!(&'a mut Context)), "&'a mut Context");
        assert_eq!(
            pretty(quote!(Result<Vec<u8>, io::Error>)),
            "Result<Vec<u8>, io::Error>"
        );
        assert_eq!(pretty(quote!(ctx: &Context)), "ctx: &Context");
        assert_eq!(
            pretty(quote!(impl Fn(u32) -> u32 + Send)),
            "impl Fn(u32) -> u32 + Send"
        );
        assert_eq!(
            pretty(quote!(::ctx_runtime::Context)),
            "::ctx_runtime::Context"
        );
        assert_eq!(
            pretty(quote!(&self, ctx: &Context, id: u32)),
            "&self, ctx: &Context, id: u32"
        );
        assert_eq!(
            pretty(quote!(Box<dyn Error + Send + 'static>)),
            "Box<dyn Error + Send + 'static>"
        );
        assert_eq!(pretty(quote!((ctx, id))), "(ctx, id)");
    }
}
