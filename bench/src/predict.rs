//! `migbench predict SCENARIO`: the pre-copy model
//! (`migbench_model::predict`) applied to each run of a scenario's matrix
//! before anything runs — predicted total time, downtime, passes, bytes,
//! whether it converges and, when not, the smallest change that would —
//! as a table or one JSON object per run; `--fit RESULTS_DIR...` fits the
//! model's constants from a lab's own runs first.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use migbench_model::predict::{fit, predict, to_converge, Constants, Inputs};
use migbench_model::{expand, RunRecord, Scenario};

/// One run's prediction as `--format json` prints it.
#[derive(serde::Serialize)]
struct Predicted<'a> {
    run_id: String,
    params: &'a migbench_model::RunParams,
    converges: bool,
    predicted_total_time_ms: f64,
    predicted_downtime_ms: Option<f64>,
    predicted_passes: u32,
    predicted_bytes: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_converge: Option<String>,
}

/// The constants fitted from the runs in `dirs`.
fn fitted(dirs: &[PathBuf]) -> Result<Constants> {
    let mut recs: Vec<RunRecord> = Vec::new();
    for d in dirs {
        let path = d.join("runs.jsonl");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        recs.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    fit(&recs).with_context(|| {
        format!(
            "no completed pre-copy run without a bandwidth cap in {} to fit the model on",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Predict every run of `scenario`; a closed stdout (`| head`) ends it quietly.
pub fn command(scenario: &Path, json: bool, fit_dirs: &[PathBuf]) -> Result<i32> {
    match print(scenario, json, fit_dirs) {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(0)
        }
        r => r,
    }
}

fn print(scenario: &Path, json: bool, fit_dirs: &[PathBuf]) -> Result<i32> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let sc = Scenario::load(scenario)?;
    let c = if fit_dirs.is_empty() {
        Constants::LAB
    } else {
        fitted(fit_dirs)?
    };
    let matrix = expand(&sc);
    if !json {
        writeln!(
            out,
            "model: link goodput {:.1} %, setup {:.0} ms + {:.0} ms/GiB, switchover {:.0} ms + {:.0} ms/GiB, guest's own memory {:.0} MB + {:.0} MB/GiB, background dirtying {:.1} MB/s{}",
            c.goodput * 100.0,
            c.setup_ms,
            c.setup_ms_per_gib,
            c.switchover_ms,
            c.switchover_ms_per_gib,
            c.base_bytes / 1e6,
            c.base_bytes_per_gib / 1e6,
            c.background_rate / 1e6,
            if fit_dirs.is_empty() { " (this lab's defaults)" } else { " (fitted)" }
        )?;
        writeln!(
            out,
            "{:<9} {:<48} {:>9} {:>9} {:>7} {:>9}  converges",
            "run", "settings", "total s", "down ms", "passes", "MB sent"
        )?;
    }
    let mut total_s = 0.0;
    for p in &matrix {
        let i = Inputs::of(p);
        let pr = predict(&i, &c);
        let advice = to_converge(&i, &c);
        total_s += pr.total_time_ms / 1e3 + 15.0;
        if json {
            let row = Predicted {
                run_id: p.run_id(),
                params: p,
                converges: pr.converges,
                predicted_total_time_ms: pr.total_time_ms,
                predicted_downtime_ms: pr.downtime_ms,
                predicted_passes: pr.passes,
                predicted_bytes: pr.bytes,
                to_converge: advice,
            };
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        } else {
            writeln!(
                out,
                "{:<9} {:<48} {:>9.1} {:>9} {:>7} {:>9.0}  {}",
                p.run_id(),
                p.label(),
                pr.total_time_ms / 1e3,
                pr.downtime_ms
                    .map(|d| format!("{d:.0}"))
                    .unwrap_or_else(|| "-".into()),
                pr.passes,
                pr.bytes / 1e6,
                match advice {
                    None => "yes".to_string(),
                    Some(a) => format!("no: needs {a}"),
                }
            )?;
        }
    }
    if !json {
        writeln!(
            out,
            "matrix: {} runs, about {:.1} min with boot and verification",
            matrix.len(),
            total_s / 60.0
        )?;
    }
    Ok(0)
}
