//! What the services' clients saw, drawn: the stall of a TCP stream per
//! playout buffer and the request latency per group, and the service
//! series of a run's timeline.

use std::path::Path;

use anyhow::Result;
use migbench_model::Outcome;

use crate::charts::bars::{Bars, Series};
use crate::charts::{render, Rendered};
use crate::frame::{group_key, RunRef};
use crate::summary::SummaryRow;

/// Stall time per buffer and request latency per group, when a service ran.
pub(super) fn charts(
    runs: &[RunRef],
    vary: &[&crate::dims::Dim],
    rows: &[SummaryRow],
    cats: &[String],
    groups: &str,
    dir: &Path,
    out: &mut Vec<Rendered>,
) -> Result<()> {
    let per = if groups.is_empty() {
        "all runs".to_string()
    } else {
        format!("per {groups}")
    };
    let mut buffers: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.rec.stream.as_ref())
        .flat_map(|s| s.playout.iter().map(|p| p.buffer_ms))
        .collect();
    buffers.sort_by(f64::total_cmp);
    buffers.dedup();
    if !buffers.is_empty() {
        // Per buffer: the median total stall over the group's completed runs.
        let series = buffers
            .iter()
            .map(|&b| Series {
                name: format!("buffer {:.1} s", b / 1e3),
                values: rows
                    .iter()
                    .map(|row| {
                        let v: Vec<f64> = runs
                            .iter()
                            .filter(|r| {
                                r.rec.outcome == Outcome::Completed
                                    && group_key(r, vary) == row.group
                            })
                            .filter_map(|r| {
                                let s = r.rec.stream.as_ref()?;
                                s.playout
                                    .iter()
                                    .find(|p| p.buffer_ms == b)
                                    .map(|p| p.stall_ms)
                            })
                            .collect();
                        crate::stats::estimate(&v)
                    })
                    .collect(),
                outliers: Vec::new(),
            })
            .collect();
        out.push(render(
            &Bars {
                name: "stream-stall".into(),
                title: format!(
                    "What a viewer saw {per}: total stall of a TCP stream by playout buffer"
                ),
                y_axis: "stalled (ms)".into(),
                categories: cats.to_vec(),
                series,
                marker: None,
            },
            dir,
        )?);
    }
    if runs.iter().any(|r| r.rec.rr.is_some()) {
        out.push(render(
            &Bars {
                name: "request-latency".into(),
                title: format!("Requests sent while migrating {per}: p99 and slowest latency"),
                y_axis: "latency (ms)".into(),
                categories: cats.to_vec(),
                series: vec![
                    Series {
                        name: "p99".into(),
                        values: crate::summary::metric_of(rows, "rr_p99_during_ms"),
                        outliers: Vec::new(),
                    },
                    Series {
                        name: "slowest".into(),
                        values: crate::summary::metric_of(rows, "rr_max_during_ms"),
                        outliers: Vec::new(),
                    },
                ],
                marker: None,
            },
            dir,
        )?);
    }
    Ok(())
}

/// A run's service series for its timeline: each request's latency at
/// its send time, and each stream chunk's gap since the previous one at
/// its arrival (points above 20 ms only: the rest is the steady cadence).
pub(super) fn timeline_series(
    r: &RunRef,
    series: &super::drawn_series::Series,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out = Vec::new();
    if let Some(ev) = series.service_probes(r, "rr.csv") {
        let pts = ev
            .iter()
            .filter_map(|e| Some((e.sent_ms, e.recv_ms? - e.sent_ms)))
            .collect();
        out.push(("request latency".to_string(), pts));
    }
    if let Some(ch) = series.stream(r) {
        let pts = ch
            .windows(2)
            .map(|w| (w[1].recv_ms, w[1].recv_ms - w[0].recv_ms))
            .filter(|(_, gap)| *gap > migbench_pure::service::VISIBLE_STALL_MS)
            .collect();
        out.push(("stream chunk gap".to_string(), pts));
    }
    out
}
