//! The report's fault table: for each run with an injected fault, when it
//! struck, how the migration ended, where the guest ended and whether it
//! answers and is intact there, how long until the migration recovered or
//! the failure was noticed, what a client felt, and what was left behind.

use std::fmt::Write as _;

use crate::frame::RunRef;

use super::esc;

/// The table (every run, so the control runs without a fault sit beside
/// the faulted ones), or `None` when no run had a fault.
pub(super) fn faults_table(runs: &[RunRef]) -> Option<String> {
    if !runs.iter().any(|r| r.rec.params.fault.is_some()) {
        return None;
    }
    let f = |v: Option<f64>, scale: f64, digits: usize| {
        v.map(|x| format!("{:.digits$}", x * scale))
            .unwrap_or_else(|| "–".into())
    };
    let mut h = String::from("<table><thead><tr><th>run</th><th>variant</th><th>fault</th><th>struck at</th><th>outcome</th><th>guest ended on</th><th>answers</th><th>memory / disk integrity</th><th>total s</th><th>fault → end s</th><th>fault → recovered s</th><th>recovery attempts</th><th>probe gap during fault ms</th><th>longest probe gap ms</th><th>QEMU downtime ms</th><th>leftovers</th><th>error</th></tr></thead><tbody>");
    for r in runs {
        let rec = r.rec;
        let fr = rec.fault.as_ref();
        let struck = match fr {
            Some(x) if x.struck => format!(
                "{} s ({})",
                f(x.struck_ms, 1e-3, 1),
                esc(x.phase.as_deref().unwrap_or("?"))
            ),
            Some(_) => "never (ended first)".into(),
            None if rec.params.fault.is_some() => "–".into(),
            None => "no fault".into(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            esc(&rec.run_id),
            esc(&rec.params.variant),
            esc(&rec.params.fault.to_string()),
            struck,
            rec.outcome,
            fr.map(|x| x.guest.to_string()).unwrap_or_else(|| "–".into()),
            fr.map(|x| if x.answers { "yes" } else { "no" }).unwrap_or("–"),
            rec.integrity,
            rec.disk_integrity,
            f(rec.total_time_ms, 1e-3, 1),
            f(fr.and_then(|x| x.to_end_ms), 1e-3, 1),
            f(fr.and_then(|x| x.to_recovery_ms), 1e-3, 1),
            fr.map(|x| x.recover_attempts.to_string()).unwrap_or_else(|| "–".into()),
            f(fr.and_then(|x| x.probe_gap_ms), 1.0, 0),
            f(rec.downtime_probe_ms, 1.0, 0),
            f(rec.downtime_qemu_ms, 1.0, 0),
            fr.and_then(|x| x.leftovers).map(|n| n.to_string()).unwrap_or_else(|| "–".into()),
            esc(rec.error.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</tbody></table><p><small>Struck at: seconds after <code>migrate</code> and the migration's state then. Fault → end: from the strike to the migration completing, or to its failure being noticed. Fault → recovered: a post-copy paused by the fault running again after <code>migrate-recover</code> + resume. Probe gap: the longest gap in the guest's echo replies that overlapped the fault (0: none). Leftovers: namespaces, QEMU processes and directories of the run still present after its teardown.</small></p>");
    Some(h)
}
