//! The `x-request-timeout` header: how a plain HTTP request carries its
//! time budget from one service to the next.
//!
//! Its value is a duration, in milliseconds unless it says otherwise:
//!
//! | value | means |
//! |---|---|
//! | `250` | 250 ms |
//! | `250ms` | 250 ms |
//! | `5s` | 5 s |
//! | `1.5s`, `0.25` | 1.5 s, 250 µs (decimals allowed) |
//!
//! Nothing else: no sign, no spaces, no exponent, lower-case units only.
//! The gRPC format (`250m`, `5S`, `2M`) belongs to the `grpc-timeout`
//! header ([`grpc_timeout`](crate::grpc_timeout)) and is refused here, so
//! that `250M` never silently means 250 minutes.
//!
//! Like `grpc-timeout`, it is a timeout, not an absolute deadline: the
//! server turns it back into a deadline the moment the request arrives, so
//! clocks need not agree. [`encode`] writes whole milliseconds, rounded down,
//! which every server that reads milliseconds understands.
//!
//! ```
//! use ctx_runtime::request_timeout;
//! use std::time::Duration;
//!
//! assert_eq!(request_timeout::parse("250"), Ok(Duration::from_millis(250)));
//! assert_eq!(request_timeout::parse("1.5s"), Ok(Duration::from_millis(1500)));
//! assert!(request_timeout::parse("250M").is_err(), "gRPC's format: use grpc-timeout");
//! assert_eq!(request_timeout::encode(Duration::from_micros(2_999_999)), "2999");
//! ```

use std::fmt;
use std::time::Duration;

/// The header's name, `x-request-timeout`.
///
/// ```
/// assert_eq!(ctx_runtime::request_timeout::HEADER, "x-request-timeout");
/// ```
pub const HEADER: &str = "x-request-timeout";

/// What [`parse`] accepts, in words (for error messages).
pub(crate) const ACCEPTED: &str =
    "expected milliseconds (250), or a number with the unit ms or s (250ms, 5s, 1.5s)";

/// Fraction digits past these are below a nanosecond for either unit.
const FRACTION_DIGITS: u32 = 9;

/// Formats `timeout` as whole milliseconds, rounded down: the value never
/// stands for more time than `timeout` has.
///
/// Less than a millisecond gives `"0"`, which a server reads as "already
/// expired".
///
/// ```
/// use ctx_runtime::request_timeout::encode;
/// use std::time::Duration;
///
/// assert_eq!(encode(Duration::from_secs(2)), "2000");
/// assert_eq!(encode(Duration::from_micros(1999)), "1");
/// assert_eq!(encode(Duration::from_micros(999)), "0");
/// ```
pub fn encode(timeout: Duration) -> String {
    timeout.as_millis().to_string()
}

/// Parses an `x-request-timeout` value: one or more ASCII digits, optionally
/// a `.` and one or more digits, then optionally the unit `ms` or `s`
/// (milliseconds without one).
///
/// Takes bytes or a string, so a header value can be passed as it is
/// (`header_value.as_bytes()`). Digits finer than a nanosecond are dropped
/// (rounding down); a value past [`Duration::MAX`] gives `Duration::MAX`,
/// which a context takes as "no deadline". Never panics.
///
/// ```
/// use ctx_runtime::request_timeout::parse;
/// use std::time::Duration;
///
/// assert_eq!(parse("0"), Ok(Duration::ZERO));
/// assert_eq!(parse(b"250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse("0.5ms"), Ok(Duration::from_micros(500)));
/// assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
/// for bad in ["", "s", "5 s", "+5", "-5", "5.", ".5", "5S", "5m", "5M", "5h", "1e3", "5sec"] {
///     assert!(parse(bad).is_err(), "{bad:?}");
/// }
/// ```
pub fn parse(value: impl AsRef<[u8]>) -> Result<Duration, ParseError> {
    let value = value.as_ref();
    if value.is_empty() {
        return Err(ParseError(Reason::Empty));
    }
    let (number, unit_nanos) = if let Some(number) = value.strip_suffix(b"ms") {
        (number, 1_000_000)
    } else if let Some(number) = value.strip_suffix(b"s") {
        (number, 1_000_000_000)
    } else {
        (value, 1_000_000)
    };
    let (whole, fraction) = match number.iter().position(|&b| b == b'.') {
        Some(dot) => (&number[..dot], Some(&number[dot + 1..])),
        None => (number, None),
    };
    let digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return Err(ParseError(if number.is_empty() {
            Reason::NoDigits
        } else if number.iter().any(u8::is_ascii_alphabetic) {
            Reason::Unit
        } else {
            Reason::Number
        }));
    }
    // Duration::MAX is about 1.8e28 ns; u128 holds 3.4e38, so saturating the
    // whole part at 1e29 units keeps every product below u128::MAX.
    const CAP: u128 = 100_000_000_000_000_000_000_000_000_000;
    let mut whole_units: u128 = 0;
    for &d in whole {
        whole_units = (whole_units * 10 + u128::from(d - b'0')).min(CAP);
    }
    // The fraction as billionths of the unit, finer digits dropped.
    let mut billionths: u128 = 0;
    let fraction = fraction.unwrap_or_default();
    for i in 0..FRACTION_DIGITS as usize {
        let d = fraction.get(i).map_or(0, |&d| u128::from(d - b'0'));
        billionths = billionths * 10 + d;
    }
    let nanos = whole_units * unit_nanos + billionths * unit_nanos / 1_000_000_000;
    let secs = nanos / 1_000_000_000;
    Ok(match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    })
}

/// An `x-request-timeout` value that does not follow the format of
/// [`parse`].
///
/// ```
/// let err = ctx_runtime::request_timeout::parse("250M").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "malformed x-request-timeout: unknown unit (expected milliseconds (250), \
///      or a number with the unit ms or s (250ms, 5s, 1.5s))"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError(Reason);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    Empty,
    NoDigits,
    Unit,
    Number,
}

impl ParseError {
    /// What is wrong, without the header's name.
    pub(crate) fn reason(&self) -> &'static str {
        match self.0 {
            Reason::Empty => "empty value",
            Reason::NoDigits => "no digits before the unit",
            Reason::Unit => "unknown unit",
            Reason::Number => "not a plain decimal number",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {HEADER}: {} ({ACCEPTED})", self.reason())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_decimals() {
        assert_eq!(parse("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0.000000001s"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse("0.0000000019s"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse("0.000001"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse("007"), Ok(Duration::from_millis(7)));
        assert_eq!(
            parse("99999999999999999999999999999999999s"),
            Ok(Duration::MAX)
        );
        assert_eq!(
            parse("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse("18446744073709551616s"), Ok(Duration::MAX));
    }

    #[test]
    fn reasons() {
        assert_eq!(parse(""), Err(ParseError(Reason::Empty)));
        assert_eq!(parse("ms"), Err(ParseError(Reason::NoDigits)));
        assert_eq!(parse("s"), Err(ParseError(Reason::NoDigits)));
        assert_eq!(parse("250M"), Err(ParseError(Reason::Unit)));
        assert_eq!(parse("250m"), Err(ParseError(Reason::Unit)));
        assert_eq!(parse("5S"), Err(ParseError(Reason::Unit)));
        assert_eq!(parse("-5"), Err(ParseError(Reason::Number)));
        assert_eq!(parse("5.s"), Err(ParseError(Reason::Number)));
        assert_eq!(parse("soon"), Err(ParseError(Reason::Unit)));
    }
}
