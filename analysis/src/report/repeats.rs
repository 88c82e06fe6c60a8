//! The report's "Repetitions" table for a scenario with `repetitions =
//! "auto"`: per group, how many runs it took, how precise its key metrics
//! are (95 % interval half-width over the mean) and whether the precision
//! was reached or the maximum stopped it.

use std::fmt::Write as _;

use migbench_model::repeat::{key_values, relative_half_width, Adaptive, Repetitions};

use crate::frame::RunRef;
use crate::load::ResultsSet;

use super::esc;

/// The scenario's adaptive setting, if its repetitions are `auto`.
fn adaptive(set: &ResultsSet) -> Option<Adaptive> {
    let m = &set.manifest;
    let sc =
        migbench_model::Scenario::parse(std::path::Path::new(&m.scenario_path), &m.scenario_text)
            .ok()?;
    match sc.repetitions {
        Repetitions::Auto(a) => Some(a),
        Repetitions::Fixed(_) => None,
    }
}

/// The table, or `None` unless some set ran with `repetitions = "auto"`.
pub(super) fn repeats_table(sets: &[ResultsSet], runs: &[RunRef]) -> Option<String> {
    let a = sets.iter().find_map(adaptive)?;
    let groups = crate::frame::groups(runs);
    let pct = |v: Option<f64>| {
        v.map(|w| format!("±{:.1} %", w * 100.0))
            .unwrap_or_else(|| "–".into())
    };
    let mut h = format!(
        "<p>Repetitions: {} — each group ran until the 95 % interval of its mean total time and probe downtime was within ±{:.1} % (at least {}, at most {} runs), groups interleaved.</p><table><thead><tr><th>group</th><th>runs</th><th>completed</th><th>total time</th><th>probe downtime</th><th>stopped because</th></tr></thead><tbody>",
        esc(&Repetitions::Auto(a).to_string()),
        a.precision * 100.0,
        a.min,
        a.max
    );
    for (g, v) in &groups {
        let recs: Vec<_> = v.iter().map(|r| r.rec).collect();
        let col = |k: usize| -> Vec<f64> { recs.iter().filter_map(|r| key_values(r)[k]).collect() };
        let why = match a.reached(&recs) {
            Some(true) => "precise enough",
            _ if recs.len() >= a.max as usize => "maximum reached",
            None => "nothing completed",
            Some(false) => "not finished (interrupted?)",
        };
        let _ = write!(
            h,
            "<tr><td style=\"text-align:left\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(g),
            recs.len(),
            recs.iter().filter(|r| r.outcome == migbench_model::Outcome::Completed).count(),
            pct(relative_half_width(&col(0))),
            pct(relative_half_width(&col(1))),
            why
        );
    }
    h.push_str("</tbody></table>");
    Some(h)
}
