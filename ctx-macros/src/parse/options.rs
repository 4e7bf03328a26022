//! The options of `#[cancellable(...)]`: parsing and validation.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Lit, Meta, Token};

use crate::diag::Errors;

/// The keys `#[cancellable(...)]` accepts, for "unknown key" errors.
const VALID_KEYS: &str = "valid options are `timeout = \"500ms\"` (a child context with that timeout for the body), \
     `allow_unraced` (no warning for the awaits it cannot race) and `skip` (on a method inside a \
     `#[cancellable]` impl or trait: leave it alone)";

/// Options given to one `#[cancellable(...)]`.
#[derive(Clone, Default)]
pub(crate) struct Options {
    /// `timeout = "..."`: watch a child context with this timeout.
    pub(crate) timeout: Option<Timeout>,
    /// `skip`: leave this method of a `#[cancellable]` impl or trait as it is.
    pub(crate) skip: Option<Span>,
    /// `allow_unraced`: no warning for the awaits the macro does not race.
    pub(crate) allow_unraced: Option<Span>,
}

/// A timeout validated at compile time.
#[derive(Clone, Copy)]
pub(crate) struct Timeout {
    pub(crate) secs: u64,
    pub(crate) nanos: u32,
    /// The string literal, for spans.
    pub(crate) span: Span,
}

impl Options {
    /// The options of a method inside a `#[cancellable]` impl or trait: its
    /// own, falling back to those of the block.
    pub(crate) fn or(self, outer: &Options) -> Options {
        Options {
            timeout: self.timeout.or(outer.timeout),
            skip: self.skip,
            allow_unraced: self.allow_unraced.or(outer.allow_unraced),
        }
    }
}

/// Parses the tokens inside `#[cancellable(...)]`, reporting every bad option.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Options> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(tokens)
        .map_err(|err| {
            syn::Error::new(
                err.span(),
                format_args!("cannot parse the options of `#[cancellable]`: {err}; {VALID_KEYS}"),
            )
        })?;
    let mut options = Options::default();
    let mut errors = Errors::default();
    for meta in &metas {
        if let Err(err) = apply(&mut options, meta) {
            errors.push(err);
        }
    }
    errors.finish()?;
    Ok(options)
}

fn apply(options: &mut Options, meta: &Meta) -> syn::Result<()> {
    let path = meta.path();
    if path.is_ident("timeout") {
        if options.timeout.is_some() {
            return Err(syn::Error::new_spanned(path, "`timeout` is given twice"));
        }
        options.timeout = Some(parse_timeout(meta)?);
        Ok(())
    } else if path.is_ident("skip") {
        options.skip = Some(flag(meta, "skip", options.skip)?);
        Ok(())
    } else if path.is_ident("allow_unraced") {
        options.allow_unraced = Some(flag(meta, "allow_unraced", options.allow_unraced)?);
        Ok(())
    } else {
        let name = path.get_ident().map_or_else(
            || quote::quote!(#path).to_string().replace(' ', ""),
            ToString::to_string,
        );
        Err(syn::Error::new_spanned(
            path,
            format_args!("unknown `#[cancellable]` option `{name}`: {VALID_KEYS}"),
        ))
    }
}

/// A key without a value, given once.
fn flag(meta: &Meta, name: &str, before: Option<Span>) -> syn::Result<Span> {
    if !matches!(meta, Meta::Path(_)) {
        return Err(syn::Error::new_spanned(
            meta,
            format_args!("`{name}` takes no value: write `#[cancellable({name})]`"),
        ));
    }
    if before.is_some() {
        return Err(syn::Error::new_spanned(
            meta.path(),
            format_args!("`{name}` is given twice"),
        ));
    }
    Ok(meta.path().span())
}

fn parse_timeout(meta: &Meta) -> syn::Result<Timeout> {
    const USAGE: &str = "write the timeout as a string with a unit: `timeout = \"500ms\"`";
    let Meta::NameValue(nv) = meta else {
        return Err(syn::Error::new_spanned(
            meta,
            format_args!("`timeout` needs a value: {USAGE}"),
        ));
    };
    let Expr::Lit(lit) = &nv.value else {
        return Err(syn::Error::new_spanned(
            &nv.value,
            format_args!("expected a string literal: {USAGE}"),
        ));
    };
    match &lit.lit {
        Lit::Str(s) => {
            let text = s.value();
            parse_duration(&text)
                .map(|(secs, nanos)| Timeout {
                    secs,
                    nanos,
                    span: s.span(),
                })
                .map_err(|why| {
                    syn::Error::new(
                        s.span(),
                        format_args!(
                            "invalid timeout {text:?}: {why}; expected numbers with units, like \"500ms\", \"1.5s\" \
                             or \"1m30s\" (units: ns, us, µs, ms, s, m, h)"
                        ),
                    )
                })
        }
        other => Err(syn::Error::new_spanned(
            other,
            format_args!("expected a string literal: {USAGE}"),
        )),
    }
}

/// Parses a Go-style duration (`"300ms"`, `"1.5h"`, `"2h45m"`) into seconds
/// and nanoseconds. Fractions below a nanosecond are truncated, as in Go.
pub(crate) fn parse_duration(text: &str) -> Result<(u64, u32), String> {
    const UNITS: [(&str, u128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    const TOO_LARGE: &str = "the duration is too large";

    if text.is_empty() {
        return Err("the duration is empty".to_owned());
    }
    if text.starts_with('-') {
        return Err("a timeout cannot be negative".to_owned());
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_digits, after_int) = rest.split_at(int_len);
        let (frac_digits, after_number) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after_dot.len());
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(match rest.chars().next() {
                Some(c) => format!("expected a number, found `{c}`"),
                None => "expected a number".to_owned(),
            });
        }
        let number = &rest[..rest.len() - after_number.len()];
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit_name, after_unit) = after_number.split_at(unit_len);
        if unit_name.is_empty() {
            return Err(format!("missing unit after `{number}`"));
        }
        let Some(&(_, unit_ns)) = UNITS.iter().find(|(name, _)| *name == unit_name) else {
            return Err(unknown_unit(number, unit_name));
        };
        let int: u128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().map_err(|_| TOO_LARGE.to_owned())?
        };
        let mut part = int.checked_mul(unit_ns).ok_or(TOO_LARGE)?;
        // Digits past the 18th cannot change the result by a nanosecond
        // (the largest unit is 3.6e12 ns), and keep the arithmetic in range.
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| TOO_LARGE.to_owned())?;
            let scale = 10u128.pow(frac_digits.len() as u32);
            part = part.checked_add(frac * unit_ns / scale).ok_or(TOO_LARGE)?;
        }
        total = total.checked_add(part).ok_or(TOO_LARGE)?;
        rest = after_unit;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| TOO_LARGE.to_owned())?;
    let nanos = (total % 1_000_000_000) as u32;
    Ok((secs, nanos))
}

/// "unknown unit", with the short form when the unit is spelled out.
fn unknown_unit(number: &str, unit: &str) -> String {
    let short = match unit.trim().to_ascii_lowercase().as_str() {
        "sec" | "secs" | "second" | "seconds" => Some("s"),
        "min" | "mins" | "minute" | "minutes" => Some("m"),
        "hr" | "hrs" | "hour" | "hours" => Some("h"),
        "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => Some("ms"),
        "usec" | "usecs" | "micros" | "microsecond" | "microseconds" => Some("us"),
        "nsec" | "nsecs" | "nanos" | "nanosecond" | "nanoseconds" => Some("ns"),
        _ => None,
    };
    match short {
        Some(short) => format!(
            "unknown unit `{}` after `{number}`: write `{number}{short}`",
            unit.trim()
        ),
        None if unit.starts_with(char::is_whitespace) => {
            format!("unexpected space after `{number}`: write the unit right after the number")
        }
        None => format!("unknown unit `{unit}` after `{number}`"),
    }
}

/// True for `#[cancellable]`, `#[cancellable(...)]` and `#[ctx_runtime::cancellable]`.
pub(crate) fn is_cancellable(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "cancellable")
}

/// The options of an inner `#[cancellable(...)]` on a method.
pub(crate) fn parse_attribute(attr: &Attribute) -> syn::Result<Options> {
    match &attr.meta {
        Meta::Path(_) => Ok(Options::default()),
        Meta::List(list) => parse(list.tokens.clone()),
        Meta::NameValue(nv) => Err(syn::Error::new_spanned(
            nv,
            format_args!("write `#[cancellable(...)]`, not `#[cancellable = ...]`; {VALID_KEYS}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn durations_go_style() {
        assert_eq!(parse_duration("500ms"), Ok((0, 500_000_000)));
        assert_eq!(parse_duration("1.5s"), Ok((1, 500_000_000)));
        assert_eq!(parse_duration("1m30s"), Ok((90, 0)));
        assert_eq!(parse_duration("2h45m"), Ok((9900, 0)));
        assert_eq!(parse_duration("1.5h"), Ok((5400, 0)));
        assert_eq!(parse_duration("250us"), Ok((0, 250_000)));
        assert_eq!(parse_duration("250µs"), Ok((0, 250_000)));
        assert_eq!(parse_duration("7ns"), Ok((0, 7)));
        assert_eq!(parse_duration(".5s"), Ok((0, 500_000_000)));
        assert_eq!(parse_duration("0s"), Ok((0, 0)));
        assert_eq!(
            parse_duration("1.0000000001s"),
            Ok((1, 0)),
            "below a nanosecond is truncated"
        );
        assert_eq!(
            parse_duration("0.1234567891234567891234s"),
            Ok((0, 123_456_789))
        );
    }

    #[test]
    fn bad_durations_say_why() {
        assert_eq!(parse_duration(""), Err("the duration is empty".to_owned()));
        assert_eq!(
            parse_duration("500"),
            Err("missing unit after `500`".to_owned())
        );
        assert_eq!(
            parse_duration("5 s"),
            Err("unexpected space after `5`: write the unit right after the number".to_owned())
        );
        assert_eq!(
            parse_duration("5sec"),
            Err("unknown unit `sec` after `5`: write `5s`".to_owned())
        );
        assert_eq!(
            parse_duration("1.5 minutes"),
            Err("unknown unit `minutes` after `1.5`: write `1.5m`".to_owned())
        );
        assert_eq!(
            parse_duration("1d"),
            Err("unknown unit `d` after `1`".to_owned())
        );
        assert_eq!(
            parse_duration("-1s"),
            Err("a timeout cannot be negative".to_owned())
        );
        assert_eq!(
            parse_duration("ms"),
            Err("expected a number, found `m`".to_owned())
        );
        assert_eq!(parse_duration("1.s"), Ok((1, 0)));
        assert_eq!(
            parse_duration("."),
            Err("expected a number, found `.`".to_owned())
        );
        assert_eq!(
            parse_duration("1s."),
            Err("expected a number, found `.`".to_owned())
        );
        assert!(parse_duration("99999999999999999999999h").is_err());
        assert!(parse_duration("99999999999999999999999999999999999999999s").is_err());
        assert_eq!(parse_duration(&format!("{}s", u64::MAX)), Ok((u64::MAX, 0)));
        assert!(parse_duration(&format!("{}s", u128::from(u64::MAX) + 1)).is_err());
    }

    #[test]
    fn options() {
        let opts = parse(quote!(timeout = "1.5s")).unwrap();
        assert_eq!(
            opts.timeout.map(|t| (t.secs, t.nanos)),
            Some((1, 500_000_000))
        );
        assert!(opts.skip.is_none());
        assert!(parse(quote!(skip)).unwrap().skip.is_some());
        assert!(
            parse(quote!(allow_unraced))
                .unwrap()
                .allow_unraced
                .is_some()
        );
        assert!(parse(quote!(allow_unraced = true)).is_err());
        assert!(parse(quote!(allow_unraced, allow_unraced)).is_err());
        assert!(parse(quote!()).unwrap().timeout.is_none());
    }

    #[test]
    fn every_bad_option_is_reported() {
        let Err(err) = parse(quote!(timout = "1s", timeout = 5, skip = true)) else {
            panic!("accepted bad options")
        };
        let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].starts_with("unknown `#[cancellable]` option `timout`"));
        assert!(messages[1].starts_with("expected a string literal"));
        assert!(messages[2].starts_with("`skip` takes no value"));
    }
}
