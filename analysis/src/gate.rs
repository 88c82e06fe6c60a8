//! `compare BASELINE CANDIDATE --fail-if EXPR`: a regression gate for CI.
//!
//! Each `--fail-if` is a check, `METRIC > THRESHOLD` (fail when the
//! candidate is higher than the baseline: times, downtimes) or
//! `METRIC < THRESHOLD` (fail when it is lower: throughput). A check fails
//! when both hold:
//!
//! - the difference of the means is statistically significant: Welch's
//!   t-test at 95 %, two-sided, [`crate::stats::compare`] on the raw values
//!   — the same test, p-value and verdict the `compare` table prints;
//! - the difference (candidate mean − baseline mean) is beyond the
//!   threshold in the operator's direction.
//!
//! A relative threshold (`+5%`) is the ratio of means: the difference over
//! the baseline mean, and its interval the Welch interval of the
//! difference over the baseline mean (which ignores the baseline mean's
//! own uncertainty). Not a test on logarithms: that needs positive values,
//! and counts, slowdowns and outages can be 0; and the significance stays
//! the one the `compare` table shows. `%` is always relative; a metric that
//! is itself a percentage (`*_pct`) takes an absolute change in points
//! (`+5pp`, or a plain `5`). An absolute threshold is a number with a unit
//! that fits the metric (`+20ms`, `2s`, `10MB/s`, `50mbit`, `64MiB`) or a
//! plain number in the metric's unit. An unsigned threshold points the
//! operator's way (`< 5%` is `< -5%`); a sign against it is an error.
//!
//! Metrics are [`METRICS`]' names, as in `summary.csv`; times can be named
//! in either unit (`total_time_ms` is `total_time_s` × 1000, and the
//! verdict is printed in the unit named).
//!
//! Runs are compared group by group: the groups of the dimensions that
//! vary in either results directory (less those both `--group-a` and
//! `--group-b` pin, or one pins and the other side has one value of),
//! matched by their labels, so a 100 Mbit run is never
//! compared with a 1 Gbit one (nor, with `--group-a dirty_rate=0` alone,
//! an idle baseline with a candidate pooled over all dirty rates). A group only one side has is named in a warning and
//! not gated.
//!
//! Too few runs: Welch's test needs two completed runs on each side. With
//! fewer the check cannot tell; it passes (fail-open, so a CI job with one
//! repetition is not blocked by an untestable check) with a warning on
//! stderr. `--require-runs N` (N ≥ 2) makes a check with fewer than N runs
//! on either side fail instead. Too few values because candidate runs
//! failed, timed out or were aborted (a larger share of them than of the
//! baseline's) is no lack of repetitions but a regression: the check fails
//! ("2 of 2 candidate runs did not complete"), with or without
//! `--require-runs`.
//!
//! Exit status: 1 if any check fails, 0 if none does, 2 if the gate
//! cannot be evaluated (a bad expression, named with its flag; unreadable
//! results; groups that do not match).

use std::fmt::Write as _;
use std::path::Path;

use migbench_model::RunRecord;
use serde::Serialize;

use crate::compare::Side;
use crate::dims::{completed_value, Dim, DIMS};
use crate::export::num;
use crate::frame::{all_runs, varying};
use crate::load::{load_results, ResultsSet};
use crate::stats::{compare, finite, mean_sd};

mod expr;
mod run;
pub use expr::*;
pub use run::{pair_groups, run};

/// The gate's flags on `compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// Regression gate for CI: fail (exit 1) when a metric got
    /// significantly worse by more than a threshold, e.g. "total_time_ms >
    /// +5%" (repeatable).
    ///
    /// With --fail-if, compare prints one verdict per check (per group of
    /// runs both sides have) instead of its table, writes no page, and
    /// exits 1 if a check fails, 0 if none does, 2 if an expression or the
    /// results are unusable.
    ///
    /// EXPR is `METRIC > THRESHOLD` (fail when the candidate, B, is higher
    /// than the baseline, A: times, downtimes) or `METRIC < THRESHOLD`
    /// (fail when it is lower: throughput). A check fails when Welch's
    /// t-test finds the difference of the means significant at 95 % (the
    /// compare table's test) AND the difference is beyond the threshold.
    ///
    /// THRESHOLD is relative, `+5%` (ratio of means: the difference over
    /// the baseline mean; the significance is still the test on the raw
    /// values), or absolute in a unit that fits the metric (`+20ms`, `2s`,
    /// `10MB/s`, `50mbit`, `64MiB`; points for `*_pct` metrics: `3pp`) or a
    /// plain number in the metric's unit. Unsigned means the operator's
    /// way: `< 5%` is `< -5%`.
    ///
    /// METRIC is a summary metric (total_time_s, downtime_probe_ms,
    /// throughput_mbps, ...: an unknown name lists them); a time can be
    /// named in s or ms (total_time_ms).
    ///
    /// Runs are compared group by group (the dimensions that vary, less
    /// those both --group-a and --group-b pin, or one pins and the other
    /// side has one value of), a verdict line per check
    /// and group; a group only one side has is not gated (a warning names
    /// it).
    ///
    /// Fewer than 2 completed runs on a side cannot be tested: the check
    /// passes with a warning ("too few runs (n=1): cannot tell"), unless
    /// --require-runs, or unless candidate runs failed, timed out or were
    /// aborted more often than the baseline's: then it fails ("2 of 2
    /// candidate runs did not complete").
    ///
    /// Example: migbench compare results/quick/base results/quick/new
    /// --fail-if "total_time_ms > +5%" --fail-if "downtime_probe_ms >
    /// +20ms" --fail-if "throughput_mbps < -5%"
    #[arg(
        long = "fail-if",
        value_name = "EXPR",
        requires = "b",
        conflicts_with_all = ["by", "predicted"],
    )]
    pub fail_if: Vec<String>,
    /// With --fail-if: print verdicts as text lines or as JSON, one object
    /// per line per check and group.
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "text",
        value_parser = ["text", "json"],
        requires = "fail_if",
    )]
    pub format: String,
    /// With --fail-if: a check with fewer than N completed runs on either
    /// side fails (instead of passing with a warning). At least 2.
    #[arg(
        long,
        value_name = "N",
        requires = "fail_if",
        value_parser = clap::value_parser!(u32).range(2..),
    )]
    pub require_runs: Option<u32>,
}

/// The outcome of one check in one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Significantly worse by more than the threshold.
    Fail,
    /// Significantly different, but within the threshold or better.
    Ok,
    /// No significant difference.
    NotSignificant,
    /// Fewer runs than the test (or --require-runs) needs.
    TooFewRuns,
    /// Too few values because candidate runs did not complete (failed,
    /// timed out, aborted) more often than the baseline's: a regression
    /// in itself, so the check fails.
    Incomplete,
}

/// One check's verdict in one group (`--format json` prints these).
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The `--fail-if` expression.
    pub check: String,
    /// The metric as named.
    pub metric: String,
    /// The group (`dim=label ...`), when the runs are grouped.
    pub group: Option<String>,
    /// `>` or `<`.
    pub op: &'static str,
    /// Signed threshold in `unit`.
    pub threshold: f64,
    /// `%` (relative to the baseline mean) or the metric's unit.
    pub unit: &'static str,
    /// Completed runs with a value, baseline.
    pub baseline_n: usize,
    /// Likewise, candidate.
    pub candidate_n: usize,
    /// Baseline runs of the group, completed or not.
    pub baseline_runs: usize,
    /// Likewise, candidate.
    pub candidate_runs: usize,
    /// Baseline runs of the group that failed, timed out or were aborted.
    pub baseline_failed: usize,
    /// Likewise, candidate.
    pub candidate_failed: usize,
    /// Baseline mean in the metric's (named) unit.
    pub baseline_mean: Option<f64>,
    /// Candidate mean.
    pub candidate_mean: Option<f64>,
    /// Candidate − baseline in `unit`.
    pub change: Option<f64>,
    /// 95 % interval of the change, lower bound.
    pub ci_lo: Option<f64>,
    /// Upper bound.
    pub ci_hi: Option<f64>,
    /// Welch's two-sided p-value (`None`: too few runs, or no spread on
    /// either side, when any difference counts as significant).
    pub p_value: Option<f64>,
    /// p < 0.05.
    pub significant: bool,
    /// The verdict.
    pub outcome: Outcome,
    /// Whether this check fails the gate.
    pub fail: bool,
}

/// Runs that failed, timed out or were aborted (not those the operator
/// interrupted).
fn failed(runs: &[&RunRecord]) -> usize {
    use migbench_model::Outcome as O;
    runs.iter()
        .filter(|r| matches!(r.outcome, O::Failed | O::TimedOut | O::Aborted))
        .count()
}

/// Evaluate a check on one group's runs.
pub fn evaluate(
    check: &Check,
    group: Option<&str>,
    baseline: &[&RunRecord],
    candidate: &[&RunRecord],
    require_runs: Option<u32>,
) -> Verdict {
    let values = |runs: &[&RunRecord]| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| completed_value(check.metric.metric, r))
            .map(|v| v * check.metric.scale)
            .filter(|v| v.is_finite())
            .collect()
    };
    let (va, vb) = (values(baseline), values(candidate));
    let mean = |v: &[f64]| mean_sd(v).map(|(m, _)| m);
    let (ma, mb) = (mean(&va), mean(&vb));
    let mut v = Verdict {
        check: check.expr.clone(),
        metric: check.metric.name.clone(),
        group: group.map(str::to_string),
        op: check.op.symbol(),
        threshold: check.threshold,
        unit: check.unit(),
        baseline_n: va.len(),
        candidate_n: vb.len(),
        baseline_runs: baseline.len(),
        candidate_runs: candidate.len(),
        baseline_failed: failed(baseline),
        candidate_failed: failed(candidate),
        baseline_mean: ma,
        candidate_mean: mb,
        change: None,
        ci_lo: None,
        ci_hi: None,
        p_value: None,
        significant: false,
        outcome: Outcome::TooFewRuns,
        fail: false,
    };
    let need = require_runs.map_or(2, |n| n.max(2) as usize);
    // Untestable because candidate runs did not complete (more often than
    // the baseline's): that is the regression, not a lack of repetitions.
    let share = |f: usize, runs: &[&RunRecord]| f as f64 / runs.len().max(1) as f64;
    let too_few = |v: &mut Verdict| {
        if v.candidate_failed > 0
            && share(v.candidate_failed, candidate) > share(v.baseline_failed, baseline)
        {
            v.outcome = Outcome::Incomplete;
            v.fail = true;
        } else {
            v.fail = require_runs.is_some();
        }
    };
    let (Some(ma), Some(c)) = (ma, compare(&va, &vb)) else {
        too_few(&mut v);
        return v;
    };
    // The change in the threshold's terms.
    let to = |x: f64| {
        if !check.relative {
            x
        } else if ma != 0.0 {
            100.0 * x / ma.abs()
        } else if x == 0.0 {
            0.0
        } else {
            x.signum() * f64::INFINITY
        }
    };
    v.change = Some(to(c.diff)).filter(|x| !x.is_nan());
    if va.len().min(vb.len()) < need {
        too_few(&mut v);
        return v;
    }
    v.ci_lo = finite(to(c.ci_lo));
    v.ci_hi = finite(to(c.ci_hi));
    v.p_value = c.p_value;
    v.significant = c.significant;
    let change = to(c.diff);
    let beyond = match check.op {
        Op::Above => change > check.threshold,
        Op::Below => change < check.threshold,
    };
    v.outcome = match (c.significant, beyond) {
        (true, true) => Outcome::Fail,
        (true, false) => Outcome::Ok,
        (false, _) => Outcome::NotSignificant,
    };
    v.fail = v.outcome == Outcome::Fail;
    v
}

/// Signed compact number.
fn signed(v: f64, relative: bool) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+inf".into()
        } else {
            "-inf".into()
        };
    }
    let s = if relative {
        format!("{:.1}", v.abs())
    } else {
        num(v.abs())
    };
    format!("{}{s}", if v < 0.0 { "-" } else { "+" })
}

fn with_unit(s: String, unit: &str) -> String {
    if unit.is_empty() {
        s
    } else {
        format!("{s} {unit}")
    }
}

impl Verdict {
    /// `total_time_ms: candidate +7.9 % [+3.1, +12.8] vs baseline (p=0.003) > +5 %: FAIL`.
    pub fn line(&self, require_runs: Option<u32>) -> String {
        let rel = self.unit == "%";
        let mut s = self.metric.clone();
        if let Some(g) = &self.group {
            let _ = write!(s, " [{g}]");
        }
        s.push_str(": ");
        let threshold = with_unit(signed(self.threshold, rel), self.unit);
        if self.outcome == Outcome::Incomplete {
            let _ = write!(
                s,
                "{} of {} candidate runs did not complete (baseline {} of {}): FAIL",
                self.candidate_failed,
                self.candidate_runs,
                self.baseline_failed,
                self.baseline_runs
            );
            return s;
        }
        if self.outcome == Outcome::TooFewRuns {
            let n = if self.baseline_n == self.candidate_n {
                format!("n={}", self.baseline_n)
            } else {
                format!(
                    "baseline n={}, candidate n={}",
                    self.baseline_n, self.candidate_n
                )
            };
            let _ = match require_runs {
                Some(r) => write!(s, "too few runs ({n}, --require-runs {r}): FAIL"),
                None => write!(s, "too few runs ({n}): cannot tell"),
            };
            return s;
        }
        let change = self.change.unwrap_or(f64::NAN);
        let _ = write!(s, "candidate {}", with_unit(signed(change, rel), self.unit));
        if let (Some(lo), Some(hi)) = (self.ci_lo, self.ci_hi) {
            if lo != hi {
                let _ = write!(s, " [{}, {}]", signed(lo, rel), signed(hi, rel));
            }
        }
        let p = match self.p_value {
            Some(p) if p < 0.001 => "p<0.001".to_string(),
            Some(p) => format!("p={p:.3}"),
            // No spread on either side (any difference is real: the only
            // way to be significant without a p-value, even when the
            // interval, relative to a zero baseline, is infinite), or
            // values too large to test.
            None if self.significant || self.ci_lo.is_some() => "no spread".to_string(),
            None => "no test".to_string(),
        };
        let verdict = match self.outcome {
            Outcome::Fail => "FAIL",
            Outcome::Ok => "ok",
            _ => "not significant",
        };
        let _ = write!(s, " vs baseline ({p}) {} {threshold}: {verdict}", self.op);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_into_the_named_unit() {
        let c = Check::parse("total_time_ms > +5%").unwrap();
        assert_eq!((c.op, c.threshold, c.relative), (Op::Above, 5.0, true));
        assert_eq!(c.metric.scale, 1e3);
        let c = Check::parse("total_time_ms>2s").unwrap();
        assert_eq!((c.threshold, c.relative), (2000.0, false));
        let c = Check::parse("total_time_s > 250ms").unwrap();
        assert_eq!(c.threshold, 0.25);
        let c = Check::parse("downtime_probe_ms > 20").unwrap();
        assert_eq!(c.threshold, 20.0);
        let c = Check::parse("throughput_mbps < 10MB/s").unwrap();
        assert_eq!((c.op, c.threshold), (Op::Below, -80.0));
        let c = Check::parse("throughput_mbps < -1gbit").unwrap();
        assert_eq!(c.threshold, -1000.0);
        let c = Check::parse("disk_mib > 1GiB").unwrap();
        assert_eq!(c.threshold, 1024.0);
        let c = Check::parse("workload_slowdown_pct > 3pp").unwrap();
        assert_eq!(c.threshold, 3.0);
        let c = Check::parse("passes > 0").unwrap();
        assert_eq!(c.threshold, 0.0);
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let err = |e: &str| Check::parse(e).unwrap_err();
        assert!(err("colour > 5%").contains("unknown metric `colour`; metrics: total_time_s"));
        assert!(err("total_time_s 5%").contains("no `>` or `<`"));
        assert!(err("total_time_s >= 5%").contains("only `>` and `<`"));
        assert!(err("total_time_s > fast").contains("does not start with a number"));
        assert!(err("total_time_s > 5parsecs").contains("unit `parsecs` does not fit"));
        assert!(err("throughput_mbps < 20ms").contains("a bit rate"));
        assert!(err("passes > 1s").contains("a plain number"));
        assert!(err("total_time_s > -5%").contains("points the other way"));
        assert!(err("throughput_mbps < +5%").contains("points the other way"));
        assert!(err("workload_slowdown_pct > 5%").contains("`+5pp`"));
        assert!(err("total_time_s >").contains("no threshold"));
    }
}
