//! Quantities: parsing, display round trips, refusals.

use super::*;

#[test]
fn sizes_parse_binary_and_decimal_units() {
    assert_eq!(Size::parse_str("512MiB").unwrap().0, 512 << 20);
    assert_eq!(Size::parse_str("1GiB").unwrap().0, 1 << 30);
    assert_eq!(Size::parse_str("100MB").unwrap().0, 100_000_000);
    assert_eq!(Size::parse_str("1.5KiB").unwrap().0, 1536);
    assert!(Size::parse_str("-1MiB").unwrap_err().contains("negative"));
    assert!(Size::parse_str("12parsecs")
        .unwrap_err()
        .contains("unknown size unit"));
}

#[test]
fn rates_parse_tc_notation() {
    assert_eq!(BitRate::parse_str("100mbit").unwrap().0, 100_000_000);
    assert_eq!(BitRate::parse_str("1gbit").unwrap().0, 1_000_000_000);
    assert_eq!(BitRate::parse_str("1Gbit").unwrap().0, 1_000_000_000);
    assert!(BitRate::parse_str("0mbit").is_err());
    assert_eq!(ByteRate::parse_str("50MB/s").unwrap().0, 50_000_000);
    assert_eq!(ByteRate::parse_str("0").unwrap().0, 0);
    assert!(ByteRate::parse_str("50MB").is_err());
}

#[test]
fn rates_and_sizes_parse_as_users_write_them_and_refusals_suggest_a_spelling() {
    for (text, bits) in [
        ("100Mbps", 100_000_000),
        ("1Gbps", 1_000_000_000),
        ("100 Mbit/s", 100_000_000),
        ("1 GBit", 1_000_000_000),
        ("100mbps", 100_000_000),
        ("10 Gb/s", 10_000_000_000),
        ("500kbit", 500_000),
    ] {
        assert_eq!(BitRate::parse_str(text).unwrap().0, bits, "{text}");
    }
    assert_eq!(Size::parse_str("1 GB").unwrap().0, 1_000_000_000);
    assert_eq!(Size::parse_str("1 GiB").unwrap().0, 1 << 30);
    let bytes = BitRate::parse_str("100MB/s").unwrap_err();
    assert!(
        bytes.contains("bytes") && bytes.contains("`800mbit`"),
        "{bytes}"
    );
    let typo = BitRate::parse_str("100mbti").unwrap_err();
    assert!(typo.contains("did you mean `100mbit`"), "{typo}");
    let far = BitRate::parse_str("100 furlongs").unwrap_err();
    assert!(far.contains("kbit, mbit, gbit"), "{far}");
    let size = Size::parse_str("512MIB").unwrap_err();
    assert!(size.contains("did you mean `512MiB`"), "{size}");
}

#[test]
fn durations_parse_and_print_round_trip() {
    for s in ["300ms", "1s", "100us", "2min", "0.5ms"] {
        let d = Dur::parse_str(s).unwrap();
        assert_eq!(Dur::parse_str(&d.to_string()).unwrap(), d, "{s}");
    }
    assert_eq!(Dur::parse_str("0.5ms").unwrap().0.as_micros(), 500);
}

#[test]
fn percent_rejects_over_100() {
    assert!(Percent::parse_str("101%").is_err());
    assert_eq!(Percent::parse_str("0.1%").unwrap().0, 0.1);
}

proptest::proptest! {
    #[test]
    fn size_display_round_trips(b in 0u64..(1u64 << 50)) {
        let s = Size(b);
        proptest::prop_assert_eq!(Size::parse_str(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn bitrate_display_round_trips(b in 1u64..(1u64 << 44)) {
        let r = BitRate(b);
        proptest::prop_assert_eq!(BitRate::parse_str(&r.to_string()).unwrap(), r);
    }
}
