//! `compare --fail-if`, the CI regression gate, end to end through the
//! built binary on synthetic candidates: the checked-in golden runs
//! (4 groups × 2 repetitions) with some numbers of `runs.jsonl` scaled.

mod common;
use common::golden;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A copy of the golden results in `dir/name` whose records went through
/// `edit` (only `runs.jsonl` and the manifest: the gate reads no more).
fn results_like(dir: &Path, name: &str, edit: impl Fn(&mut Value)) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(golden().join("manifest.json"), out.join("manifest.json")).unwrap();
    let text = std::fs::read_to_string(golden().join("runs.jsonl")).unwrap();
    let mut lines = String::new();
    for l in text.lines() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        edit(&mut v);
        lines.push_str(&v.to_string());
        lines.push('\n');
    }
    std::fs::write(out.join("runs.jsonl"), lines).unwrap();
    out
}

/// Multiply field `key` of every record by `k`.
fn scale(key: &'static str, k: f64) -> impl Fn(&mut Value) {
    move |v| {
        if let Some(x) = v[key].as_f64() {
            v[key] = (x * k).into();
        }
    }
}

fn gate(base: &Path, cand: &Path, args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_migbench-analyze"))
        .arg("compare")
        .arg(base)
        .arg(cand)
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("{stdout}{stderr}");
    (out.status.code().unwrap(), stdout, stderr)
}

#[test]
fn a_clear_slowdown_fails_and_identical_runs_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let base = results_like(tmp.path(), "base", |_| {});
    let slow = results_like(tmp.path(), "slow", |v| {
        scale("total_time_ms", 1.2)(v);
        scale("throughput_mbps", 1.0 / 1.2)(v);
    });
    let (code, out, _) = gate(
        &base,
        &slow,
        &[
            "--fail-if",
            "total_time_ms > +5%",
            "--fail-if",
            "throughput_mbps < 5%",
        ],
    );
    assert_eq!(code, 1, "{out}");
    // One line per check and group (4 groups), then the tally.
    let line = out
        .lines()
        .find(|l| {
            l.starts_with("total_time_ms [dirty_rate=0 link_rate=100mbit]: candidate +20.0 % [")
        })
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with("> +5.0 %: FAIL"), "{line}");
    assert!(line.contains("vs baseline (p="), "{line}");
    let tp = out
        .lines()
        .find(|l| {
            l.starts_with("throughput_mbps [dirty_rate=0 link_rate=1gbit]: candidate -16.7 %")
        })
        .unwrap_or_else(|| panic!("{out}"));
    assert!(tp.ends_with("< -5.0 %: FAIL"), "{tp}");
    assert_eq!(
        out.lines().filter(|l| l.contains("]: candidate")).count(),
        8
    );
    assert!(out.contains("gate: FAIL ("), "{out}");
    // Against itself nothing changes.
    let (code, out, _) = gate(&base, &base, &["--fail-if", "total_time_ms > +5%"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("not significant") && out.contains("gate: ok (4 checks)"),
        "{out}"
    );
}

#[test]
fn a_slowdown_within_the_threshold_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let base = results_like(tmp.path(), "base", |_| {});
    let slower = results_like(tmp.path(), "slower", scale("total_time_ms", 1.03));
    let (code, out, _) = gate(&base, &slower, &["--fail-if", "total_time_ms > +5%"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("FAIL (") && out.contains("gate: ok"), "{out}");
    // A tighter threshold catches it where it is significant (1 Gbit,
    // idle: 1.27 s with 2 ms spread) and not where the spread hides it.
    let (code, out, _) = gate(&base, &slower, &["--fail-if", "total_time_ms > 1%"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "link_rate=1gbit]: candidate +3.0 % [+2.3, +3.7] vs baseline (p=0.003) > +1.0 %: FAIL"
        ),
        "{out}"
    );
    assert!(out.contains("link_rate=100mbit]: candidate +3.0 % [-2.4, +8.4] vs baseline (p=0.138) > +1.0 %: not significant"), "{out}");
    assert!(out.contains("gate: FAIL (1 of 4 checks)"), "{out}");
    // Units convert: there +3 % is +38 ms, printed in the unit named.
    let (code, out, _) = gate(&base, &slower, &["--fail-if", "total_time_s > 300ms"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("[dirty_rate=0 link_rate=1gbit]: candidate +0.04 s [+0.03, +0.05] vs baseline (p=0.003) > +0.30 s: ok"), "{out}");
    let (code, _, _) = gate(&base, &slower, &["--fail-if", "total_time_s > 30ms"]);
    assert_eq!(code, 1);
    let (code, _, _) = gate(&base, &slower, &["--fail-if", "total_time_ms > +30"]);
    assert_eq!(code, 1);
    let (code, _, _) = gate(&base, &slower, &["--fail-if", "total_time_ms > 0.05s"]);
    assert_eq!(code, 0);
}

#[test]
fn an_absolute_threshold_gates_the_difference_of_means() {
    let tmp = tempfile::tempdir().unwrap();
    let base = results_like(tmp.path(), "base", |_| {});
    let worse = results_like(tmp.path(), "worse", |v| {
        let x = v["downtime_probe_ms"].as_f64().unwrap();
        v["downtime_probe_ms"] = (x + 300.0).into();
    });
    let (code, out, _) = gate(&base, &worse, &["--fail-if", "downtime_probe_ms > +20ms"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("candidate +300 ms ["), "{out}");
    // Beyond the data's reach: significant but within.
    let (code, out, _) = gate(&base, &worse, &["--fail-if", "downtime_probe_ms > 1s"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("> +1000 ms: ok"), "{out}");
    // Worse only where the other way is gated: passes.
    let (code, _, _) = gate(&base, &worse, &["--fail-if", "downtime_probe_ms < 20"]);
    assert_eq!(code, 0);
}

#[test]
fn json_gives_one_object_per_check_and_group() {
    let tmp = tempfile::tempdir().unwrap();
    let base = results_like(tmp.path(), "base", |_| {});
    let slow = results_like(tmp.path(), "slow", scale("total_time_ms", 1.2));
    let (code, out, _) = gate(
        &base,
        &slow,
        &[
            "--fail-if",
            "total_time_ms > +5%",
            "--fail-if",
            "passes > 1",
            "--format",
            "json",
            "--group-a",
            "link_rate=1gbit",
            "--group-b",
            "link_rate=1gbit",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let objs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Two checks × the two dirty rates of the pinned link rate.
    assert_eq!(objs.len(), 4, "{out}");
    let o = &objs[0];
    assert_eq!(o["check"], "total_time_ms > +5%");
    assert_eq!(o["group"], "dirty_rate=0");
    assert_eq!(
        (o["op"].as_str(), o["unit"].as_str()),
        (Some(">"), Some("%"))
    );
    assert_eq!(
        (o["baseline_n"].as_u64(), o["candidate_n"].as_u64()),
        (Some(2), Some(2))
    );
    assert!((o["change"].as_f64().unwrap() - 20.0).abs() < 1e-6, "{o}");
    assert!(
        (o["candidate_mean"].as_f64().unwrap() / o["baseline_mean"].as_f64().unwrap() - 1.2).abs()
            < 1e-9
    );
    assert_eq!(
        (o["outcome"].as_str(), o["fail"].as_bool()),
        (Some("fail"), Some(true))
    );
    // passes did not change.
    assert_eq!(objs[2]["metric"], "passes");
    assert_eq!(objs[2]["fail"], false);
}

#[test]
fn too_few_runs_pass_loudly_unless_runs_are_required() {
    let tmp = tempfile::tempdir().unwrap();
    let base = results_like(tmp.path(), "base", |_| {});
    // One repetition: drop every second run.
    let one = tmp.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::copy(base.join("manifest.json"), one.join("manifest.json")).unwrap();
    let text = std::fs::read_to_string(base.join("runs.jsonl")).unwrap();
    let kept: Vec<&str> = text.lines().step_by(2).collect();
    std::fs::write(one.join("runs.jsonl"), kept.join("\n") + "\n").unwrap();
    let (code, out, err) = gate(&base, &one, &["--fail-if", "total_time_ms > +5%"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("too few runs (baseline n=2, candidate n=1): cannot tell"),
        "{out}"
    );
    assert!(err.contains("PASSES UNTESTED"), "{err}");
    assert!(
        out.contains("gate: ok (4 checks, 4 with too few runs)"),
        "{out}"
    );
    let (code, out, _) = gate(
        &base,
        &one,
        &["--fail-if", "total_time_ms > +5%", "--require-runs", "2"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--require-runs 2): FAIL"), "{out}");
    // A metric these runs lack has no runs on either side.
    let (code, out, _) = gate(&base, &base, &["--fail-if", "disk_time_s > 5%"]);
    assert_eq!(code, 0);
    assert!(out.contains("too few runs (n=0): cannot tell"), "{out}");
}

#[test]
fn bad_expressions_exit_2_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let base = results_like(tmp.path(), "base", |_| {});
    for (expr, says) in [
        (
            "colour > 5%",
            "unknown metric `colour`; metrics: total_time_s, downtime_qemu_ms",
        ),
        (
            "total_time_ms > 5parsecs",
            "unit `parsecs` does not fit total_time_ms (a time",
        ),
        (
            "throughput_mbps < 20ms",
            "unit `ms` does not fit throughput_mbps (a bit rate",
        ),
        ("total_time_ms > lots", "does not start with a number"),
        ("total_time_ms = 5%", "no `>` or `<`"),
        ("throughput_mbps < +5%", "points the other way"),
    ] {
        let (code, out, err) = gate(
            &base,
            &base,
            &["--fail-if", "total_time_ms > 5%", "--fail-if", expr],
        );
        assert_eq!(code, 2, "{expr}: {out}{err}");
        assert!(err.contains(&format!("--fail-if {expr:?}: ")), "{err}");
        assert!(err.contains(says), "{expr}: {err}");
        assert!(out.is_empty(), "{out}");
    }
    // Unreadable results cannot be gated either.
    let (code, _, err) = gate(
        &base,
        &tmp.path().join("nothing"),
        &["--fail-if", "passes > 1"],
    );
    assert_eq!(code, 2, "{err}");
    // The gate's flags need one another and a candidate.
    let (code, _, _) = gate(&base, &base, &["--format", "json"]);
    assert_eq!(code, 2);
}

#[test]
fn a_rise_from_a_zero_baseline_without_spread_says_no_spread_not_no_test() {
    // Every baseline run has no probe outage, every candidate run 5 ms:
    // no spread on either side, so any difference counts (and from 0 it
    // is infinitely many percent). The verdict comes from that rule, not
    // from a missing test, and the line must say which.
    let tmp = tempfile::tempdir().unwrap();
    let set = |v: f64| move |r: &mut Value| r["downtime_probe_ms"] = v.into();
    let base = results_like(tmp.path(), "base", set(0.0));
    let cand = results_like(tmp.path(), "cand", set(5.0));
    let (code, out, _) = gate(&base, &cand, &["--fail-if", "downtime_probe_ms > +5%"]);
    assert_eq!(code, 1, "{out}");
    for line in out.lines().filter(|l| l.starts_with("downtime_probe_ms")) {
        assert!(line.contains("(no spread)"), "{line}");
        assert!(!line.contains("no test"), "{line}");
        assert!(line.ends_with("FAIL"), "{line}");
    }
}

#[test]
fn a_candidate_whose_runs_all_failed_fails_the_gate() {
    // Every candidate migration failed: no value to test, but that is
    // the worst regression there is, not "too few repetitions". It
    // passed ("gate: ok", exit 0) before.
    let tmp = tempfile::tempdir().unwrap();
    let fail = |r: &mut Value| {
        r["outcome"] = "failed".into();
        r["error"] = "migration failed".into();
    };
    let base = results_like(tmp.path(), "base", |_| {});
    let broken = results_like(tmp.path(), "broken", fail);
    let (code, out, _) = gate(&base, &broken, &["--fail-if", "total_time_ms > +5%"]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("total_time_ms"))
        .collect();
    assert_eq!(lines.len(), 4, "{out}");
    for l in lines {
        assert!(
            l.contains("2 of 2 candidate runs did not complete (baseline 0 of 2)")
                && l.ends_with("FAIL"),
            "{l}"
        );
    }
    let (code, out, _) = gate(
        &base,
        &broken,
        &["--fail-if", "total_time_ms > +5%", "--format", "json"],
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (v["outcome"].as_str(), v["fail"].as_bool()),
        (Some("incomplete"), Some(true))
    );
    assert_eq!(v["candidate_failed"], 2);
    // Both sides failing alike says nothing about the candidate.
    let also = results_like(tmp.path(), "also", fail);
    let (code, out, _) = gate(&also, &broken, &["--fail-if", "total_time_ms > +5%"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cannot tell"), "{out}");
}

#[test]
fn a_group_pinned_on_one_side_is_matched_on_the_other() {
    // --group-a dirty_rate=0 picks the baseline's idle runs; the candidate
    // (here the very same runs) must be matched by dirty rate too, not
    // pooled over both (that printed "candidate +34.7 %" for identical
    // data: idle against idle and busy).
    let tmp = tempfile::tempdir().unwrap();
    let base = results_like(tmp.path(), "base", |_| {});
    let (code, out, err) = gate(
        &base,
        &base,
        &[
            "--group-a",
            "dirty_rate=0",
            "--fail-if",
            "total_time_ms > +5%",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("total_time_ms"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in lines {
        assert!(l.contains("dirty_rate=0"), "{l}");
        assert!(l.contains("candidate +0.0 %"), "{l}");
    }
    assert!(err.contains("only in the candidate"), "{err}");
}

#[test]
fn a_group_pinned_on_one_side_against_one_value_on_the_other_is_compared() {
    // The baseline has only 100 Mbit runs; --group-b link_rate=1gbit picks
    // the candidate's 1 Gbit runs: one value each, compared per dirty rate.
    let tmp = tempfile::tempdir().unwrap();
    let base = results_like(tmp.path(), "base", |v| {
        v["params"]["link_rate"] = "100mbit".into();
    });
    let cand = results_like(tmp.path(), "cand", |_| {});
    let (code, out, _) = gate(
        &base,
        &cand,
        &[
            "--group-b",
            "link_rate=1gbit",
            "--fail-if",
            "total_time_ms > +5%",
        ],
    );
    assert_ne!(code, 2, "{out}");
    let groups: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("total_time_ms"))
        .map(|l| &l[..l.find(':').unwrap()])
        .collect();
    assert_eq!(
        groups,
        [
            "total_time_ms [dirty_rate=0]",
            "total_time_ms [dirty_rate=5MB/s]"
        ],
        "{out}"
    );
}
