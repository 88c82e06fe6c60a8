//! Outlier runs: those whose total time or probe downtime lies more than
//! 3 scaled MADs from their group's median ([`crate::stats::outliers`]).
//! They stay in every statistic; the report's table names them so a
//! reader can look at their timelines, and the bar charts mark them.

use std::fmt::Write as _;

use crate::dims::{completed_value, metric};
use crate::frame::RunRef;
use crate::stats::{median, outliers};
use crate::summary::SummaryRow;

use super::esc;

/// The metrics whose outliers are flagged.
pub(super) const FLAGGED_METRICS: [&str; 2] = ["total_time_s", "downtime_probe_ms"];

/// One outlier run.
pub(super) struct Flagged<'r> {
    /// Its group key.
    pub group: String,
    /// The run.
    pub run: &'r RunRef<'r>,
    /// Its value of the metric.
    pub value: f64,
    /// Its group's median.
    pub median: f64,
    /// Scaled MADs from the median (infinite with a MAD of 0).
    pub mads: f64,
}

/// The outlier runs of `metric` (groups of 3 or more completed runs).
pub(super) fn flagged<'r>(runs: &'r [RunRef<'r>], name: &str) -> Vec<Flagged<'r>> {
    let Some(m) = metric(name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (g, v) in crate::frame::groups(runs) {
        let vals: Vec<(&RunRef, f64)> = v
            .iter()
            .filter_map(|r| Some((*r, completed_value(m, r.rec)?)))
            .collect();
        if vals.len() < 3 {
            continue;
        }
        let xs: Vec<f64> = vals.iter().map(|x| x.1).collect();
        let Some(med) = median(&xs) else { continue };
        for ((run, value), (mads, is)) in vals.into_iter().zip(outliers(&xs)) {
            if is {
                out.push(Flagged {
                    group: g.clone(),
                    run,
                    value,
                    median: med,
                    mads,
                });
            }
        }
    }
    out
}

/// Per summary row (a chart's category), the outlier values of `metric`.
pub(super) fn per_category(runs: &[RunRef], rows: &[SummaryRow], name: &str) -> Vec<Vec<f64>> {
    let found = flagged(runs, name);
    rows.iter()
        .map(|row| {
            found
                .iter()
                .filter(|f| f.group == row.group)
                .map(|f| f.value)
                .collect()
        })
        .collect()
}

/// The table, or `None` without an outlier.
pub(super) fn outliers_table(runs: &[RunRef]) -> Option<String> {
    let mut rows = String::new();
    for name in FLAGGED_METRICS {
        let title = metric(name)?.title;
        for f in flagged(runs, name) {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
                esc(&f.run.rec.run_id),
                esc(&f.group),
                esc(title),
                f.value,
                f.median,
                if f.mads.is_finite() { format!("{:.1}", f.mads) } else { "∞ (MAD 0)".into() }
            );
        }
    }
    (!rows.is_empty()).then(|| {
        format!("<table><thead><tr><th>run</th><th>group</th><th>metric</th><th>value</th><th>group median</th><th>MADs from it</th></tr></thead><tbody>{rows}</tbody></table><p><small>Runs more than 3 scaled median absolute deviations (MAD × 1.4826) from their group's median (groups of 3 or more completed runs); with a MAD of 0, more than 5 % from it. They are kept in every statistic and marked on the total-time and downtime charts.</small></p>")
    })
}
