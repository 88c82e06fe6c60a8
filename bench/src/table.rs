//! The end-of-run table: one row per run with the headline measures.

use migbench_model::RunRecord;

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

/// Render the summary table as text.
pub fn render(records: &[RunRecord]) -> String {
    let mut out = format!(
        "{:<9} {:<11} {:>8} {:>9} {:>9} {:>8} {:>10} {:>10} {:>6} {:>6} {:<10}\n",
        "run",
        "outcome",
        "link",
        "dirty",
        "total s",
        "qemu dt",
        "probe dt",
        "Mbit/s",
        "util%",
        "passes",
        "integrity"
    );
    out.push_str(&format!(
        "{:<9} {:<11} {:>8} {:>9} {:>9} {:>8} {:>10} {:>10} {:>6} {:>6} {:<10}\n",
        "", "", "", "", "", "ms", "ms", "", "", "", ""
    ));
    for r in records {
        let util = r.throughput_mbps.map(|t| 100.0 * t / r.link_rate_mbps);
        out.push_str(&format!(
            "{:<9} {:<11} {:>8} {:>9} {:>9} {:>8} {:>10} {:>10} {:>6} {:>6} {:<10}\n",
            r.run_id,
            r.outcome.to_string(),
            r.params.link_rate.to_string(),
            r.params.dirty_rate.to_string(),
            opt(r.total_time_ms.map(|t| t / 1e3), 2),
            opt(r.downtime_qemu_ms, 0),
            opt(r.downtime_probe_ms, 1),
            opt(r.throughput_mbps, 1),
            opt(util, 0),
            r.passes
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            r.integrity.to_string(),
        ));
    }
    out.lines()
        .map(|l| l.trim_end().to_string() + "\n")
        .collect()
}
