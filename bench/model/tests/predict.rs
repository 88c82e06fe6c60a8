//! The model against real runs: fitted on the first repetition of each
//! combination in `fixtures/model/` (link-speed, max-downtime and
//! bandwidth as run here, TCG on 2 cores), it predicts the other
//! repetitions; the table it prints is the README's accuracy.

use std::path::Path;

use migbench_model::predict::accuracy::{check, Accuracy};
use migbench_model::predict::fit;
use migbench_model::RunRecord;

fn fixtures() -> Vec<RunRecord> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let mut recs = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "jsonl") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            recs.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<RunRecord>(l).unwrap()),
            );
        }
    }
    recs
}

#[test]
fn fitted_on_one_repetition_the_model_predicts_the_others() {
    let recs = fixtures();
    assert!(recs.len() >= 40, "{} fixture runs", recs.len());
    let (train, test): (Vec<RunRecord>, Vec<RunRecord>) =
        recs.into_iter().partition(|r| r.params.repetition == 0);
    let c = fit(&train).expect("constants fitted").constants;
    println!("fitted: {c:?}");
    println!(
        "{:<44} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}  outcome",
        "run", "total s", "pred s", "err %", "down ms", "pred ms", "err ms"
    );
    let refs: Vec<&RunRecord> = test.iter().collect();
    let checked = check(&refs, &c);
    for k in &checked {
        let r = k.rec;
        let mut line = format!(
            "{:<44}",
            r.params.label().chars().take(44).collect::<String>()
        );
        if let (Some(e), Some(t)) = (k.time_error_pct, r.total_time_ms) {
            line += &format!(
                " {:>9.1} {:>9.1} {:>8.1}",
                t / 1e3,
                k.predicted.total_time_ms / 1e3,
                e
            );
        }
        if let (Some(e), Some(d)) = (k.downtime_error_ms, r.downtime_qemu_ms) {
            line += &format!(" {d:>8.0} {:>8.0} {e:>8.0}", d + e);
        }
        println!(
            "{line}  {} / predicted {}",
            r.outcome,
            if k.predicted.converges {
                "completes"
            } else {
                "does not"
            }
        );
    }
    let a = Accuracy::of(&checked);
    println!("{a:?}");
    let (time, down, tolerance) = (
        a.time_mae_pct.unwrap(),
        a.downtime_mae_ms.unwrap(),
        a.downtime_tolerance_ms.unwrap(),
    );
    assert!(time <= 10.0, "total time off by {time:.1} % (median)");
    assert!(
        down <= tolerance,
        "downtime off by {down:.0} ms (median), tolerance {tolerance:.0} ms"
    );
    assert!(
        a.ending_right_pct() >= 95.0,
        "ending right in {:.0} % of runs",
        a.ending_right_pct()
    );
}

/// The settings' rules (not fitted) against `fixtures/model/settings/`
/// (convergence.toml as run here: a 256 MiB guest dirtying 20 MB/s over
/// 100 Mbit, plain and with each remedy): every ending right, total time
/// within 10 % (median) and 35 % (each run).
#[test]
fn the_settings_rules_predict_how_each_remedy_ends() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/model/settings/convergence.jsonl");
    let recs: Vec<RunRecord> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refs: Vec<&RunRecord> = recs.iter().collect();
    let checked = check(&refs, &migbench_model::predict::Constants::LAB);
    assert_eq!(checked.len(), 7);
    for k in &checked {
        println!(
            "{:<20} {} / predicted {} by {}: total {:?} %, downtime {:?} ms",
            k.rec.params.variant,
            k.rec.outcome,
            k.predicted.outcome,
            k.predicted.finished_by,
            k.time_error_pct.map(|e| e.round()),
            k.downtime_error_ms.map(|e| e.round())
        );
        assert_eq!(
            k.rec.outcome, k.predicted.outcome,
            "{}",
            k.rec.params.variant
        );
        assert_eq!(
            k.rec.outcome_detail,
            Some(k.predicted.finished_by),
            "{}",
            k.rec.params.variant
        );
        if let Some(e) = k.time_error_pct {
            assert!(e.abs() <= 35.0, "{}: {e:.0} %", k.rec.params.variant);
        }
    }
    let a = Accuracy::of(&checked);
    assert!(a.time_mae_pct.unwrap() <= 10.0, "{a:?}");
}
