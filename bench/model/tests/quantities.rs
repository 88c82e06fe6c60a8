//! Numbers that never overflow: every quantity parser checks the range
//! before converting. At the largest value of each unit a quantity
//! parses exactly; one above it, or any number too large for `f64`, is
//! refused with the accepted range in the unit the user wrote — never a
//! saturated `18446744073709551615`.

use std::path::Path;

use migbench_model::scalar::ScalarField;
use migbench_model::units::{BitRate, ByteRate, Dur, Size};
use migbench_model::{Scenario, ScenarioError};
use proptest::prelude::*;

const SIZES: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];
const BITS: &[(&str, u64)] = &[
    ("bit", 1),
    ("kbit", 1_000),
    ("mbit", 1_000_000),
    ("gbit", 1_000_000_000),
    ("tbit", 1_000_000_000_000),
    ("Mbps", 1_000_000),
];
const DURS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// `parse` of `{n}{unit}{suffix}` for `n` at and one above the largest.
fn at_and_beyond<T: std::fmt::Debug>(
    units: &[(&str, u64)],
    suffix: &str,
    what: &str,
    parse: fn(&str) -> Result<T, String>,
    value: fn(&T) -> u64,
) {
    for &(unit, per) in units {
        let max = u64::MAX / per;
        let text = format!("{max}{unit}{suffix}");
        let v = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(value(&v), max * per, "{text}");
        let over = format!("{}{unit}{suffix}", u128::from(max) + 1);
        let e = parse(&over).unwrap_err();
        assert_eq!(
            e,
            format!("`{over}` is out of range: {what} is at most {max}{unit}{suffix}"),
        );
    }
}

#[test]
fn every_unit_parses_its_largest_value_and_refuses_one_more() {
    at_and_beyond(SIZES, "", "a size", Size::parse_str, |s| s.0);
    at_and_beyond(SIZES, "/s", "a byte rate", ByteRate::parse_str, |r| r.0);
    at_and_beyond(BITS, "", "a link rate", BitRate::parse_str, |r| r.0);
    at_and_beyond(DURS, "", "a duration", Dur::parse_str, |d| {
        d.0.as_nanos() as u64
    });
}

#[test]
fn the_issues_cases_are_refused_in_the_users_notation() {
    assert_eq!(
        BitRate::parse_str("99999999999gbit").unwrap_err(),
        "`99999999999gbit` is out of range: a link rate is at most 18446744073gbit"
    );
    assert_eq!(
        ByteRate::parse_str("1e30MB/s").unwrap_err(),
        "`1e30MB/s` is out of range: a byte rate is at most 18446744073709MB/s"
    );
    assert_eq!(
        Dur::parse_str("1e400s").unwrap_err(),
        "`1e400s` is out of range: a duration is at most 18446744073s"
    );
    // Bytes for a link rate, too many to suggest as bits.
    let e = BitRate::parse_str("1e20MB/s").unwrap_err();
    assert!(
        e.contains("in bytes") && !e.contains("18446744073709551615"),
        "{e}"
    );
}

fn scenario_error(text: &str) -> (String, String) {
    match Scenario::parse(Path::new("x.toml"), text) {
        Err(ScenarioError::Invalid { field, message, .. }) => (field, message),
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn a_scenario_names_the_field_of_a_quantity_out_of_range() {
    let (field, message) =
        scenario_error("[guest]\nram = \"256MiB\"\n[link]\nrate = \"99999999999gbit\"\n");
    assert_eq!(field, "link.rate");
    assert!(message.contains("at most 18446744073gbit"), "{message}");
    let (field, message) = scenario_error(
        "[guest]\nram = \"256MiB\"\n[workload]\ndirty_rate = \"1e30MB/s\"\n[link]\nrate = \"1gbit\"\n",
    );
    assert_eq!(field, "workload.dirty_rate");
    assert!(message.contains("at most 18446744073709MB/s"), "{message}");
    let (field, message) = scenario_error(
        "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n[migration]\ndowntime_limit = \"99999999999999999999ms\"\n",
    );
    assert_eq!(field, "migration.downtime_limit");
    assert!(message.contains("at most 18446744073709ms"), "{message}");
    assert!(!message.contains("18446744073709551615ns"), "{message}");
}

fn any_unit() -> impl Strategy<Value = (usize, usize)> {
    (0usize..3).prop_flat_map(|k| {
        let n = [SIZES.len(), BITS.len(), DURS.len()][k];
        (Just(k), 0..n)
    })
}

fn parse_any(k: usize, i: usize, num: &str) -> (Result<u64, String>, u64, &'static str) {
    match k {
        0 => {
            let (u, per) = SIZES[i];
            (Size::parse_str(&format!("{num}{u}")).map(|s| s.0), per, u)
        }
        1 => {
            let (u, per) = BITS[i];
            (
                BitRate::parse_str(&format!("{num}{u}")).map(|r| r.0),
                per,
                u,
            )
        }
        _ => {
            let (u, per) = DURS[i];
            (
                Dur::parse_str(&format!("{num}{u}")).map(|d| d.0.as_nanos() as u64),
                per,
                u,
            )
        }
    }
}

proptest! {
    /// Whole numbers around and far beyond each unit's largest value:
    /// exact below it, refused with the range above it.
    #[test]
    fn whole_numbers_are_exact_or_refused((k, i) in any_unit(), n in prop_oneof![
        any::<u64>().prop_map(u128::from),
        (0u128..1 << 70),
        any::<u128>(),
    ]) {
        let (r, per, unit) = parse_any(k, i, &n.to_string());
        let max = u64::MAX / per;
        match r {
            Ok(v) => {
                prop_assert!(n <= u128::from(max));
                prop_assert_eq!(u128::from(v), n * u128::from(per));
            }
            Err(e) => {
                // 0 bits per second is refused for being zero, not range.
                if !(k == 1 && n == 0) {
                    prop_assert!(n > u128::from(max), "{}", e);
                    let range = format!("at most {max}{unit}");
                    prop_assert!(e.contains(&range), "{}", e);
                }
            }
        }
    }

    /// Exponents and fractions up to and past `f64`'s range never panic
    /// nor saturate: accepted values are what was written, the others
    /// name the range.
    #[test]
    fn floats_never_saturate((k, i) in any_unit(), m in 1u32..1000, exp in 0u32..400) {
        let num = format!("{m}e{exp}");
        let (r, per, unit) = parse_any(k, i, &num);
        let x = f64::from(m) * 10f64.powi(exp as i32) * per as f64;
        match r {
            Ok(v) => prop_assert!((v as f64 - x).abs() <= x * 1e-12 + 1.0, "{} {}", v, x),
            Err(e) => {
                prop_assert!(x >= 1.8e19, "{} {}", num, e);
                prop_assert!(e.contains(&format!("is at most {}{unit}", u64::MAX / per)), "{}", e);
                prop_assert!(e.contains(&num), "{}", e);
            }
        }
    }
}

#[test]
fn qemus_binary_suffixes_are_sizes() {
    assert_eq!(Size::parse_str("1G").unwrap(), Size(1 << 30));
    assert_eq!(Size::parse_str("512M").unwrap(), Size(512 << 20));
    assert_eq!(Size::parse_str("512m").unwrap(), Size(512 << 20));
    assert_eq!(Size::parse_str("64K").unwrap(), Size(64 << 10));
    assert_eq!(Size::parse_str("1T").unwrap(), Size(1 << 40));
    assert_eq!(ByteRate::parse_str("20M/s").unwrap(), ByteRate(20 << 20));
    // The decimal spellings stay decimal.
    assert_eq!(Size::parse_str("1GB").unwrap(), Size(1_000_000_000));
    // Bytes for a link rate, too many to say in bits.
    assert_eq!(
        BitRate::parse_str("3000000TB/s").unwrap_err(),
        "`3000000TB/s` is in bytes; a link rate is in bits (kbit, mbit, gbit)"
    );
}

#[test]
fn a_unit_beyond_the_largest_names_the_largest_and_converts() {
    assert_eq!(
        Size::parse_str("1PiB").unwrap_err(),
        "unknown size unit `PiB` in `1PiB`: the largest is TiB (`1PiB` is `1024TiB`)"
    );
    let e = Size::parse_str("2EB").unwrap_err();
    assert!(
        e.contains("the largest is TB (`2EB` is `2000000TB`)"),
        "{e}"
    );
    let e = ByteRate::parse_str("1.5PiB/s").unwrap_err();
    assert!(
        e.contains("the largest is TiB/s (`1.5PiB/s` is `1536TiB/s`)"),
        "{e}"
    );
    let e = BitRate::parse_str("1pbit").unwrap_err();
    assert!(
        e.contains("the largest is tbit (`1pbit` is `1000tbit`)"),
        "{e}"
    );
}

#[test]
fn non_ascii_look_alikes_are_named() {
    // A Cyrillic `М` in "100 Мbit".
    let e = BitRate::parse_str("100 \u{41c}bit").unwrap_err();
    assert!(
        e.contains("`\u{41c}` is Cyrillic (U+041C); type the Latin `M`"),
        "{e}"
    );
    assert!(!e.contains("did you mean"), "{e}");
    let e = Size::parse_str("512\u{39c}iB").unwrap_err();
    assert!(e.contains("is Greek (U+039C); type the Latin `M`"), "{e}");
    let e = Dur::parse_str("300\u{ff4d}s").unwrap_err();
    assert!(
        e.contains("full-width character (U+FF4D); type the ASCII `m`"),
        "{e}"
    );
    // The micro sign is a duration unit.
    assert_eq!(Dur::parse_str("5µs").unwrap().0.as_micros(), 5);
}

#[test]
fn a_bare_number_for_a_duration_asks_for_a_unit() {
    assert_eq!(
        Dur::parse_str("300").unwrap_err(),
        "`300` has no unit: add a unit: 300ms"
    );
    let e = Dur::parse_str("300 msec").unwrap_err();
    assert!(e.contains("did you mean `300ms`?"), "{e}");
    let (field, message) = scenario_error(
        "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n[migration]\ndowntime_limit = 300\n",
    );
    assert_eq!(field, "migration.downtime_limit");
    assert!(message.contains("add a unit: \"300ms\""), "{message}");
}

#[test]
fn a_range_error_quotes_the_value_as_written() {
    let (field, message) = scenario_error(
        "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n[migration]\ndowntime_limit = \"3000000ms\"\n",
    );
    assert_eq!(field, "migration.downtime_limit");
    assert!(
        message.starts_with("3000000ms is outside 1ms – 2000s"),
        "{message}"
    );
    let (field, message) =
        scenario_error("[guest]\nram = [\"256MiB\", \"66560MiB\"]\n[link]\nrate = \"1gbit\"\n");
    assert_eq!(field, "guest.ram");
    assert!(
        message.starts_with("66560MiB is outside 96MiB – 64GiB"),
        "{message}"
    );
}
