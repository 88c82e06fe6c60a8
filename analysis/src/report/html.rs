//! The report's HTML tables: the summary per group, how each run ended,
//! and what a service's users saw (stream viewers, request clients).

use migbench_model::Outcome;

use crate::dims::Dim;
use crate::frame::{group_key, RunRef};
use crate::stats::median;
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
                Some(e) => match e.interval() {
                    Some((lo, hi)) => format!(
                        "{} <small>[{}, {}]</small>",
                        crate::export::num(e.median),
                        crate::export::num(lo),
                        crate::export::num(hi)
                    ),
                    None => format!("{} <small>[–]</small>", crate::export::num(e.median)),
                },
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

/// "What a viewer saw" per group and playout buffer, and the request
/// client's latency per group (completed runs); `None` without services.
pub(super) fn service_tables(runs: &[RunRef], vary: &[&Dim], s: &Summary) -> Option<String> {
    let done: Vec<&RunRef> = runs
        .iter()
        .filter(|r| r.rec.outcome == Outcome::Completed)
        .collect();
    let streams = done.iter().any(|r| r.rec.stream.is_some());
    let requests = done.iter().any(|r| r.rec.rr.is_some());
    if !streams && !requests {
        return None;
    }
    let f = |v: Option<f64>| v.map(crate::export::num).unwrap_or_else(|| "–".into());
    let head = |h: &mut String, cols: &str| {
        h.push_str("<table><thead><tr>");
        for v in &s.varying {
            let _ = write!(h, "<th>{}</th>", esc(v));
        }
        let _ = write!(h, "{cols}</tr></thead><tbody>");
    };
    let dims = |h: &mut String, row: &crate::summary::SummaryRow| {
        h.push_str("<tr>");
        for v in &s.varying {
            let _ = write!(h, "<td>{}</td>", esc(&row.dims[v]));
        }
    };
    let mut h = String::new();
    if streams {
        h.push_str("<h3>What a viewer saw</h3>");
        head(&mut h, "<th>buffer s</th><th>runs</th><th>stalls (median)</th><th>stalled ms (median)</th><th>longest stall ms (worst run)</th><th>longest gap ms (median)</th><th>guest send gap ms (median)</th><th>retransmits (median)</th><th>bytes lost</th>");
        for row in &s.rows {
            let group: Vec<&migbench_model::record::StreamSummary> = done
                .iter()
                .filter(|r| group_key(r, vary) == row.group)
                .filter_map(|r| r.rec.stream.as_ref())
                .collect();
            let mut buffers: Vec<f64> = group
                .iter()
                .flat_map(|st| st.playout.iter().map(|p| p.buffer_ms))
                .collect();
            buffers.sort_by(f64::total_cmp);
            buffers.dedup();
            for b in buffers {
                let plays: Vec<_> = group
                    .iter()
                    .filter_map(|st| st.playout.iter().find(|p| p.buffer_ms == b))
                    .collect();
                let med = |v: Vec<f64>| median(&v);
                dims(&mut h, row);
                let _ = write!(
                    h,
                    "<td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    b / 1e3,
                    plays.len(),
                    f(med(plays.iter().map(|p| f64::from(p.stalls)).collect())),
                    f(med(plays.iter().map(|p| p.stall_ms).collect())),
                    f(plays.iter().map(|p| p.longest_stall_ms).reduce(f64::max)),
                    f(med(group.iter().map(|st| st.longest_gap_ms).collect())),
                    f(med(group.iter().map(|st| st.longest_send_gap_ms).collect())),
                    f(med(group.iter().map(|st| st.retransmits as f64).collect())),
                    group.iter().map(|st| st.lost_bytes).sum::<u64>(),
                );
            }
        }
        h.push_str("</tbody></table><p><small>Each run's stream is played out with every buffer: playback starts once the buffer holds that much media and, when it runs dry, stalls until it is full again. Stalls shorter than a frame at 50 fps (20 ms) are not counted. The guest send gap is measured on the guest's own clock, which stops while it is paused.</small></p>");
    }
    if requests {
        h.push_str("<h3>What a request client saw</h3>");
        head(&mut h, "<th>runs</th><th>p50 ms before</th><th>p50 / p99 / p99.9 ms during</th><th>slowest ms during (worst run)</th><th>over deadline or failed (total)</th><th>client retransmits (median)</th>");
        for row in &s.rows {
            let group: Vec<&migbench_model::record::RrSummary> = done
                .iter()
                .filter(|r| group_key(r, vary) == row.group)
                .filter_map(|r| r.rec.rr.as_ref())
                .collect();
            if group.is_empty() {
                continue;
            }
            let med = |g: fn(&migbench_model::record::RrSummary) -> Option<f64>| {
                median(&group.iter().filter_map(|x| g(x)).collect::<Vec<_>>())
            };
            dims(&mut h, row);
            let _ =
                write!(
                h,
                "<td>{}</td><td>{}</td><td>{} / {} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                group.len(),
                f(med(|x| x.before.map(|l| l.p50))),
                f(med(|x| x.during.map(|l| l.p50))),
                f(med(|x| x.during.map(|l| l.p99))),
                f(med(|x| x.during.map(|l| l.p999))),
                f(group.iter().filter_map(|x| x.during.map(|l| l.max)).reduce(f64::max)),
                group.iter().map(|x| x.over_deadline).sum::<u64>(),
                f(med(|x| Some(x.retransmits as f64))),
            );
        }
        h.push_str("</tbody></table><p><small>Requests go out on a fixed schedule over one TCP connection; a request's latency runs from when it was due, so requests queued behind a stalled one count their wait. Medians over the group's completed runs.</small></p>");
    }
    Some(h)
}

/// The `runs.jsonl` lines left out, one row each: where, which run, the
/// field and value at fault, and why.
pub(super) fn skipped_table(skipped: &[crate::load::Skipped]) -> String {
    let mut h = String::from("<table><thead><tr><th>file:line</th><th>run</th><th>field</th><th>value</th><th>why</th></tr></thead><tbody>");
    let o = |v: &Option<String>| esc(v.as_deref().unwrap_or("–"));
    for s in skipped {
        let _ = write!(
            h,
            "<tr><td style=\"text-align:left\">{}:{}</td><td>{}</td><td style=\"text-align:left\">{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            esc(&s.file),
            s.line,
            o(&s.run_id),
            o(&s.field),
            o(&s.value),
            esc(&s.why)
        );
    }
    h.push_str("</tbody></table><p><small>These records are in no statistic, table or chart: a line that is not a whole record, or one holding a value no run can have (not finite, negative, a time above 1e9 ms, a downtime longer than the whole migration by more than a second, ...).</small></p>");
    h
}
