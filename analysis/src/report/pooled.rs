//! Charts that pool runs across groups: the convergence map (dirty rate
//! × bandwidth) and the probe RTT CDF per migration phase.

use std::collections::BTreeMap;

use migbench_model::Outcome;

use crate::charts::cdf::Cdf;
use crate::charts::convergence::{Cell, Convergence};
use crate::frame::RunRef;
use crate::stats::ecdf;

/// Dirty rate × bandwidth, pooling every other dimension.
pub(super) fn convergence(runs: &[RunRef]) -> Convergence {
    let mut xs: Vec<(f64, String)> = runs
        .iter()
        .map(|r| {
            (
                r.rec.params.dirty_rate.0 as f64,
                r.rec.params.dirty_rate.to_string(),
            )
        })
        .collect();
    let bw_label = |r: &RunRef| match r.rec.params.max_bandwidth {
        migbench_model::settings::BandwidthCap::Unlimited => {
            format!("link {}", r.rec.params.link_rate)
        }
        cap => format!("cap {cap} / link {}", r.rec.params.link_rate),
    };
    let mut ys: Vec<(f64, String)> = runs
        .iter()
        .map(|r| (r.rec.params.bandwidth_mbs(), bw_label(r)))
        .collect();
    for v in [&mut xs, &mut ys] {
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        v.dedup_by(|a, b| a.1 == b.1);
    }
    let mut cells: BTreeMap<(usize, usize), (usize, usize, Vec<f64>)> = BTreeMap::new();
    for r in runs {
        let x = xs
            .iter()
            .position(|v| v.1 == r.rec.params.dirty_rate.to_string())
            .unwrap_or(0);
        let y = ys.iter().position(|v| v.1 == bw_label(r)).unwrap_or(0);
        let c = cells.entry((x, y)).or_default();
        c.1 += 1;
        if r.rec.outcome == Outcome::Completed {
            c.0 += 1;
            if let Some(t) = r.rec.total_time_ms {
                c.2.push(t / 1e3);
            }
        }
    }
    Convergence {
        name: "convergence".into(),
        title: "Convergence map: outcome and median total time".into(),
        xs: xs.into_iter().map(|v| v.1).collect(),
        ys: ys.into_iter().map(|v| v.1).collect(),
        cells: cells
            .into_iter()
            .map(|((x, y), (completed, n, t))| Cell {
                x,
                y,
                completed,
                n,
                total_s: crate::stats::median(&t),
            })
            .collect(),
    }
}

/// Probe RTT CDF per phase, pooled over completed runs (none without
/// probes: `--no-probes`, or no usable `probes.csv`).
pub(super) fn rtt_cdf(runs: &[RunRef], series: &super::drawn_series::Series) -> Option<Cdf> {
    let mut phases: [Vec<f64>; 3] = Default::default();
    for r in runs.iter().filter(|r| r.rec.outcome == Outcome::Completed) {
        let Some(probes) = series.probes(r) else {
            continue;
        };
        let progress = series.progress(r);
        let (Some(first), Some(last)) = (progress.first(), progress.last()) else {
            continue;
        };
        // Split by send time into the three phases.
        for p in probes {
            let Some(recv) = p.recv_ms else { continue };
            let (sent, rtt) = (p.sent_ms, recv - p.sent_ms);
            let phase = if sent < first.t_ms {
                0
            } else if sent < last.t_ms {
                1
            } else {
                2
            };
            phases[phase].push(rtt);
        }
    }
    if phases.iter().all(Vec::is_empty) {
        return None;
    }
    let names = ["before migration", "during migration", "after migration"];
    Some(Cdf {
        name: "rtt-cdf".into(),
        title: "Probe RTT before / during / after migration (completed runs)".into(),
        curves: names
            .iter()
            .zip(phases.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (format!("{n} (n={})", v.len()), ecdf(v, 400)))
            .collect(),
    })
}
