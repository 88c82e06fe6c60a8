//! `migbench predict SCENARIO`: the migration model
//! (`migbench_predict`) applied to each run of a scenario's matrix
//! before anything runs — predicted total time, downtime, passes, bytes,
//! how it ends and, when it does not complete, the smallest change that
//! would — as a table or one JSON object per run; `--fit RESULTS_DIR...`
//! fits the model on a lab's own runs and stores it (`model.json` in the
//! results root) for later predictions and `migbench advise`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use migbench_model::{RunRecord, Scenario};
use migbench_predict::{fit_report, predict, to_converge, Inputs, Model, MODEL_FILE};

use crate::usage::UsageError;

/// How predictions are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// One JSON object per line.
    Json,
}

/// One run's prediction as `--format json` prints it.
#[derive(serde::Serialize)]
struct Predicted<'a> {
    run_id: String,
    params: &'a migbench_model::RunParams,
    converges: bool,
    predicted_outcome: migbench_model::Outcome,
    predicted_finished_by: migbench_model::record::OutcomeDetail,
    predicted_total_time_ms: f64,
    predicted_downtime_ms: Option<f64>,
    predicted_passes: u32,
    predicted_bytes: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicted_postcopy_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_converge: Option<String>,
    /// What of this run lies outside what the model was fitted on.
    outside: Vec<String>,
}

/// The model to predict with (see [`Model::load`]); a bad file is bad input.
pub fn load_model(path: Option<&Path>) -> Result<(Model, String)> {
    Model::load(path).map_err(|e| UsageError(e).into())
}

/// Fit on the runs in `dirs` and store the model at `to`.
fn fit_and_store(dirs: &[PathBuf], to: &Path) -> Result<Model> {
    let mut recs: Vec<RunRecord> = Vec::new();
    for d in dirs {
        let path = d.join("runs.jsonl");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| UsageError(format!("--fit {}: {e}", path.display())))?;
        recs.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    let fitted = fit_report(&recs).ok_or_else(|| {
        UsageError(format!(
            "--fit: no completed pre-copy run without a bandwidth cap in {} to fit the model on",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let m = fitted.model;
    // What the runs could not tell apart keeps the prior, said aloud.
    for u in &fitted.unidentified {
        eprintln!("not identified by these runs, prior kept: {u}");
    }
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(&m)?;
    crate::recorder::write_atomic(to, |w| std::io::Write::write_all(w, text.as_bytes()))
        .with_context(|| format!("storing the fitted model in {}", to.display()))?;
    eprintln!(
        "model fitted on {} runs, stored in {}",
        m.envelope.runs,
        to.display()
    );
    Ok(m)
}

/// Predict every run of `scenario`; a closed stdout (`| head`) ends it quietly.
pub fn command(
    scenario: &Path,
    format: Format,
    fit_dirs: &[PathBuf],
    model: Option<&Path>,
    limits: &migbench_model::matrix::Limits,
) -> Result<i32> {
    crate::commands::quiet_on_broken_pipe(print(scenario, format, fit_dirs, model, limits))
}

fn print(
    scenario: &Path,
    format: Format,
    fit_dirs: &[PathBuf],
    model: Option<&Path>,
    limits: &migbench_model::matrix::Limits,
) -> Result<i32> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let sc = Scenario::load(scenario)?;
    let matrix = crate::commands::expand_bounded(&sc, scenario, limits)?;
    let (m, source) = if fit_dirs.is_empty() {
        load_model(model)?
    } else {
        let to = model.map_or_else(|| PathBuf::from(MODEL_FILE), Path::to_path_buf);
        let m = fit_and_store(fit_dirs, &to)?;
        (
            m,
            format!("fitted on {} runs, {}", m.envelope.runs, to.display()),
        )
    };
    let c = m.constants;
    let table = format == Format::Table;
    if table {
        let remainder = if c.has_check_span() {
            format!(
                "half a check span ({:.0} ms + {:.1} MB) under the limit or the top {:.1} MB + {:.1} MB per GiB of RAM after a first pass, + {:.0} % of what the guest dirtied since the last sync (when that does not fit, what it dirtied while QEMU sent on), {:.0} % of the limit when throttled",
                c.check_ms,
                c.check_bytes / 1e6,
                c.tail_bytes / 1e6,
                c.tail_bytes_per_gib / 1e6,
                c.sync_share * 100.0,
                c.remainder_share * 100.0,
            )
        } else {
            format!(
                "{:.0} % of the limit (no check span) + {:.0} % of what the guest dirtied since the last sync",
                c.remainder_share * 100.0,
                c.sync_share * 100.0,
            )
        };
        writeln!(
            out,
            "model ({source}): link goodput {:.1} %, setup {:.0} ms + {:.0} ms/GiB, pass {:.0} ms, switchover {:.0} ms + {:.0} ms/GiB, remainder: {remainder} (under a cap of half the link or less the first {:.2} MB of it free, less above), guest's own memory {:.0} MB + {:.0} MB/GiB, background dirtying {:.1} MB/s",
            c.goodput * 100.0,
            c.setup_ms,
            c.setup_ms_per_gib,
            c.pass_ms,
            c.switchover_ms,
            c.switchover_ms_per_gib,
            c.socket_bytes / 1e6,
            c.base_bytes / 1e6,
            c.base_bytes_per_gib / 1e6,
            c.background_rate / 1e6,
        )?;
        writeln!(
            out,
            "{:<9} {:<48} {:>9} {:>9} {:>7} {:>9}  ends",
            "run", "settings", "total s", "down ms", "passes", "MB sent"
        )?;
    }
    // Each run's seconds with boot and verification, by host pair.
    let mut secs: Vec<(&str, f64)> = Vec::with_capacity(matrix.len());
    let mut notes = Vec::new();
    for p in &matrix {
        let i = Inputs::of(p);
        let pr = predict(&i, &c);
        let advice = to_converge(&i, &c);
        let outside = m.envelope.outside(&i);
        secs.push((p.pair.as_str(), pr.total_time_ms / 1e3 + 15.0));
        if !table {
            let row = Predicted {
                run_id: p.run_id(),
                params: p,
                converges: pr.converges,
                predicted_outcome: pr.outcome,
                predicted_finished_by: pr.finished_by,
                predicted_total_time_ms: pr.total_time_ms,
                predicted_downtime_ms: pr.downtime_ms,
                predicted_passes: pr.passes,
                predicted_bytes: pr.bytes,
                predicted_postcopy_ms: pr.postcopy_ms,
                to_converge: advice,
                outside,
            };
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
            continue;
        }
        let ends = match (pr.converges, advice) {
            (true, _) => format!("{}", pr.finished_by),
            (false, Some(a)) => format!("{}: needs {a}", pr.outcome),
            (false, None) => format!("{}", pr.outcome),
        };
        writeln!(
            out,
            "{:<9} {:<48} {:>9.1} {:>9} {:>7} {:>9.0}  {ends}{}",
            p.run_id(),
            p.label(),
            pr.total_time_ms / 1e3,
            pr.downtime_ms
                .map(|d| format!("{d:.0}"))
                .unwrap_or_else(|| "-".into()),
            pr.passes,
            pr.bytes / 1e6,
            if outside.is_empty() { "" } else { " *" }
        )?;
        if !outside.is_empty() {
            notes.push(format!("{}: {}", p.run_id(), outside.join("; ")));
        }
    }
    if table {
        for n in &notes {
            writeln!(out, "* {n}")?;
        }
        writeln!(
            out,
            "matrix: {} runs, about {:.1} min with boot and verification",
            matrix.len(),
            migbench_predict::plan::pairs_in_parallel(secs) / 60.0
        )?;
    }
    Ok(0)
}
