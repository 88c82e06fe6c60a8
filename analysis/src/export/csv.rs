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

impl Exporter for CsvExporter {
    fn extension(&self) -> &'static str {
        "csv"
    }

    fn render(&self, s: &Summary) -> String {
        let mut head: Vec<String> = s.varying.clone();
        head.extend(
            [
                "n",
                "completed",
                "failed",
                "timed_out",
                "interrupted",
                "aborted",
                "success_rate",
                "probes_lost_pct",
                "rtt_p99_ms",
            ]
            .map(String::from),
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
                        format!("{}", e.sd),
                        format!("{}", e.ci_lo),
                        format!("{}", e.ci_hi),
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
