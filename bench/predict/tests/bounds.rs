//! Bounded work: a matrix is sized with checked arithmetic before it is
//! expanded, and one above the limits is refused with its factors, their
//! product and the flag that raises the limit — never an allocation
//! failure.

use std::path::Path;

use migbench_model::matrix::{size, Limits};
use migbench_model::{expand, Scenario};
use migbench_predict::plan::{expand_bounded, matrix_secs};
use proptest::prelude::*;

fn parse(text: &str) -> Scenario {
    Scenario::parse(Path::new("big.toml"), text).unwrap()
}

const BASE: &str = "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n";

fn list(n: usize, item: impl Fn(usize) -> String) -> String {
    let items: Vec<String> = (0..n).map(item).collect();
    format!("[{}]", items.join(", "))
}

#[test]
fn a_billion_repetitions_are_refused_before_expansion_naming_the_factors() {
    let sc = parse(
        "repetitions = 1000000000\n[guest]\nram = \"256MiB\"\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n",
    );
    let e = expand_bounded(&sc, &Limits::default()).unwrap_err().0;
    assert!(e.contains("2000000000 runs"), "{e}");
    assert!(e.contains("link.rate 2 × repetitions 1000000000"), "{e}");
    assert!(e.contains("limit of 10000"), "{e}");
    assert!(e.contains("`--max-runs 2000000000`"), "{e}");
}

/// Ten lists of twenty values, a billion repetitions and two variants: a
/// product beyond `u64`, counted without overflow.
fn twenty_of_everything() -> String {
    let mut t = String::from("repetitions = 1000000000\n");
    t += &format!(
        "[guest]\nram = {}\n",
        list(20, |i| format!("\"{}MiB\"", 256 + i))
    );
    t += &format!(
        "[link]\nrate = {}\n",
        list(20, |i| format!("\"{}mbit\"", 100 + i))
    );
    t += &format!(
        "[workload]\ndirty_rate = {}\nworking_set = {}\n",
        list(20, |i| format!("\"{}MB/s\"", 1 + i)),
        list(20, |i| format!("\"{}MiB\"", 1 + i))
    );
    t += &format!(
        "[migration]\ndowntime_limit = {}\nmultifd_channels = {}\nmax_bandwidth = {}\n",
        list(20, |i| format!("\"{}ms\"", 100 + i)),
        list(20, |i| format!("{}", 1 + i)),
        list(20, |i| format!("\"{}MB/s\"", 1 + i))
    );
    t += &format!(
        "[probe]\ninterval = {}\n",
        list(20, |i| format!("\"{}ms\"", 1 + i))
    );
    t += &format!(
        "[policy]\ndowntime_steps = {}\n",
        list(20, |i| format!("{}", 1 + i))
    );
    t += "[[variant]]\nname = \"a\"\n[[variant]]\nname = \"b\"\n[variant.migration]\npostcopy = [\"off\", \"allowed\"]\n";
    t
}

#[test]
fn a_product_beyond_u64_is_refused_not_wrapped() {
    let sc = parse(&twenty_of_everything());
    assert_eq!(size(&sc).runs, None);
    let e = expand_bounded(&sc, &Limits::default()).unwrap_err().0;
    assert!(e.contains("more runs than can be counted"), "{e}");
    assert!(e.contains("guest.ram 20 × "), "{e}");
    assert!(e.contains("variants (a 160000 + b 320000) 480000"), "{e}");
    assert!(e.contains("repetitions 1000000000"), "{e}");
    // Even the largest limit does not expand it.
    let all = Limits {
        max_runs: u64::MAX,
        max_secs: f64::INFINITY,
    };
    assert!(expand_bounded(&sc, &all).is_err());
}

#[test]
fn the_run_limit_is_inclusive_and_raised_by_its_flag() {
    let sc = parse(&format!("repetitions = 5\n{BASE}"));
    let at = Limits {
        max_runs: 5,
        ..Limits::default()
    };
    assert_eq!(expand_bounded(&sc, &at).unwrap().len(), 5);
    let below = Limits {
        max_runs: 4,
        ..Limits::default()
    };
    let e = expand_bounded(&sc, &below).unwrap_err().0;
    assert!(e.contains("5 runs, more than the limit of 4"), "{e}");
    assert!(e.contains("`--max-runs 5`"), "{e}");
}

#[test]
fn a_matrix_estimated_above_the_duration_limit_is_refused() {
    let sc = parse(&format!("repetitions = 3\n{BASE}"));
    let runs = expand(&sc);
    let secs = matrix_secs(&runs);
    let tight = Limits {
        max_secs: secs - 1.0,
        ..Limits::default()
    };
    let e = expand_bounded(&sc, &tight).unwrap_err().0;
    assert!(e.contains("3 runs would take about"), "{e}");
    assert!(e.contains("`--max-duration "), "{e}");
    let enough = Limits {
        max_secs: secs,
        ..Limits::default()
    };
    assert_eq!(expand_bounded(&sc, &enough).unwrap(), runs);
}

#[test]
fn a_seven_day_default_refuses_a_week_of_runs() {
    // 10,000 runs of a 60 s timeout that never converges: about 7.8 days.
    let sc = parse(
        "repetitions = 10000\n[guest]\nram = \"1GiB\"\n[workload]\ndirty_rate = \"50MB/s\"\n[link]\nrate = \"100mbit\"\n[migration]\ntimeout = \"60s\"\n",
    );
    let e = expand_bounded(&sc, &Limits::default()).unwrap_err().0;
    assert!(
        e.contains("days (estimated), more than the limit of 7.0 days"),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The size computed without expanding is the expansion's length.
    #[test]
    fn the_counted_size_is_the_expanded_length(
        rams in 1usize..4, rates in 1usize..4, limits in 1usize..4,
        steps in 1usize..3, reps in 1u32..4, variants in 0usize..3,
    ) {
        let mut t = format!("repetitions = {reps}\n");
        t += &format!("[guest]\nram = {}\n", list(rams, |i| format!("\"{}MiB\"", 256 + i)));
        t += &format!("[link]\nrate = {}\n", list(rates, |i| format!("\"{}mbit\"", 100 + i)));
        t += &format!("[migration]\ndowntime_limit = {}\n", list(limits, |i| format!("\"{}ms\"", 100 + i)));
        t += &format!("[policy]\ndowntime_steps = {}\n", list(steps, |i| format!("{i}")));
        for v in 0..variants {
            t += &format!("[[variant]]\nname = \"v{v}\"\n[variant.migration]\ndowntime_limit = {}\n",
                list(v + 1, |i| format!("\"{}ms\"", 200 + i)));
        }
        let sc = parse(&t);
        let runs = expand(&sc);
        prop_assert_eq!(size(&sc).runs, Some(runs.len() as u64));
        prop_assert_eq!(expand_bounded(&sc, &Limits::default()).unwrap(), runs);
    }
}
