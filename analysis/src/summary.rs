//! The summary table: one [`SummaryRow`] per group of runs that share the
//! values of every varying dimension, with outcome counts and an
//! [`Estimate`] (median, mean, sd, 95 % CI) per metric. Failed and
//! timed-out runs are counted, never dropped.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::dims::{Dim, METRICS};
use crate::frame::{
    all_runs, group_key, group_stats, runs_frame, scan_probes, varying, ProbeScan, RunRef,
};
use crate::load::ResultsSet;
use crate::stats::Estimate;

/// Metric `m` of each row, in order (`None` where a row lacks it).
pub fn metric_of(rows: &[SummaryRow], m: &str) -> Vec<Option<Estimate>> {
    rows.iter().map(|r| r.metrics.get(m).copied()).collect()
}

/// One group of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    /// Group key (`dim=label ...`).
    pub group: String,
    /// Label per varying dimension.
    pub dims: BTreeMap<String, String>,
    /// Numeric value per varying dimension (for charts).
    #[serde(skip)]
    pub dim_values: BTreeMap<String, f64>,
    /// Runs in the group.
    pub n: usize,
    /// Runs that completed.
    pub completed: usize,
    /// Runs that failed.
    pub failed: usize,
    /// Runs that timed out.
    pub timed_out: usize,
    /// Runs interrupted by the operator.
    pub interrupted: usize,
    /// Runs a policy aborted.
    pub aborted: usize,
    /// completed / n.
    pub success_rate: f64,
    /// Metric name → estimate over completed runs.
    pub metrics: BTreeMap<String, Estimate>,
    /// Probes lost / sent over the group's runs, from raw probes (%).
    pub probes_lost_pct: Option<f64>,
    /// Median over runs of each run's 99th-percentile probe RTT (ms), from raw probes.
    pub rtt_p99_ms: Option<f64>,
}

/// The whole summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Names of the varying dimensions, in order.
    pub varying: Vec<String>,
    /// One row per group, sorted by dimension values.
    pub rows: Vec<SummaryRow>,
    /// Warnings gathered while loading (the `runs.jsonl` lines skipped,
    /// [`crate::load::Skipped`]) and reading raw probes (each `FILE:LINE:
    /// ...` or `FILE: ...`).
    pub warnings: Vec<String>,
}

/// Build the summary of some results sets. `with_probes` also scans every
/// run's raw `probes.csv`; a file that cannot be used costs only its run's
/// probe columns, with a warning naming it and why.
pub fn summarise(sets: &[ResultsSet], with_probes: bool) -> anyhow::Result<Summary> {
    let runs = all_runs(sets);
    let vary = varying(&runs);
    let df = runs_frame(&runs, &vary)?;
    let stats = group_stats(&df)?;
    let probes = if with_probes {
        let paths: Vec<_> = runs
            .iter()
            .map(|r| r.set.run_dir(&r.rec.run_id).join("probes.csv"))
            .collect();
        scan_probes(&paths)
    } else {
        ProbeScan::default()
    };
    let probe_warnings = probes
        .unusable
        .iter()
        .map(|e| format!("{e}; its run is reported without probe metrics"));
    let warnings: Vec<String> = sets
        .iter()
        .flat_map(|s| s.warnings.clone())
        .chain(probe_warnings)
        .collect();
    let probes_ok = &probes.stats;
    // Representative run per group for labels; probe stats pooled per group.
    let mut firsts: BTreeMap<String, RunRef> = BTreeMap::new();
    let mut pooled: HashMap<String, (u64, u64, Vec<f64>)> = HashMap::new();
    for r in &runs {
        let key = group_key(r, &vary);
        firsts.entry(key.clone()).or_insert(*r);
        let path = r.set.run_dir(&r.rec.run_id).join("probes.csv");
        if let Some(p) = probes_ok.get(&path) {
            let e = pooled.entry(key).or_default();
            e.0 += p.sent;
            e.1 += p.lost;
            if p.rtt_p99_ms.is_finite() {
                e.2.push(p.rtt_p99_ms);
            }
        }
    }
    let mut rows: Vec<SummaryRow> = firsts
        .iter()
        .map(|(key, r)| {
            let g = stats.get(key).cloned().unwrap_or_default();
            let count = |o: &str| g.outcomes.get(o).copied().unwrap_or(0);
            let metrics = METRICS
                .iter()
                .filter_map(|m| {
                    let mo = g.metrics.get(m.name)?;
                    Some((
                        m.name.to_string(),
                        Estimate::from_moments(mo.n, mo.median, mo.mean, mo.sd),
                    ))
                })
                .collect();
            let (probes_lost_pct, rtt_p99_ms) = match pooled.get(key) {
                Some((sent, lost, p99s)) if *sent > 0 => (
                    Some(100.0 * *lost as f64 / *sent as f64),
                    crate::stats::median(p99s),
                ),
                _ => (None, None),
            };
            SummaryRow {
                group: key.clone(),
                dims: vary
                    .iter()
                    .map(|d| (d.name.to_string(), (d.label)(&r.rec.params)))
                    .collect(),
                dim_values: vary
                    .iter()
                    .map(|d| (d.name.to_string(), (d.value)(&r.rec.params)))
                    .collect(),
                n: g.n,
                completed: count("completed"),
                failed: count("failed"),
                timed_out: count("timed_out"),
                aborted: count("aborted"),
                interrupted: count("interrupted"),
                success_rate: if g.n > 0 {
                    count("completed") as f64 / g.n as f64
                } else {
                    0.0
                },
                metrics,
                probes_lost_pct,
                rtt_p99_ms,
            }
        })
        .collect();
    let order: Vec<&Dim> = vary.clone();
    rows.sort_by(|a, b| {
        for d in &order {
            let (x, y) = (a.dim_values[d.name], b.dim_values[d.name]);
            match x.total_cmp(&y) {
                std::cmp::Ordering::Equal => continue,
                o => return o,
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(Summary {
        varying: vary.iter().map(|d| d.name.to_string()).collect(),
        rows,
        warnings,
    })
}
