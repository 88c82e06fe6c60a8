//! The model's fixtures as the model tests read them, and how those
//! tests name, print and summarise a configuration's runs.
#![allow(dead_code)] // each test crate uses its own part

use std::path::Path;

use migbench_model::stats::median;
use migbench_model::RunRecord;
use migbench_predict::accuracy::{
    check, downtime_tolerance_ms, downtime_tolerance_p90_ms, measured_downtime, Checked,
};
use migbench_predict::{fit, Model};

/// Every record of the `.jsonl` files in `fixtures/model/DIR` (`""`: the
/// top level), files in name order.
pub fn load(dir: &str) -> Vec<RunRecord> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/model")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut recs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        recs.extend(
            text.lines()
                .map(|l| serde_json::from_str::<RunRecord>(l).unwrap()),
        );
    }
    recs
}

/// Every record at the top level of `fixtures/model/`: what the model is fitted on.
pub fn fixtures() -> Vec<RunRecord> {
    load("")
}

/// The fit of every fixture, made once for the tests that use it.
pub fn fitted() -> &'static Model {
    static FITTED: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    FITTED.get_or_init(|| fit(&fixtures()).expect("constants fitted"))
}

/// A configuration: everything a run's parameters set but its repetition.
pub fn cell(r: &RunRecord) -> String {
    let p = &r.params;
    format!(
        "{} {} ws {} {} limit {} cap {}",
        p.ram, p.dirty_rate, p.working_set, p.link_rate, p.downtime_limit, p.max_bandwidth
    )
}

/// One run's line: its configuration, total time and downtime measured,
/// predicted and the error, and how it ended against the prediction.
pub fn print_row(k: &Checked) {
    let r = k.rec;
    let mut line = format!("{:<60}", cell(r));
    match (k.time_error_pct, r.total_time_ms) {
        (Some(e), Some(t)) => {
            line += &format!(
                " {:>7.1} {:>7.1} {:>6.1}",
                t / 1e3,
                k.predicted.total_time_ms / 1e3,
                e
            )
        }
        _ => line += &format!(" {:>22}", ""),
    }
    if let (Some(e), Some(d)) = (k.downtime_error_ms, measured_downtime(r)) {
        line += &format!(" {d:>7.0} {:>7.0} {e:>6.0}", d + e);
    }
    println!(
        "{line}  {} / {}",
        r.outcome,
        if k.predicted.converges {
            "completes"
        } else {
            "does not"
        }
    );
}

/// One configuration's measured medians: total time and downtime, ms.
pub fn medians(runs: &[&RunRecord]) -> (f64, f64) {
    let of = |v: Vec<f64>| median(&v).expect("a measured run");
    (
        of(runs.iter().filter_map(|r| r.total_time_ms).collect()),
        of(runs.iter().filter_map(|r| measured_downtime(r)).collect()),
    )
}

/// The least and the greatest of `v` (infinite the wrong way round when
/// `v` is empty).
pub fn range(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// The `q`-quantile of `v` (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = v.to_vec();
    v.sort_by(f64::total_cmp);
    let k = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[k]
}

/// Figures over checked runs: median and 90th percentile of |total time
/// error| (%) and |downtime error| (ms), and the share of runs whose
/// ending was right.
#[derive(Debug)]
pub struct Figures {
    pub runs: usize,
    pub time_median: f64,
    pub time_p90: f64,
    pub down_median: f64,
    pub down_p90: f64,
    /// Median of |downtime error| over the run's median tolerance (20 ms
    /// or 15 %): at most 1 meets the target.
    pub down_scaled_median: f64,
    /// 90th percentile of |downtime error| over the run's p90 tolerance
    /// (50 ms or 30 %).
    pub down_scaled_p90: f64,
    pub ending_pct: f64,
}

pub fn figures(checked: &[Checked]) -> Figures {
    let time: Vec<f64> = checked
        .iter()
        .filter_map(|c| c.time_error_pct.map(f64::abs))
        .collect();
    let down: Vec<f64> = checked
        .iter()
        .filter_map(|c| c.downtime_error_ms.map(f64::abs))
        .collect();
    let scaled = |tol: fn(f64) -> f64| -> Vec<f64> {
        checked
            .iter()
            .filter_map(|c| Some(c.downtime_error_ms?.abs() / tol(measured_downtime(c.rec)?)))
            .collect()
    };
    Figures {
        down_scaled_median: median(&scaled(downtime_tolerance_ms)).unwrap(),
        down_scaled_p90: quantile(&scaled(downtime_tolerance_p90_ms), 0.9),
        runs: checked.len(),
        time_median: median(&time).unwrap(),
        time_p90: quantile(&time, 0.9),
        down_median: median(&down).unwrap(),
        down_p90: quantile(&down, 0.9),
        ending_pct: checked
            .iter()
            .filter(|c| c.completed == c.predicted.converges)
            .count() as f64
            / checked.len() as f64
            * 100.0,
    }
}

/// Each configuration of `recs` left out in turn: fitted on the rest,
/// its runs predicted (each printed). The configurations, and every run
/// checked.
pub fn left_out(recs: &[RunRecord]) -> (Vec<String>, Vec<Checked<'_>>) {
    let mut cells: Vec<String> = recs.iter().map(cell).collect();
    cells.sort();
    cells.dedup();
    println!(
        "{:<60} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6}  ending",
        "configuration left out", "total s", "pred s", "err %", "down ms", "pred ms", "err ms"
    );
    let mut all: Vec<Checked> = Vec::new();
    for c in &cells {
        let train: Vec<RunRecord> = recs.iter().filter(|r| cell(r) != *c).cloned().collect();
        let test: Vec<&RunRecord> = recs.iter().filter(|r| cell(r) == *c).collect();
        let constants = fit(&train).expect("fitted").constants;
        for k in check(&test, &constants) {
            print_row(&k);
            all.push(k);
        }
    }
    (cells, all)
}
