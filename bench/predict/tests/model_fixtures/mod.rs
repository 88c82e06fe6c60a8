//! The model's fixtures as the model tests read them, and how those
//! tests name, print and summarise a configuration's runs.
#![allow(dead_code)] // each test crate uses its own part

use std::path::Path;

use migbench_model::stats::median;
use migbench_model::RunRecord;
use migbench_predict::accuracy::{measured_downtime, Checked};
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
