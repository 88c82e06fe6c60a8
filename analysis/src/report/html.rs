//! The report's HTML tables: the summary per group and how each run ended.

use crate::frame::RunRef;
use crate::summary::Summary;
use std::fmt::Write as _;

use super::esc;

pub(super) fn endings_table(runs: &[RunRef]) -> String {
    let f = |v: Option<f64>, digits: usize| {
        v.map(|x| format!("{x:.digits$}"))
            .unwrap_or_else(|| "–".into())
    };
    let mut h = String::from("<table><thead><tr><th>run</th><th>settings</th><th>outcome</th><th>detail</th><th>finished by</th><th>interventions</th><th>total s</th><th>downtime QEMU / libvirt / probe ms</th><th>workload slowdown %</th><th>max throttle %</th><th>post-copy s</th></tr></thead><tbody>");
    for r in runs {
        let rec = r.rec;
        let interventions = rec
            .interventions
            .iter()
            .map(|i| format!("{:.1}s {}", i.t_ms / 1e3, esc(&i.reason)))
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = write!(
            h,
            "<tr><td>{}</td><td style=\"text-align:left\">{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td><td>{}</td><td>{} / {} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&rec.run_id),
            esc(&rec.params.label()),
            rec.outcome,
            rec.outcome_detail.map(|d| d.to_string()).unwrap_or_else(|| "–".into()),
            esc(rec.finished_by.as_deref().unwrap_or("–")),
            if interventions.is_empty() { "–".into() } else { interventions },
            f(rec.total_time_ms.map(|t| t / 1e3), 1),
            f(rec.downtime_qemu_ms, 0),
            f(rec.downtime_libvirt_ms, 0),
            f(rec.downtime_probe_ms, 0),
            f(rec.workload_slowdown_pct, 0),
            f(rec.max_throttle_pct, 0),
            f(rec.postcopy_time_ms.map(|t| t / 1e3), 1),
        );
    }
    h.push_str("</tbody></table>");
    h
}

/// Summary table as HTML.
pub(super) fn html_table(s: &Summary) -> String {
    let shown = crate::export::markdown::headline(s);
    let mut h = String::from("<table><thead><tr>");
    for v in &s.varying {
        let _ = write!(h, "<th>{}</th>", esc(v));
    }
    h.push_str("<th>runs</th><th>completed</th><th>failed</th><th>timed out / aborted</th>");
    for (_, t) in &shown {
        let _ = write!(h, "<th>{}</th>", esc(t));
    }
    h.push_str("<th>probes lost %</th><th>RTT p99 ms</th></tr></thead><tbody>");
    for r in &s.rows {
        h.push_str("<tr>");
        for v in &s.varying {
            let _ = write!(h, "<td>{}</td>", esc(&r.dims[v]));
        }
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            r.n,
            r.completed,
            r.failed,
            r.timed_out + r.aborted
        );
        for (m, _) in &shown {
            let cell = match r.metrics.get(*m) {
                Some(e) if e.n > 1 => format!(
                    "{} <small>[{}, {}]</small>",
                    crate::export::num(e.median),
                    crate::export::num(e.ci_lo),
                    crate::export::num(e.ci_hi)
                ),
                Some(e) => crate::export::num(e.median),
                None => "–".into(),
            };
            let _ = write!(h, "<td>{cell}</td>");
        }
        let f = |v: Option<f64>| v.map(crate::export::num).unwrap_or_else(|| "–".into());
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td></tr>",
            f(r.probes_lost_pct),
            f(r.rtt_p99_ms)
        );
    }
    h.push_str("</tbody></table>");
    h
}
