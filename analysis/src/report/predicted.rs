//! Predicted against measured: the model (`migbench_predict`)
//! applied to every run's parameters beside what the run measured — a
//! scatter for total time and one for downtime (y = x is an exact
//! prediction), and the error per group. Shared with `compare --predicted`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use migbench_predict::accuracy::{check, measured_downtime, Accuracy, Checked};
use migbench_predict::Model;

use crate::charts::scatter::{Points, Scatter};
use crate::charts::{render, Rendered};
use crate::frame::{group_key, varying, RunRef};

use super::esc;

/// Every judgeable run with its prediction, grouped as the summary groups
/// (group key, its runs), groups in first-seen order.
pub fn by_group<'a>(runs: &[RunRef<'a>], model: &Model) -> Vec<(String, Vec<Checked<'a>>)> {
    let vary = varying(runs);
    let mut out: Vec<(String, Vec<Checked<'a>>)> = Vec::new();
    for r in runs {
        let Some(c) = check(&[r.rec], &model.constants).pop() else {
            continue;
        };
        let key = group_key(r, &vary);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(c),
            None => out.push((key, vec![c])),
        }
    }
    out
}

fn median(v: Vec<f64>) -> Option<f64> {
    crate::stats::median(&v)
}

/// One group's line: measured and predicted medians and the errors.
pub struct GroupLine {
    /// Group key.
    pub group: String,
    /// Runs judged.
    pub runs: usize,
    /// Runs completed / predicted to complete.
    pub completed: (usize, usize),
    /// Median measured and predicted total time, s (completed runs).
    pub total_s: (Option<f64>, Option<f64>),
    /// Median total time error, %.
    pub time_error_pct: Option<f64>,
    /// Median measured and predicted downtime, ms.
    pub downtime_ms: (Option<f64>, Option<f64>),
    /// Median downtime error, ms.
    pub downtime_error_ms: Option<f64>,
}

/// The lines of the per-group table.
pub fn group_lines(groups: &[(String, Vec<Checked>)]) -> Vec<GroupLine> {
    groups
        .iter()
        .map(|(g, v)| GroupLine {
            group: g.clone(),
            runs: v.len(),
            completed: (
                v.iter().filter(|c| c.completed).count(),
                v.iter().filter(|c| c.predicted.converges).count(),
            ),
            total_s: (
                median(
                    v.iter()
                        .filter(|c| c.completed)
                        .filter_map(|c| c.rec.total_time_ms.map(|t| t / 1e3))
                        .collect(),
                ),
                median(
                    v.iter()
                        .filter(|c| c.predicted.converges)
                        .map(|c| c.predicted.total_time_ms / 1e3)
                        .collect(),
                ),
            ),
            time_error_pct: median(v.iter().filter_map(|c| c.time_error_pct).collect()),
            downtime_ms: (
                median(
                    v.iter()
                        .filter(|c| c.completed)
                        .filter_map(|c| measured_downtime(c.rec))
                        .collect(),
                ),
                median(v.iter().filter_map(|c| c.predicted.downtime_ms).collect()),
            ),
            downtime_error_ms: median(v.iter().filter_map(|c| c.downtime_error_ms).collect()),
        })
        .collect()
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

/// The per-group table's column heads.
pub const HEADS: [&str; 9] = [
    "group",
    "runs",
    "completed: measured / predicted",
    "total s measured",
    "predicted",
    "error %",
    "downtime ms measured",
    "predicted",
    "error ms",
];

impl GroupLine {
    /// The line's cells, as [`HEADS`] names them.
    pub fn cells(&self) -> [String; 9] {
        [
            self.group.clone(),
            self.runs.to_string(),
            format!("{} / {}", self.completed.0, self.completed.1),
            f(self.total_s.0, 2),
            f(self.total_s.1, 2),
            f(self.time_error_pct, 1),
            f(self.downtime_ms.0, 0),
            f(self.downtime_ms.1, 0),
            f(self.downtime_error_ms, 0),
        ]
    }
}

/// The accuracy line under the tables, in words.
pub fn accuracy_line(a: &Accuracy) -> String {
    format!(
        "{} runs: total time off by {} % (median |error|, runs both measured and predicted to complete), downtime by {} ms (tolerance {} ms), ending right in {:.0} %",
        a.runs,
        f(a.time_mae_pct, 1),
        f(a.downtime_mae_ms, 0),
        f(a.downtime_tolerance_ms, 0),
        a.ending_right_pct()
    )
}

/// The report's section: the per-group table and two scatters, or `None`
/// without a judgeable run.
pub(super) fn section(
    runs: &[RunRef],
    model: &Model,
    source: &str,
    dir: &Path,
) -> Result<Option<(String, Vec<Rendered>)>> {
    let groups = by_group(runs, model);
    if groups.is_empty() {
        return Ok(None);
    }
    let all: Vec<Checked> = groups.iter().flat_map(|(_, v)| v.iter().cloned()).collect();
    let acc = Accuracy::of(&all);
    let mut h = String::from("<table><thead><tr>");
    for head in HEADS {
        let _ = write!(h, "<th>{head}</th>");
    }
    h.push_str("</tr></thead><tbody>");
    for l in group_lines(&groups) {
        h.push_str("<tr>");
        for (k, cell) in l.cells().iter().enumerate() {
            let align = if k == 0 {
                " style=\"text-align:left\""
            } else {
                ""
            };
            let _ = write!(h, "<td{align}>{}</td>", esc(cell));
        }
        h.push_str("</tr>");
    }
    let _ = write!(
        h,
        "</tbody></table><p>{}.</p><p><small>Model: {}. Medians per group; errors are predicted − measured (positive: the model expected more). Downtime is QEMU's own figure (libvirt's through libvirt; for a completion forced by pausing the guest, the pause). Runs with an injected fault are left out.</small></p>",
        esc(&accuracy_line(&acc)),
        esc(source)
    );
    let scatter =
        |name: &str, title: &str, quantity: &str, pick: &dyn Fn(&Checked) -> Option<(f64, f64)>| {
            Scatter {
                name: name.into(),
                title: title.into(),
                quantity: quantity.into(),
                groups: groups
                    .iter()
                    .map(|(g, v)| Points {
                        name: g.clone(),
                        points: v.iter().filter_map(pick).collect(),
                    })
                    .filter(|p| !p.points.is_empty())
                    .collect(),
            }
        };
    let charts = vec![
        render(
            &scatter(
                "predicted-total-time",
                "Total time: predicted against measured (completed runs)",
                "total time (s)",
                &|c| {
                    Some((c.rec.total_time_ms? / 1e3, c.predicted.total_time_ms / 1e3))
                        .filter(|_| c.completed && c.predicted.converges)
                },
            ),
            dir,
        )?,
        render(
            &scatter(
                "predicted-downtime",
                "Downtime: predicted against measured (QEMU's or libvirt's figure, a forced pause whole)",
                "downtime (ms)",
                &|c| {
                    let m = measured_downtime(c.rec)?;
                    Some((m, c.predicted.downtime_ms?)).filter(|_| c.completed)
                },
            ),
            dir,
        )?,
    ];
    Ok(Some((h, charts)))
}
