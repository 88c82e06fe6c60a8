//! Migration settings parse and print back in the same notation.

use migbench_model::scalar::ScalarField;
use migbench_model::settings::*;

/// Each of `cases` parses and prints back as written.
fn round_trips<T: ScalarField + ToString>(cases: &[&str]) {
    for s in cases {
        assert_eq!(T::parse_str(s).unwrap().to_string(), *s);
    }
}

/// `s` is refused with `needle` in the message.
fn refused<T: ScalarField + std::fmt::Debug>(s: &str, needle: &str) {
    let e = T::parse_str(s).unwrap_err();
    assert!(e.contains(needle), "{s}: {e}");
}

#[test]
fn knobs_parse_and_print_round_trip() {
    round_trips::<Channels>(&["off", "4"]);
    assert!(Channels::parse_str("0").is_err());
    assert_eq!(Channels::parse_int(8).unwrap(), Channels::On(8));
    round_trips::<Xbzrle>(&["off", "32MiB"]);
    refused::<Xbzrle>("3MiB", "power of two");
    assert_eq!(
        AutoConverge::parse_str("on").unwrap().to_string(),
        "20/10/99"
    );
    assert_eq!(
        AutoConverge::parse_str("30%/20%/90%").unwrap(),
        AutoConverge::On {
            initial: 30,
            increment: 20,
            max: 90
        }
    );
    assert!(AutoConverge::parse_str("50/10/40").is_err());
    assert!(AutoConverge::parse_str("0/10/99").is_err());
    round_trips::<Postcopy>(&[
        "off",
        "allowed",
        "after 1 pass",
        "after 3 passes",
        "after 20s",
    ]);
    assert!(Postcopy::parse_str("after 0 passes").is_err());
    assert!(Postcopy::parse_str("soon").is_err());
    let a = Announce::parse_str("initial=10ms,rounds=3").unwrap();
    assert_eq!(a.rounds, Some(3));
    assert_eq!(Announce::parse_str(&a.to_string()).unwrap(), a);
    round_trips::<Announce>(&["default"]);
    assert!(Announce::parse_str("rounds=0").is_err());
    refused::<Announce>("often=1", "unknown key");
    round_trips::<DirtyLimit>(&["off", "10MB/s"]);
    assert!(DirtyLimit::parse_str("10kB/s").is_err());
    assert!(Compression::parse_str("lz4").is_err());
}
