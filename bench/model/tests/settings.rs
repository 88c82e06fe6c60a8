//! Migration settings parse and print back in the same notation.

use migbench_model::scalar::ScalarField;
use migbench_model::settings::*;

#[test]
fn knobs_parse_and_print_round_trip() {
    for s in ["off", "4"] {
        assert_eq!(Channels::parse_str(s).unwrap().to_string(), s);
    }
    assert!(Channels::parse_str("0").is_err());
    assert_eq!(Channels::parse_int(8).unwrap(), Channels::On(8));
    for s in ["off", "32MiB"] {
        assert_eq!(Xbzrle::parse_str(s).unwrap().to_string(), s);
    }
    assert!(Xbzrle::parse_str("3MiB")
        .unwrap_err()
        .contains("power of two"));
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
    for s in [
        "off",
        "allowed",
        "after 1 pass",
        "after 3 passes",
        "after 20s",
    ] {
        assert_eq!(Postcopy::parse_str(s).unwrap().to_string(), s);
    }
    assert!(Postcopy::parse_str("after 0 passes").is_err());
    assert!(Postcopy::parse_str("soon").is_err());
    let a = Announce::parse_str("initial=10ms,rounds=3").unwrap();
    assert_eq!(a.rounds, Some(3));
    assert_eq!(Announce::parse_str(&a.to_string()).unwrap(), a);
    assert_eq!(
        Announce::parse_str("default").unwrap().to_string(),
        "default"
    );
    assert!(Announce::parse_str("rounds=0").is_err());
    assert!(Announce::parse_str("often=1")
        .unwrap_err()
        .contains("unknown key"));
    assert_eq!(
        DirtyLimit::parse_str("10MB/s").unwrap().to_string(),
        "10MB/s"
    );
    assert!(DirtyLimit::parse_str("10kB/s").is_err());
    assert!(Compression::parse_str("lz4").is_err());
}
