//! migbench's `--by` figures against an independent implementation:
//! `fixtures/meta/crosscheck.py` (scipy and statsmodels' combine_effects)
//! computed `expected.json` from `cases.json` once; every per-combination
//! ratio, interval and degrees of freedom and every pooled figure (mean,
//! HKSJ interval, prediction interval, τ², I², Q) must agree to 1e-6
//! relative. The golden cases are also recomputed from the checked-in runs
//! through `compare --by`, so the extraction is checked too.

use std::path::{Path, PathBuf};

use migbench_analysis::by_dim::{compare_by, pool, ratio, Ratio};
use migbench_analysis::frame::all_runs;
use migbench_analysis::load::load_results;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/meta")
}

fn read(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// `got` equals `want` (null = None) to 1e-6 relative (1e-12 absolute
/// for exact zeros).
fn check(what: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            let tol = 1e-6 * w.abs().max(1e-6);
            assert!((g - w).abs() <= tol, "{what}: migbench {g}, reference {w}");
        }
        (g, _) => panic!("{what}: migbench {g:?}, reference {want}"),
    }
}

fn check_ratio(what: &str, r: Option<&Ratio>, want: &Value) {
    check(&format!("{what} ratio"), r.map(|r| r.ratio), &want["ratio"]);
    check(
        &format!("{what} log_ratio"),
        r.map(|r| r.log_ratio),
        &want["log_ratio"],
    );
    check(&format!("{what} se"), r.and_then(|r| r.se), &want["se"]);
    check(&format!("{what} df"), r.and_then(|r| r.df), &want["df"]);
    check(&format!("{what} lo"), r.and_then(|r| r.lo), &want["lo"]);
    check(&format!("{what} hi"), r.and_then(|r| r.hi), &want["hi"]);
}

fn check_pooled(what: &str, ratios: &[Ratio], want: &Value) {
    let p = pool(ratios);
    if want.is_null() {
        assert!(p.is_none(), "{what}: migbench pooled {p:?}, reference none");
        return;
    }
    let p = p.unwrap_or_else(|| panic!("{what}: migbench did not pool"));
    let method = serde_json::to_value(p.fit.method).unwrap();
    assert_eq!(&method, &want["method"], "{what} method");
    assert_eq!(p.n as u64, want["k"].as_u64().unwrap(), "{what} k");
    let f = |k: &str| format!("{what} pooled {k}");
    check(&f("mu"), Some(p.fit.mu), &want["mu"]);
    check(&f("ratio"), Some(p.ratio), &want["ratio"]);
    check(&f("se"), p.fit.se, &want["se"]);
    check(&f("lo"), p.lo, &want["lo"]);
    check(&f("hi"), p.hi, &want["hi"]);
    check(&f("pi_lo"), p.pi_lo, &want["pi_lo"]);
    check(&f("pi_hi"), p.pi_hi, &want["pi_hi"]);
    check(&f("tau2"), p.fit.tau2, &want["tau2"]);
    check(&f("i2"), p.fit.i2, &want["i2"]);
    check(&f("q"), p.fit.q, &want["q"]);
    if want["method"] == "weighted" {
        check(&f("se_dl"), p.fit.se_dl, &want["se_dl"]);
        check(&f("se_hksj_raw"), p.fit.se_hksj_raw, &want["se_hksj_raw"]);
    }
    check(&f("ratio_min"), Some(p.range.0), &want["ratio_min"]);
    check(&f("ratio_max"), Some(p.range.1), &want["ratio_max"]);
}

#[test]
fn by_dimension_figures_equal_the_scipy_statsmodels_reference() {
    let cases = read("cases.json");
    let expected = read("expected.json");
    let cases = cases["cases"].as_array().unwrap();
    let expected = expected["cases"].as_array().unwrap();
    assert_eq!(cases.len(), expected.len());
    assert!(
        cases.len() >= 10,
        "the reference covers {} cases",
        cases.len()
    );
    for (case, want) in cases.iter().zip(expected) {
        let name = case["name"].as_str().unwrap();
        assert_eq!(want["name"], case["name"]);
        let mut ratios = Vec::new();
        for (comb, w) in case["combinations"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want["combinations"].as_array().unwrap())
        {
            let what = format!("{name} / {}", comb["name"].as_str().unwrap());
            let r = ratio(&floats(&comb["a"]), &floats(&comb["b"]));
            check_ratio(&what, r.as_ref(), w);
            ratios.extend(r);
        }
        check_pooled(name, &ratios, &want["pooled"]);
    }
}

#[test]
fn compare_by_on_the_golden_runs_equals_the_reference() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden/results");
    let sets = vec![load_results(&golden).unwrap()];
    let runs = all_runs(&sets);
    let cmps = compare_by(&runs, "link_rate", Some("100mbit"), Some("1gbit")).unwrap();
    assert_eq!(cmps.len(), 1);
    let c = &cmps[0];
    let expected = read("expected.json");
    for metric in ["total_time_s", "downtime_qemu_ms"] {
        let want = expected["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == format!("golden-{metric}"))
            .unwrap_or_else(|| panic!("no golden-{metric} in the reference"));
        for w in want["combinations"].as_array().unwrap() {
            let cell = c
                .cells
                .iter()
                .find(|cell| cell.others == w["name"].as_str().unwrap())
                .unwrap_or_else(|| panic!("no combination {}", w["name"]));
            let r = cell
                .rows
                .iter()
                .find(|r| r.metric == metric)
                .and_then(|r| r.ratio);
            check_ratio(&format!("golden {metric} {}", w["name"]), r.as_ref(), w);
        }
        let (_, _, p) = c
            .pooled
            .iter()
            .find(|(m, _, _)| *m == metric)
            .unwrap_or_else(|| panic!("{metric} not pooled"));
        let ratios: Vec<Ratio> = c
            .cells
            .iter()
            .filter_map(|cell| cell.rows.iter().find(|r| r.metric == metric)?.ratio)
            .collect();
        assert_eq!(pool(&ratios).as_ref(), Some(p));
        check_pooled(&format!("golden {metric}"), &ratios, &want["pooled"]);
    }
}
