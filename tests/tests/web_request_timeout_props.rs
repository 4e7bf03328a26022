//! The `x-request-timeout` grammar, by property: digits, optionally `.` and
//! digits, optionally the unit `ms` or `s`; nothing else (gRPC's units are
//! refused). Parsing is exact to the nanosecond (finer digits dropped),
//! saturates instead of overflowing, and never panics; encoding writes
//! whole milliseconds, rounded down.

use std::time::Duration;

use ctx_runtime::request_timeout;
use proptest::prelude::*;

/// The grammar, written independently of the parser.
fn is_valid(value: &[u8]) -> bool {
    let number = value
        .strip_suffix(b"ms")
        .or_else(|| value.strip_suffix(b"s"))
        .unwrap_or(value);
    let mut parts = number.splitn(2, |&b| b == b'.');
    let digits = |part: Option<&[u8]>| {
        part.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
    };
    let whole = parts.next();
    match parts.next() {
        None => digits(whole),
        Some(fraction) => digits(whole) && digits(Some(fraction)),
    }
}

/// The exact value of `whole.fraction unit`, in nanoseconds rounded down,
/// by long arithmetic on the decimal digits.
fn exact_nanos(whole: &str, fraction: &str, unit_nanos: u128) -> u128 {
    let digits = format!("{whole}{fraction}");
    let scale = 10u128.pow(fraction.len() as u32);
    digits.parse::<u128>().unwrap() * unit_nanos / scale
}

/// Mostly near-valid values: digits, dots and unit letters, with a stray
/// byte now and then.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => b'0'..=b'9',
        2 => Just(b'.'),
        3 => prop::sample::select(b"msSMHun".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..12)
}

fn units() -> impl Strategy<Value = (&'static str, u128)> {
    prop::sample::select(vec![
        ("", 1_000_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_accepts_exactly_the_grammar(value in near_valid()) {
        prop_assert_eq!(
            request_timeout::parse(&value).is_ok(),
            is_valid(&value),
            "{:?}",
            String::from_utf8_lossy(&value)
        );
    }

    #[test]
    fn parse_never_panics_on_any_bytes(value in prop::collection::vec(any::<u8>(), 0..40)) {
        prop_assert_eq!(request_timeout::parse(&value).is_ok(), is_valid(&value));
    }

    #[test]
    fn every_valid_value_parses_exactly(
        whole in 0u64..10_000_000_000,
        fraction in "[0-9]{1,12}",
        with_fraction: bool,
        (unit, unit_nanos) in units(),
    ) {
        let fraction = if with_fraction { fraction } else { String::new() };
        let value = if fraction.is_empty() {
            format!("{whole}{unit}")
        } else {
            format!("{whole}.{fraction}{unit}")
        };
        let parsed = request_timeout::parse(&value).unwrap();
        prop_assert_eq!(
            parsed.as_nanos(),
            exact_nanos(&whole.to_string(), &fraction, unit_nanos),
            "{}", value
        );
    }

    #[test]
    fn grpc_units_are_refused(
        number in 0u64..100_000_000,
        unit in prop::sample::select(vec!['H', 'M', 'S', 'm', 'u', 'n']),
    ) {
        let value = format!("{number}{unit}");
        prop_assert!(request_timeout::parse(&value).is_err(), "{}", value);
    }

    #[test]
    fn huge_values_saturate(digits in "[1-9][0-9]{23,60}", (unit, _) in units()) {
        let value = format!("{digits}{unit}");
        prop_assert_eq!(request_timeout::parse(&value), Ok(Duration::MAX));
    }

    #[test]
    fn encode_is_whole_milliseconds_rounded_down(
        secs in 0u64..=u64::MAX / 1000,
        nanos in 0u32..1_000_000_000,
    ) {
        let d = Duration::new(secs, nanos);
        let encoded = request_timeout::encode(d);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_digit()), "{}", encoded);
        let back = request_timeout::parse(&encoded).unwrap();
        prop_assert!(back <= d, "{} is more than {:?}", encoded, d);
        prop_assert!(d - back < Duration::from_millis(1), "{} for {:?}", encoded, d);
    }
}

#[test]
fn examples() {
    for (value, expected) in [
        ("250", Duration::from_millis(250)),
        ("250ms", Duration::from_millis(250)),
        ("5s", Duration::from_secs(5)),
        ("1.5s", Duration::from_millis(1500)),
        ("0", Duration::ZERO),
        ("0.5", Duration::from_micros(500)),
        ("0.0000001", Duration::ZERO),
    ] {
        assert_eq!(request_timeout::parse(value), Ok(expected), "{value:?}");
    }
    for bad in [
        "", "s", "ms", ".5", "5.", "5..5", "5.5.5", "+5", "-5", " 5", "5 ", "5 ms", "5S", "5MS",
        "5Ms", "5m", "5M", "5H", "5h", "5us", "5ns", "5sec", "5msms", "1e3", "0x10", "５", "5\0",
    ] {
        assert!(request_timeout::parse(bad).is_err(), "{bad:?}");
    }
}
