//! `compare A B`: each metric's difference between two results directories
//! (or two groups of one) with its 95 % interval and a significance verdict
//! (Welch's t-test), as a terminal table and a report page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::dims::{completed_value, Dim, DIMS, METRICS};
use crate::export::num;
use crate::frame::{all_runs, group_key, varying};
use crate::load::{ResultsSet, Usage};
use crate::report::page;
use crate::stats::{compare, estimate, Comparison, Estimate, COMPARE_TEST};

/// One side of a comparison.
pub struct Side<'a> {
    /// Its results.
    pub set: &'a ResultsSet,
    /// Optional group key within it.
    pub group: Option<String>,
}

impl Side<'_> {
    /// The side's runs: the whole set, or the runs of its group — its
    /// full group key, or any subset of `dimension=value` pairs.
    pub fn records(&self) -> Vec<&migbench_model::RunRecord> {
        let runs = all_runs(std::slice::from_ref(self.set));
        let vary = varying(&runs);
        runs.iter()
            .filter(|r| {
                self.group
                    .as_deref()
                    .is_none_or(|g| group_key(r, &vary) == g || in_group(g, r))
            })
            .map(|r| r.rec)
            .collect()
    }

    /// Check the side's group against its runs ([`check_group`]); `flag`
    /// names it in the error (`--group-a`).
    pub fn check(&self, flag: &str) -> Result<(), Usage> {
        match &self.group {
            Some(g) => check_group(self.set, g, flag),
            None => Ok(()),
        }
    }

    /// Display name.
    pub fn name(&self) -> String {
        match &self.group {
            Some(g) => format!("{} [{g}]", self.set.name),
            None => self.set.name.clone(),
        }
    }
}

/// Whether run `r` has every `dimension=value` of `group` (space- or
/// comma-separated); a word that is not one is never matched.
pub fn in_group(group: &str, r: &crate::frame::RunRef) -> bool {
    has_all(group, &r.rec.params)
}

/// Whether `params` has every `dimension=value` of `group`.
fn has_all(group: &str, params: &migbench_model::RunParams) -> bool {
    words(group).all(|w| match w.split_once('=') {
        Some((k, v)) => crate::dims::dim(k).is_some_and(|d| (d.label)(params) == v),
        None => false,
    })
}

fn words(group: &str) -> impl Iterator<Item = &str> {
    group.split([' ', ',']).filter(|w| !w.is_empty())
}

/// Check a `--group-a`/`--group-b` (named `flag`) against `set`'s runs,
/// as `--by` checks its dimension: the group is a full group key, or
/// every word is `dimension=value` with a known dimension and a value
/// some run has, and some run has them all. The [`Usage`] error names
/// the word at fault and lists the dimensions or values there are.
pub fn check_group(set: &ResultsSet, group: &str, flag: &str) -> Result<(), Usage> {
    let runs = all_runs(std::slice::from_ref(set));
    let vary = varying(&runs);
    if runs.is_empty() || runs.iter().any(|r| group_key(r, &vary) == group) {
        return Ok(());
    }
    let names = |ds: &mut dyn Iterator<Item = &Dim>| -> String {
        ds.map(|d| d.name).collect::<Vec<_>>().join(", ")
    };
    let varying_here = match names(&mut vary.iter().copied()) {
        n if n.is_empty() => format!("in {} no dimension varies", set.name),
        n => format!("in {} these vary: {n}", set.name),
    };
    let g = crate::load::clip(group);
    if words(group).next().is_none() {
        return Err(Usage(format!(
            "{flag} {g:?}: empty; a group is dimension=value pairs, e.g. link_rate=100mbit ({varying_here})"
        )));
    }
    for w in words(group) {
        let Some((k, v)) = w.split_once('=') else {
            return Err(Usage(format!(
                "{flag} {g}: `{}` is not dimension=value (e.g. link_rate=100mbit); {varying_here}",
                crate::load::clip(w),
            )));
        };
        let Some(d) = crate::dims::dim(k) else {
            return Err(Usage(format!(
                "{flag} {g}: no dimension `{}`; {varying_here} (every dimension: {})",
                crate::load::clip(k),
                names(&mut DIMS.iter())
            )));
        };
        let values = crate::frame::dim_values(d, &runs);
        if !values.iter().any(|l| l == v) {
            return Err(Usage(format!(
                "{flag} {g}: no run of {} has {k}={}; {k} here is {}",
                set.name,
                crate::load::clip(v),
                values.join(", ")
            )));
        }
    }
    if !runs.iter().any(|r| in_group(group, r)) {
        let mut keys: Vec<String> = runs.iter().map(|r| group_key(r, &vary)).collect();
        keys.sort();
        keys.dedup();
        return Err(Usage(format!(
            "{flag} {g}: no run of {} has all of these; its groups are: {}",
            set.name,
            keys.join("; ")
        )));
    }
    Ok(())
}

/// One metric compared.
#[derive(Debug, Clone, Serialize)]
pub struct MetricComparison {
    /// Metric name.
    pub metric: String,
    /// Title with unit.
    pub title: String,
    /// A's estimate.
    pub a: Option<Estimate>,
    /// B's estimate.
    pub b: Option<Estimate>,
    /// B − A with interval and verdict.
    pub cmp: Option<Comparison>,
}

/// Compare every metric.
pub fn compare_sides(a: &Side, b: &Side) -> Vec<MetricComparison> {
    let (ra, rb) = (a.records(), b.records());
    let values = |runs: &[&migbench_model::RunRecord], m| -> Vec<f64> {
        runs.iter().filter_map(|r| completed_value(m, r)).collect()
    };
    METRICS
        .iter()
        .map(|m| {
            let (va, vb) = (values(&ra, m), values(&rb, m));
            MetricComparison {
                metric: m.name.into(),
                title: m.title.into(),
                a: estimate(&va),
                b: estimate(&vb),
                cmp: compare(&va, &vb),
            }
        })
        .collect()
}

fn verdict(c: &Option<Comparison>) -> String {
    match c {
        None => "no data".into(),
        Some(c) => match c.p_value {
            None => "too few runs to test".into(),
            Some(p) if c.significant => format!("significant (p={p:.3})"),
            Some(p) => format!("not significant (p={p:.3})"),
        },
    }
}

fn est(e: &Option<Estimate>) -> String {
    e.map(|e| format!("{} (n={})", num(e.mean), e.n))
        .unwrap_or_else(|| "–".into())
}

fn diff(c: &Option<Comparison>) -> String {
    match c {
        Some(c) if c.ci_lo.is_finite() => {
            format!("{} [{}, {}]", num(c.diff), num(c.ci_lo), num(c.ci_hi))
        }
        Some(c) => num(c.diff),
        None => "–".into(),
    }
}

/// Terminal table.
pub fn render_text(a: &Side, b: &Side, rows: &[MetricComparison]) -> String {
    let mut s = format!(
        "A = {}\nB = {}\ntest: {COMPARE_TEST}\n\n",
        a.name(),
        b.name()
    );
    let _ = writeln!(
        s,
        "{:<44} {:>16} {:>16} {:>26}  verdict",
        "metric", "A mean", "B mean", "B − A [95% CI]"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<44} {:>16} {:>16} {:>26}  {}",
            r.title,
            est(&r.a),
            est(&r.b),
            diff(&r.cmp),
            verdict(&r.cmp)
        );
    }
    s
}

/// Write the comparison page into `dir`; returns the index path.
pub fn write_page(a: &Side, b: &Side, rows: &[MetricComparison], dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let e = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
    let mut body = format!(
        "<p>A = <b>{}</b><br>B = <b>{}</b><br>Test: {}</p><table><thead><tr><th>metric</th><th>A mean</th><th>B mean</th><th>B − A [95% CI]</th><th>verdict</th></tr></thead><tbody>",
        e(&a.name()),
        e(&b.name()),
        COMPARE_TEST
    );
    for r in rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(&r.title),
            est(&r.a),
            est(&r.b),
            diff(&r.cmp),
            verdict(&r.cmp)
        );
    }
    body.push_str("</tbody></table>");
    let index = dir.join("index.html");
    std::fs::write(&index, page("migbench comparison", &body))?;
    std::fs::write(
        dir.join("compare.json"),
        serde_json::to_string_pretty(rows)? + "\n",
    )?;
    Ok(index)
}

/// `compare A --predicted`: A's runs (or one group's) beside what the
/// model predicted for them, per group, with the accuracy figures.
pub fn render_predicted(
    set: &ResultsSet,
    group: Option<&str>,
    model: &(migbench_predict::Model, String),
) -> Result<String> {
    use crate::report::predicted::{accuracy_line, by_group, group_lines, HEADS};
    if let Some(g) = group {
        check_group(set, g, "--group-a")?;
    }
    let runs = all_runs(std::slice::from_ref(set));
    let groups: Vec<_> = by_group(&runs, &model.0)
        .into_iter()
        .filter_map(|(g, v)| match group {
            None => Some((g, v)),
            Some(want) if g == want => Some((g, v)),
            Some(want) => {
                let v: Vec<_> = v
                    .into_iter()
                    .filter(|c| has_all(want, &c.rec.params))
                    .collect();
                (!v.is_empty()).then_some((g, v))
            }
        })
        .collect();
    if groups.is_empty() {
        anyhow::bail!(
            "no completed, timed-out or aborted run without a fault in {}{}",
            set.name,
            group
                .map(|g| format!(" group {g} (groups look like \"link_rate=100mbit\")"))
                .unwrap_or_default()
        );
    }
    let mut s = format!(
        "measured = {}\npredicted = the model ({})\n\n| {} |\n|{}\n",
        set.name,
        model.1,
        HEADS.join(" | "),
        "---|".repeat(HEADS.len())
    );
    for l in group_lines(&groups) {
        let _ = writeln!(s, "| {} |", l.cells().join(" | "));
    }
    let all: Vec<_> = groups.iter().flat_map(|(_, v)| v.iter().cloned()).collect();
    let _ = writeln!(
        s,
        "\n{}",
        accuracy_line(&migbench_predict::accuracy::Accuracy::of(&all))
    );
    Ok(s)
}
