//! How right the model was about recorded runs: each run's prediction
//! beside its measurement, and the figures the issue holds the model to —
//! median |error| of total time (completed runs), of downtime, and the
//! share of runs whose ending (completes or not) it got right. The
//! validation test, the report and `compare --predicted` all use this.

use serde::Serialize;

use crate::{predict, Constants, Inputs, Prediction};
use migbench_model::stats::median;
use migbench_model::{Outcome, RunRecord};

/// The pause a run's guest had at the end: QEMU's downtime (libvirt's
/// through libvirt), or for a completion forced by pausing the guest the
/// pause migbench imposed (QEMU's figure then covers only its last part).
pub fn measured_downtime(r: &RunRecord) -> Option<f64> {
    let forced_pause = r.outcome_detail == Some(migbench_model::record::OutcomeDetail::Forced)
        && !r.params.postcopy.enabled();
    match r.paused_ms {
        Some(p) if forced_pause => Some(p),
        _ => r.downtime_qemu_ms.or(r.downtime_libvirt_ms),
    }
}

/// The downtime target for most runs (the median's): within 20 ms
/// or 15 % of the measured downtime, the larger.
pub fn downtime_tolerance_ms(measured_ms: f64) -> f64 {
    (0.15 * measured_ms).max(20.0)
}

/// The downtime target for nine runs in ten (the 90th
/// percentile's): within 50 ms or 30 %, the larger.
pub fn downtime_tolerance_p90_ms(measured_ms: f64) -> f64 {
    (0.30 * measured_ms).max(50.0)
}

/// One run: measured and predicted.
#[derive(Debug, Clone, Serialize)]
pub struct Checked<'a> {
    /// The run.
    #[serde(skip)]
    pub rec: &'a RunRecord,
    /// What the model predicted for its parameters.
    pub predicted: Prediction,
    /// The run completed.
    pub completed: bool,
    /// Total time error, % of the measured (both completed).
    pub time_error_pct: Option<f64>,
    /// Downtime error, ms (both completed; see [`measured_downtime`]).
    pub downtime_error_ms: Option<f64>,
}

/// Each run of `records` a model can be judged on (completed, timed out
/// or aborted by a policy, without an injected fault) with its prediction.
pub fn check<'a>(records: &[&'a RunRecord], c: &Constants) -> Vec<Checked<'a>> {
    records
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::Completed | Outcome::TimedOut | Outcome::Aborted
            )
        })
        .filter(|r| !r.params.fault.is_some())
        .map(|r| {
            let p = predict(&Inputs::of(&r.params), c);
            let completed = r.outcome == Outcome::Completed;
            let both = completed && p.converges;
            let measured_down = measured_downtime(r);
            Checked {
                rec: r,
                predicted: p,
                completed,
                time_error_pct: r
                    .total_time_ms
                    .filter(|t| both && *t > 0.0)
                    .map(|t| (p.total_time_ms - t) / t * 100.0),
                downtime_error_ms: match (both, measured_down, p.downtime_ms) {
                    (true, Some(d), Some(pd)) => Some(pd - d),
                    _ => None,
                },
            }
        })
        .collect()
}

/// The figures over some checked runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Accuracy {
    /// Runs judged.
    pub runs: usize,
    /// Runs whose ending the model got right.
    pub ending_right: usize,
    /// Median |total time error|, % (runs both completed).
    pub time_mae_pct: Option<f64>,
    /// Median |downtime error|, ms.
    pub downtime_mae_ms: Option<f64>,
    /// The downtime tolerance: 50 ms or 25 % of the median
    /// measured downtime, whichever is larger.
    pub downtime_tolerance_ms: Option<f64>,
}

impl Accuracy {
    /// The figures of `checked`.
    pub fn of(checked: &[Checked]) -> Accuracy {
        let measured_down: Vec<f64> = checked
            .iter()
            .filter(|c| c.downtime_error_ms.is_some())
            .filter_map(|c| measured_downtime(c.rec))
            .collect();
        Accuracy {
            runs: checked.len(),
            ending_right: checked
                .iter()
                .filter(|c| c.completed == c.predicted.converges)
                .count(),
            time_mae_pct: median(
                &checked
                    .iter()
                    .filter_map(|c| c.time_error_pct.map(f64::abs))
                    .collect::<Vec<_>>(),
            ),
            downtime_mae_ms: median(
                &checked
                    .iter()
                    .filter_map(|c| c.downtime_error_ms.map(f64::abs))
                    .collect::<Vec<_>>(),
            ),
            downtime_tolerance_ms: median(&measured_down).map(|m| (0.25 * m).max(50.0)),
        }
    }

    /// Share of runs whose ending was right, %.
    pub fn ending_right_pct(&self) -> f64 {
        if self.runs == 0 {
            return 0.0;
        }
        self.ending_right as f64 / self.runs as f64 * 100.0
    }
}
