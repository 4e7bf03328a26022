//! The `grpc-timeout` header: how gRPC carries a deadline from one service to
//! the next.
//!
//! The [gRPC over HTTP/2 spec] sends a timeout, not an absolute deadline, as
//! at most 8 ASCII digits followed by one unit: `H` (hours), `M` (minutes),
//! `S` (seconds), `m` (milliseconds), `u` (microseconds) or `n` (nanoseconds).
//! A server turns it back into a deadline the moment the request arrives, so
//! clock skew between machines does not matter, only the time spent on the
//! wire.
//!
//! [`encode`] picks the most precise unit whose value fits in 8 digits and
//! rounds *down*, so a hop never promises the next one more time than it has
//! left. [`parse`] accepts exactly the spec's grammar and never panics.
//!
//! ```
//! use ctx_runtime::grpc_timeout;
//! use std::time::Duration;
//!
//! assert_eq!(grpc_timeout::encode(Duration::from_millis(200)), "200000u");
//! assert_eq!(grpc_timeout::encode(Duration::from_secs(30)), "30000000u");
//! assert_eq!(grpc_timeout::parse("200m"), Ok(Duration::from_millis(200)));
//! assert!(grpc_timeout::parse("200").is_err(), "a unit is required");
//! assert!(grpc_timeout::parse("123456789m").is_err(), "at most 8 digits");
//! ```
//!
//! [gRPC over HTTP/2 spec]: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md

use std::fmt;
use std::time::Duration;

/// The header's name, `grpc-timeout` (lower case, as HTTP/2 requires).
///
/// ```
/// assert_eq!(ctx_runtime::grpc_timeout::HEADER, "grpc-timeout");
/// ```
pub const HEADER: &str = "grpc-timeout";

/// The largest value the header can carry: 99,999,999 hours (about 11,400 years).
///
/// [`encode`] clamps longer durations to this.
///
/// ```
/// use ctx_runtime::grpc_timeout::{self, MAX};
/// assert_eq!(grpc_timeout::encode(MAX), "99999999H");
/// assert_eq!(grpc_timeout::parse("99999999H"), Ok(MAX));
/// ```
pub const MAX: Duration = Duration::from_secs(MAX_VALUE * 3600);

/// What [`parse`] accepts, in words (for the layer's error messages).
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) const ACCEPTED: &str = "expected 1 to 8 digits and one unit of H M S m u n (250m, 5S)";

/// The largest number of the header: 8 digits.
const MAX_VALUE: u64 = 99_999_999;

/// The units, finest first, with their length in nanoseconds.
const UNITS: [(u8, u128); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3600 * 1_000_000_000),
];

/// Formats `timeout` as a `grpc-timeout` value.
///
/// Uses the finest unit whose value fits in 8 digits, rounding down: the
/// result never stands for more time than `timeout`, and loses less than one
/// of its unit (under 100 ms for timeouts up to 27 hours). A duration of zero
/// gives `"0n"` (already expired); one longer than [`MAX`] is clamped to it.
///
/// ```
/// use ctx_runtime::grpc_timeout::encode;
/// use std::time::Duration;
///
/// assert_eq!(encode(Duration::from_nanos(1500)), "1500n");
/// assert_eq!(encode(Duration::from_millis(1500)), "1500000u");
/// assert_eq!(encode(Duration::from_secs(3 * 3600)), "10800000m");
/// assert_eq!(encode(Duration::ZERO), "0n");
/// ```
pub fn encode(timeout: Duration) -> String {
    let nanos = timeout.as_nanos();
    for (unit, len) in UNITS {
        let value = nanos / len;
        if value <= u128::from(MAX_VALUE) {
            return format!("{value}{}", char::from(unit));
        }
    }
    format!("{MAX_VALUE}H")
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits, then one of
/// `H M S m u n`, and nothing else (no sign, no spaces).
///
/// Takes bytes or a string, so a header value can be passed as it is
/// (`header_value.as_bytes()`). Never panics.
///
/// ```
/// use ctx_runtime::grpc_timeout::parse;
/// use std::time::Duration;
///
/// assert_eq!(parse("1H"), Ok(Duration::from_secs(3600)));
/// assert_eq!(parse(b"250u"), Ok(Duration::from_micros(250)));
/// assert_eq!(parse("0n"), Ok(Duration::ZERO));
/// for bad in ["", "m", "10", "10s", " 10m", "-1m", "+1m", "1.5S", "123456789n"] {
///     assert!(parse(bad).is_err(), "{bad:?}");
/// }
/// ```
pub fn parse(value: impl AsRef<[u8]>) -> Result<Duration, ParseError> {
    let value = value.as_ref();
    let Some((&unit, digits)) = value.split_last() else {
        return Err(ParseError(Reason::Empty));
    };
    let Some(&(_, len)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(ParseError(Reason::Unit));
    };
    if digits.is_empty() {
        return Err(ParseError(Reason::NoDigits));
    }
    if digits.len() > 8 {
        return Err(ParseError(Reason::TooLong));
    }
    let mut number: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(ParseError(Reason::NotADigit));
        }
        number = number * 10 + u64::from(digit - b'0');
    }
    // At most 99,999,999 hours: fits a Duration with room to spare.
    let nanos = u128::from(number) * len;
    let secs = (nanos / 1_000_000_000) as u64;
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// A `grpc-timeout` value that does not follow the spec.
///
/// ```
/// let err = ctx_runtime::grpc_timeout::parse("5s").unwrap_err();
/// assert_eq!(err.to_string(), "malformed grpc-timeout: unknown unit (expected one of H M S m u n)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError(Reason);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    Empty,
    Unit,
    NoDigits,
    TooLong,
    NotADigit,
}

impl ParseError {
    /// What is wrong, without the header's name.
    pub(crate) fn reason(&self) -> &'static str {
        match self.0 {
            Reason::Empty => "empty value",
            Reason::Unit => "unknown unit",
            Reason::NoDigits => "no digits before the unit",
            Reason::TooLong => "more than 8 digits",
            Reason::NotADigit => "not an ASCII digit",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {HEADER}: {}", self.reason())?;
        if self.0 == Reason::Unit {
            f.write_str(" (expected one of H M S m u n)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit() {
        assert_eq!(parse("2H"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("2M"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("2S"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("2m"), Ok(Duration::from_millis(2)));
        assert_eq!(parse("2u"), Ok(Duration::from_micros(2)));
        assert_eq!(parse("2n"), Ok(Duration::from_nanos(2)));
        assert_eq!(parse("00000002S"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn encode_picks_the_finest_unit_that_fits() {
        assert_eq!(encode(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(encode(Duration::from_nanos(100_000_000)), "100000u");
        assert_eq!(encode(Duration::from_nanos(100_000_999)), "100000u");
        assert_eq!(encode(Duration::MAX), "99999999H");
        assert_eq!(encode(MAX + Duration::from_secs(1)), "99999999H");
    }
}
