//! CSV summary: one row per group; per metric its n, median, mean, sd and
//! 95 % CI bounds. Other tools parse this: keep column names stable.

use super::Exporter;
use crate::dims::METRICS;
use crate::summary::Summary;

/// `summary.csv`.
pub struct CsvExporter;

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The summary's per-group count columns (after the dimensions).
pub(crate) const COUNT_COLUMNS: [&str; 6] = [
    "n",
    "completed",
    "failed",
    "timed_out",
    "interrupted",
    "aborted",
];

impl Exporter for CsvExporter {
    fn extension(&self) -> &'static str {
        "csv"
    }

    fn render(&self, s: &Summary) -> String {
        let mut head: Vec<String> = s.varying.clone();
        head.extend(
            COUNT_COLUMNS
                .iter()
                .chain(&["success_rate", "probes_lost_pct", "rtt_p99_ms"])
                .map(|c| c.to_string()),
        );
        for m in METRICS {
            for stat in ["n", "median", "mean", "sd", "ci_lo", "ci_hi"] {
                head.push(format!("{}_{stat}", m.name));
            }
        }
        let mut out = head.join(",") + "\n";
        for r in &s.rows {
            let mut row: Vec<String> = s.varying.iter().map(|d| field(&r.dims[d])).collect();
            let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
            row.extend([
                r.n.to_string(),
                r.completed.to_string(),
                r.failed.to_string(),
                r.timed_out.to_string(),
                r.interrupted.to_string(),
                r.aborted.to_string(),
                format!("{}", r.success_rate),
                opt(r.probes_lost_pct),
                opt(r.rtt_p99_ms),
            ]);
            for m in METRICS {
                match r.metrics.get(m.name) {
                    Some(e) => row.extend([
                        e.n.to_string(),
                        format!("{}", e.median),
                        format!("{}", e.mean),
                        opt(e.sd),
                        opt(e.ci_lo),
                        opt(e.ci_hi),
                    ]),
                    None => row.extend(std::iter::repeat_n(String::new(), 6)),
                }
            }
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::estimate;
    use crate::summary::{Summary, SummaryRow};

    /// A summary of two groups: one run (4 s) and two runs (30, 32 s).
    pub(crate) fn one_and_two_run_summary() -> Summary {
        let row = |group: &str, values: &[f64]| SummaryRow {
            group: group.into(),
            dims: [("link_rate".to_string(), group.to_string())].into(),
            dim_values: Default::default(),
            n: values.len(),
            completed: values.len(),
            failed: 0,
            timed_out: 0,
            interrupted: 0,
            aborted: 0,
            success_rate: 1.0,
            metrics: [("total_time_s".to_string(), estimate(values).unwrap())].into(),
            probes_lost_pct: None,
            rtt_p99_ms: None,
        };
        Summary {
            varying: vec!["link_rate".into()],
            rows: vec![row("1gbit", &[4.0]), row("100mbit", &[30.0, 32.0])],
            warnings: vec![],
        }
    }

    #[test]
    fn a_one_run_group_has_empty_spread_and_interval_cells() {
        let s = one_and_two_run_summary();
        let csv = CsvExporter.render(&s);
        let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let col = |line: usize, name: &str| -> String {
            let i = head.iter().position(|h| *h == name).unwrap();
            csv.lines()
                .nth(line)
                .unwrap()
                .split(',')
                .nth(i)
                .unwrap()
                .to_string()
        };
        assert_eq!(col(1, "total_time_s_n"), "1");
        assert_eq!(col(1, "total_time_s_median"), "4");
        for stat in ["sd", "ci_lo", "ci_hi"] {
            assert_eq!(col(1, &format!("total_time_s_{stat}")), "", "{csv}");
            assert!(!col(2, &format!("total_time_s_{stat}")).is_empty(), "{csv}");
        }
        let json = crate::export::JsonExporter.render(&s);
        assert!(json.contains("\"sd\": null"), "{json}");
        let md = crate::export::MarkdownExporter.render(&s);
        assert!(md.contains("| 4.00 [–] |"), "{md}");
    }
}
