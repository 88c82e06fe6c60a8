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

use migbench_model::scalar::ScalarField;
use migbench_model::units::{BitRate, ByteRate, Size};
use migbench_model::RunRecord;
use serde::Serialize;

use crate::compare::Side;
use crate::dims::{completed_value, Dim, Metric, DIMS, METRICS};
use crate::export::num;
use crate::frame::{all_runs, varying};
use crate::load::{load_results, ResultsSet};
use crate::stats::compare;

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

/// Which way a check fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The candidate higher than the baseline.
    Above,
    /// The candidate lower.
    Below,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Above => ">",
            Op::Below => "<",
        }
    }
}

/// What a metric measures, for the units a threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Seconds,
    Millis,
    Mbps,
    Mib,
    Points,
    Plain,
}

impl Kind {
    fn of(name: &str) -> Kind {
        if name.ends_with("_ms") {
            Kind::Millis
        } else if name.ends_with("_s") {
            Kind::Seconds
        } else if name.ends_with("_mbps") {
            Kind::Mbps
        } else if name.ends_with("_mib") {
            Kind::Mib
        } else if name.ends_with("_pct") {
            Kind::Points
        } else {
            Kind::Plain
        }
    }

    /// Unit as printed after a value.
    fn unit(self) -> &'static str {
        match self {
            Kind::Seconds => "s",
            Kind::Millis => "ms",
            Kind::Mbps => "Mbit/s",
            Kind::Mib => "MiB",
            Kind::Points => "pp",
            Kind::Plain => "",
        }
    }

    /// What it is and which units fit, for errors.
    fn describe(self) -> &'static str {
        match self {
            Kind::Seconds | Kind::Millis => "a time: use us, ms, s or min",
            Kind::Mbps => "a bit rate: use kbit, mbit, gbit (or Mbit/s, Mbps), or a byte rate such as MB/s, MiB/s",
            Kind::Mib => "a size: use B, KiB, MiB, GiB, kB, MB, GB",
            Kind::Points => "a percentage: give the change in points, `pp` or a plain number",
            Kind::Plain => "a plain number: give no unit",
        }
    }

    /// The metric's units per one `unit`, or `None` if the unit does not fit.
    fn factor(self, unit: &str) -> Option<f64> {
        let time_ms = || -> Option<f64> {
            Some(match unit {
                "ns" => 1e-6,
                "us" | "µs" => 1e-3,
                "ms" => 1.0,
                "s" => 1e3,
                "min" => 60e3,
                "h" => 3600e3,
                _ => return None,
            })
        };
        match self {
            Kind::Millis => time_ms(),
            Kind::Seconds => time_ms().map(|f| f / 1e3),
            Kind::Mbps => {
                let one = format!("1{unit}");
                BitRate::parse_str(&one)
                    .map(|b| b.0 as f64 / 1e6)
                    .or_else(|_| ByteRate::parse_str(&one).map(|b| b.0 as f64 * 8.0 / 1e6))
                    .ok()
            }
            Kind::Mib => Size::parse_str(&format!("1{unit}"))
                .ok()
                .map(|b| b.0 as f64 / 1048576.0),
            Kind::Points => (unit == "pp").then_some(1.0),
            Kind::Plain => None,
        }
    }
}

/// A metric as the user named it.
#[derive(Clone)]
struct Named {
    /// The name typed.
    name: String,
    /// The metric.
    metric: &'static Metric,
    /// Typed-unit values per metric value (1000 for `total_time_ms`).
    scale: f64,
    kind: Kind,
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Named")
            .field("name", &self.name)
            .field("metric", &self.metric.name)
            .field("scale", &self.scale)
            .finish()
    }
}

fn resolve(name: &str) -> Result<Named, String> {
    let named = |metric: &'static Metric, scale| Named {
        name: name.to_string(),
        metric,
        scale,
        kind: Kind::of(name),
    };
    if let Some(m) = crate::dims::metric(name) {
        return Ok(named(m, 1.0));
    }
    if let Some(m) = name
        .strip_suffix("_ms")
        .and_then(|stem| crate::dims::metric(&format!("{stem}_s")))
    {
        return Ok(named(m, 1e3));
    }
    if let Some(m) = name
        .strip_suffix("_s")
        .and_then(|stem| crate::dims::metric(&format!("{stem}_ms")))
    {
        return Ok(named(m, 1e-3));
    }
    let names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    Err(format!(
        "unknown metric `{name}`; metrics: {} (a time in s can be named in ms too, e.g. total_time_ms)",
        names.join(", ")
    ))
}

/// One parsed `--fail-if`.
#[derive(Debug, Clone)]
pub struct Check {
    /// The expression as given.
    pub expr: String,
    metric: Named,
    /// Direction.
    pub op: Op,
    /// Signed threshold: percent when `relative`, else in the typed metric's unit.
    pub threshold: f64,
    /// A relative (`%`) threshold.
    pub relative: bool,
}

impl Check {
    /// Parse `METRIC > THRESHOLD` / `METRIC < THRESHOLD`.
    pub fn parse(expr: &str) -> Result<Check, String> {
        let Some(at) = expr.find(['<', '>']) else {
            return Err("no `>` or `<`: write METRIC > THRESHOLD or METRIC < THRESHOLD, e.g. \"total_time_ms > +5%\"".into());
        };
        let op = if expr[at..].starts_with('>') {
            Op::Above
        } else {
            Op::Below
        };
        let (name, rest) = (expr[..at].trim(), expr[at + 1..].trim());
        if rest.starts_with(['=', '<', '>']) {
            return Err(format!(
                "only `>` and `<` compare (a change exactly at the threshold passes), not `{}{}`",
                op.symbol(),
                &rest[..1]
            ));
        }
        if name.is_empty() {
            return Err("no metric before the operator".into());
        }
        let metric = resolve(name)?;
        let (threshold, relative) = parse_threshold(rest, op, &metric)?;
        Ok(Check {
            expr: expr.to_string(),
            metric,
            op,
            threshold,
            relative,
        })
    }

    /// The metric's name as typed.
    pub fn metric_name(&self) -> &str {
        &self.metric.name
    }

    /// Unit of changes and threshold: `%` or the metric's.
    fn unit(&self) -> &'static str {
        if self.relative {
            "%"
        } else {
            self.metric.kind.unit()
        }
    }
}

fn parse_threshold(text: &str, op: Op, m: &Named) -> Result<(f64, bool), String> {
    if text.is_empty() {
        return Err("no threshold after the operator".into());
    }
    let (sign, body) = match text.as_bytes()[0] {
        b'+' => (Some(1.0), text[1..].trim_start()),
        b'-' => (Some(-1.0), text[1..].trim_start()),
        _ => (None, text),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (digits, unit) = (&body[..end], body[end..].trim());
    let mag: f64 = digits
        .parse()
        .map_err(|_| format!("threshold `{text}` does not start with a number"))?;
    let (value, relative) = match unit {
        "%" if m.kind == Kind::Points => {
            return Err(format!(
                "{} is itself a percentage, so `%` would be ambiguous: give the change in points, e.g. `{}{digits}pp` or `{}{digits}`",
                m.name,
                if op == Op::Above { "+" } else { "-" },
                if op == Op::Above { "+" } else { "-" },
            ))
        }
        "%" => (mag, true),
        "" => (mag, false),
        u => match m.kind.factor(u) {
            Some(f) => (mag * f, false),
            None => {
                return Err(format!(
                    "unit `{u}` does not fit {} ({})",
                    m.name,
                    m.kind.describe()
                ))
            }
        },
    };
    let want = if op == Op::Above { 1.0 } else { -1.0 };
    match sign {
        Some(s) if s != want && value != 0.0 => Err(format!(
            "`{}` fails when the candidate is {}; a threshold of `{text}` points the other way (write `{} {text}`{})",
            op.symbol(),
            if op == Op::Above { "higher" } else { "lower" },
            if op == Op::Above { "<" } else { ">" },
            if op == Op::Above {
                " to fail on a drop"
            } else {
                " to fail on a rise"
            }
        )),
        _ => Ok((want * value, relative)),
    }
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

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Runs that failed, timed out or were aborted (not those the operator
/// interrupted).
fn failed(runs: &[&RunRecord]) -> usize {
    use migbench_model::Outcome as O;
    runs.iter()
        .filter(|r| matches!(r.outcome, O::Failed | O::TimedOut | O::Aborted))
        .count()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
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

/// The runs of each group both sides have: (group label, baseline, candidate).
type Pairs<'a> = Vec<(Option<String>, Vec<&'a RunRecord>, Vec<&'a RunRecord>)>;

/// Pair the sides' runs group by group. Groups are keyed by the labels of
/// the dimensions varying in either set, less those both sides' `--group`
/// filters name (or one names while the other side has one value of it). Groups only one side has are returned as warnings.
pub fn pair_groups<'a>(
    a: &'a Side<'a>,
    b: &'a Side<'a>,
) -> Result<(Pairs<'a>, Vec<String>), String> {
    let (ra, rb) = (a.records(), b.records());
    for (side, runs, flag) in [(a, &ra, "--group-a"), (b, &rb, "--group-b")] {
        if runs.is_empty() {
            return Err(match &side.group {
                Some(g) => format!(
                    "{flag} {g}: no run of {} has it (groups look like \"link_rate=100mbit\")",
                    side.set.name
                ),
                None => format!("{} has no runs", side.set.name),
            });
        }
    }
    // A dimension leaves the key when both sides pin it (the comparison
    // is across it, or within one value of it), or one side pins it and
    // the other has one value of it; pinned on one side while the other
    // has several values, the other side's runs are still matched by it,
    // not pooled over its values.
    let names = |g: &Option<String>| -> Vec<String> {
        g.iter()
            .flat_map(|g| g.split([' ', ',']))
            .filter_map(|w| w.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    };
    let (pin_a, pin_b) = (names(&a.group), names(&b.group));
    let single = |runs: &[&RunRecord], d: &Dim| {
        runs.iter()
            .all(|r| (d.label)(&r.params) == (d.label)(&runs[0].params))
    };
    let pinned = |d: &Dim| {
        let (pa, pb) = (
            pin_a.iter().any(|k| k == d.name),
            pin_b.iter().any(|k| k == d.name),
        );
        (pa && (pb || single(&rb, d))) || (pb && single(&ra, d))
    };
    let vary_a = varying(&all_runs(std::slice::from_ref(a.set)));
    let vary_b = varying(&all_runs(std::slice::from_ref(b.set)));
    let vary: Vec<&Dim> = DIMS
        .iter()
        .filter(|d| !pinned(d) && (vary_a.iter().chain(&vary_b)).any(|v| v.name == d.name))
        .collect();
    let key = |r: &RunRecord| -> Option<String> {
        (!vary.is_empty()).then(|| {
            vary.iter()
                .map(|d| format!("{}={}", d.name, (d.label)(&r.params)))
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let split = |runs: &[&'a RunRecord]| {
        let mut out: Vec<(Option<String>, Vec<&'a RunRecord>)> = Vec::new();
        for r in runs {
            let k = key(r);
            match out.iter_mut().find(|(g, _)| *g == k) {
                Some((_, v)) => v.push(r),
                None => out.push((k, vec![*r])),
            }
        }
        out
    };
    let (ga, mut gb) = (split(&ra), split(&rb));
    let mut pairs = Vec::new();
    let mut warnings = Vec::new();
    for (k, runs_a) in ga {
        match gb.iter().position(|(g, _)| *g == k) {
            Some(i) => pairs.push((k, runs_a, gb.remove(i).1)),
            None => warnings.push(format!(
                "group {} is only in the baseline ({}): not gated",
                k.unwrap_or_default(),
                a.name()
            )),
        }
    }
    for (k, _) in gb {
        warnings.push(format!(
            "group {} is only in the candidate ({}): not gated",
            k.unwrap_or_default(),
            b.name()
        ));
    }
    if pairs.is_empty() {
        return Err(format!(
            "the baseline and the candidate have no group in common ({}); pick one on each side with --group-a/--group-b",
            warnings.join("; ")
        ));
    }
    Ok((pairs, warnings))
}

fn load(dir: &Path) -> Result<ResultsSet, String> {
    let set = load_results(dir).map_err(|e| {
        let mut s = format!("loading results directory {}: {e}", dir.display());
        let mut src = std::error::Error::source(&e);
        while let Some(c) = src {
            let _ = write!(s, ": {c}");
            src = c.source();
        }
        s
    })?;
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
    Ok(set)
}

/// Run the gate: print the verdicts and return the exit status (0 pass,
/// 1 a check failed, 2 the gate could not be evaluated).
pub fn run(
    baseline: &Path,
    candidate: &Path,
    group_a: Option<String>,
    group_b: Option<String>,
    args: &GateArgs,
) -> i32 {
    let mut checks = Vec::new();
    for expr in &args.fail_if {
        match Check::parse(expr) {
            Ok(c) => checks.push(c),
            Err(e) => {
                eprintln!("error: --fail-if {expr:?}: {e}");
                return 2;
            }
        }
    }
    let sets = match load(baseline).and_then(|a| Ok((a, load(candidate)?))) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let (sa, sb) = (
        Side {
            set: &sets.0,
            group: group_a,
        },
        Side {
            set: &sets.1,
            group: group_b,
        },
    );
    let (pairs, warnings) = match pair_groups(&sa, &sb) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let json = args.format == "json";
    if !json {
        println!("baseline  = {}\ncandidate = {}", sa.name(), sb.name());
    }
    let (mut total, mut failed, mut untested) = (0, 0, 0);
    for check in &checks {
        for (group, ra, rb) in &pairs {
            let v = evaluate(check, group.as_deref(), ra, rb, args.require_runs);
            total += 1;
            failed += usize::from(v.fail);
            if v.outcome == Outcome::TooFewRuns {
                untested += 1;
                if args.require_runs.is_none() {
                    eprintln!(
                        "WARNING: {}{}: too few completed runs to test (baseline {}, candidate {}; Welch's test needs 2 a side): this check PASSES UNTESTED; run more repetitions, or add --require-runs 2 to fail instead",
                        v.metric,
                        v.group.as_deref().map(|g| format!(" [{g}]")).unwrap_or_default(),
                        v.baseline_n,
                        v.candidate_n
                    );
                }
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&v).expect("a verdict serialises")
                );
            } else {
                println!("{}", v.line(args.require_runs));
            }
        }
    }
    if !json {
        let untested = if untested > 0 {
            format!(", {untested} with too few runs")
        } else {
            String::new()
        };
        if failed > 0 {
            println!("gate: FAIL ({failed} of {total} checks{untested})");
        } else {
            println!("gate: ok ({total} checks{untested})");
        }
    }
    i32::from(failed > 0)
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
