//! The `grpc-timeout` grammar, by property: at most 8 digits, then one of
//! `H M S m u n`; encoding rounds down to the finest unit that fits; parsing
//! accepts exactly the grammar and never panics.

use std::time::Duration;

use ctx_runtime::grpc_timeout::{self, MAX};
use proptest::prelude::*;

const UNITS: [(char, u64); 6] = [
    ('n', 1),
    ('u', 1_000),
    ('m', 1_000_000),
    ('S', 1_000_000_000),
    ('M', 60_000_000_000),
    ('H', 3_600_000_000_000),
];

fn unit_nanos(unit: char) -> u128 {
    UNITS.iter().find(|(u, _)| *u == unit).unwrap().1.into()
}

/// The spec's grammar, written independently of the parser.
fn is_valid(value: &[u8]) -> bool {
    match value.split_last() {
        Some((unit, digits)) => {
            b"HMSmun".contains(unit)
                && (1..=8).contains(&digits.len())
                && digits.iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..1_000_000_000).prop_map(Duration::from_nanos),
        (0u64..100_000_000_000_000).prop_map(Duration::from_nanos),
        (0u64..=MAX.as_secs(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::ZERO),
        Just(MAX),
    ]
    .prop_filter("at most MAX", |d| *d <= MAX)
}

/// Mostly near-valid values: digits and units, with a stray byte now and then.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => b'0'..=b'9',
        2 => prop::sample::select(b"HMSmun".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_is_valid_and_rounds_down_by_less_than_its_unit(d in any_duration()) {
        let encoded = grpc_timeout::encode(d);
        prop_assert!(is_valid(encoded.as_bytes()), "{encoded}");
        let back = grpc_timeout::parse(&encoded).unwrap();
        prop_assert!(back <= d, "{encoded} is more than {d:?}");
        let unit = unit_nanos(encoded.chars().last().unwrap());
        prop_assert!(d.as_nanos() - back.as_nanos() < unit, "{encoded} for {d:?}");
    }

    #[test]
    fn encode_uses_the_finest_unit_that_fits(d in any_duration()) {
        let encoded = grpc_timeout::encode(d);
        let unit = encoded.chars().last().unwrap();
        let finer = UNITS.iter().take_while(|(u, _)| *u != unit);
        for (name, nanos) in finer {
            prop_assert!(
                d.as_nanos() / u128::from(*nanos) > 99_999_999,
                "{d:?} fits in {name} but was sent as {encoded}"
            );
        }
    }

    #[test]
    fn every_valid_value_parses_exactly_and_round_trips(
        number in 0u64..=99_999_999,
        unit in prop::sample::select(UNITS.to_vec()),
        zeros in 0usize..8,
    ) {
        let digits = format!("{number:0zeros$}", zeros = zeros.min(8));
        prop_assume!(digits.len() <= 8);
        let value = format!("{digits}{}", unit.0);
        let parsed = grpc_timeout::parse(&value).unwrap();
        prop_assert_eq!(parsed.as_nanos(), u128::from(number) * u128::from(unit.1));
        // Re-encoding may pick a finer unit, but never changes the duration.
        prop_assert_eq!(grpc_timeout::parse(grpc_timeout::encode(parsed)).unwrap(), parsed);
    }

    #[test]
    fn parse_accepts_exactly_the_grammar(value in near_valid()) {
        prop_assert_eq!(grpc_timeout::parse(&value).is_ok(), is_valid(&value), "{:?}", String::from_utf8_lossy(&value));
    }

    #[test]
    fn parse_never_panics_on_any_bytes(value in prop::collection::vec(any::<u8>(), 0..40)) {
        let parsed = grpc_timeout::parse(&value);
        prop_assert_eq!(parsed.is_ok(), is_valid(&value));
    }

    #[test]
    fn more_than_8_digits_is_refused(
        number in 100_000_000u64..u64::MAX,
        unit in prop::sample::select(UNITS.to_vec()),
    ) {
        let value = format!("{number}{}", unit.0);
        prop_assert!(grpc_timeout::parse(&value).is_err(), "{value}");
    }
}

#[test]
fn malformed_examples() {
    for bad in [
        "",
        "n",
        "1",
        "1x",
        "1s",
        "1h",
        "1 S",
        " 1S",
        "1S ",
        "+1S",
        "-1S",
        "1.0S",
        "0x1S",
        "123456789S",
        "1SS",
        "S1",
        "１S",
        "1µ",
    ] {
        assert!(grpc_timeout::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(grpc_timeout::parse("99999999H"), Ok(MAX));
    assert_eq!(grpc_timeout::encode(Duration::MAX), "99999999H");
}
