//! Markdown summary: the headline metrics as `median [95 % CI of the mean]`.

use super::{num, Exporter};
use crate::summary::Summary;

/// `summary.md`.
pub struct MarkdownExporter;

/// Metrics shown in the Markdown and terminal tables.
pub const HEADLINE: &[(&str, &str)] = &[
    ("total_time_s", "total s"),
    ("downtime_qemu_ms", "QEMU downtime ms"),
    ("downtime_libvirt_ms", "libvirt downtime ms"),
    ("downtime_icmp_ms", "ICMP outage ms"),
    ("downtime_probe_ms", "probe downtime ms"),
    ("stall_rr_ms", "TCP request stall ms"),
    ("stall_stream_ms", "TCP stream gap ms"),
    ("throughput_mbps", "Mbit/s"),
    ("link_utilisation", "link util"),
    ("time_over_bound", "time / bound"),
    ("passes", "passes"),
];

/// The [`HEADLINE`] metrics some group has a value for (libvirt's
/// downtime is left out of QMP-only results).
pub fn headline(s: &Summary) -> Vec<(&'static str, &'static str)> {
    HEADLINE
        .iter()
        .copied()
        .filter(|(m, _)| s.rows.iter().any(|r| r.metrics.contains_key(*m)))
        .collect()
}

impl Exporter for MarkdownExporter {
    fn extension(&self) -> &'static str {
        "md"
    }

    fn render(&self, s: &Summary) -> String {
        let shown = headline(s);
        let mut head: Vec<String> = s.varying.clone();
        head.extend(["runs".into(), "ok/failed/timed out or aborted".into()]);
        head.extend(shown.iter().map(|(_, t)| t.to_string()));
        let mut out = format!(
            "| {} |\n|{}|\n",
            head.join(" | "),
            vec!["---"; head.len()].join("|")
        );
        for r in &s.rows {
            let mut row: Vec<String> = s.varying.iter().map(|d| r.dims[d].clone()).collect();
            row.push(r.n.to_string());
            row.push(format!(
                "{}/{}/{}",
                r.completed,
                r.failed,
                r.timed_out + r.aborted
            ));
            for (m, _) in &shown {
                row.push(match r.metrics.get(*m) {
                    Some(e) => match e.interval() {
                        Some((lo, hi)) => format!("{} [{}, {}]", num(e.median), num(lo), num(hi)),
                        None => format!("{} [–]", num(e.median)),
                    },
                    None => "–".into(),
                });
            }
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out.push_str("\nValues: median over completed runs [95 % t interval of the mean] when a group has more than one run; [–] where it has one (no interval).\n");
        for w in &s.warnings {
            out.push_str(&format!("\nWarning: {w}\n"));
        }
        out
    }
}
