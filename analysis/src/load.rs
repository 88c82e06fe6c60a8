//! Loading results directories: `manifest.json` and `runs.jsonl` into
//! [`ResultsSet`]s, tolerating a truncated or corrupt line (a crash
//! mid-write) with a warning that names it. Raw per-run series are loaded
//! only where a chart needs them ([`load_progress`], [`load_workload`];
//! probes go through polars in [`crate::frame`]).

use std::path::{Path, PathBuf};

use migbench_model::record::SCHEMA_VERSION;
use migbench_model::{Manifest, ProgressSample, RunRecord, WorkloadSample};

/// Errors loading a results directory.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A required file is missing or unreadable.
    #[error("Cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid.
    #[error("{path} is not a migbench manifest: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One results directory.
#[derive(Debug, Clone)]
pub struct ResultsSet {
    /// The directory.
    pub dir: PathBuf,
    /// Short name for tables and legends (`<scenario>/<timestamp>`).
    pub name: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// Every readable run record, in file order.
    pub records: Vec<RunRecord>,
    /// Lines that could not be read, as messages naming file and line.
    pub warnings: Vec<String>,
}

impl ResultsSet {
    /// Raw-data directory of a run.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.dir.join("runs").join(run_id)
    }
}

/// Parse `runs.jsonl` text; bad lines become warnings naming `path` and the line.
pub fn parse_runs(path: &Path, text: &str) -> (Vec<RunRecord>, Vec<String>) {
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    let ends_cleanly = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<RunRecord>(line) {
            Ok(r) if r.schema_version > SCHEMA_VERSION => warnings.push(format!(
                "{}:{}: record format {} is newer than this analyzer's {SCHEMA_VERSION}; skipped",
                path.display(),
                i + 1,
                r.schema_version
            )),
            Ok(r) => records.push(r),
            Err(e) => {
                let last = i + 1 == lines.len();
                let why = if last && !ends_cleanly {
                    "truncated (the run was being written when migbench stopped)".to_string()
                } else {
                    format!("not a run record ({e})")
                };
                warnings.push(format!("{}:{}: {why}; skipped", path.display(), i + 1));
            }
        }
    }
    (records, warnings)
}

/// Load one results directory.
pub fn load_results(dir: &Path) -> Result<ResultsSet, LoadError> {
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).map_err(|source| LoadError::Read { path: p, source })
    };
    let mpath = dir.join("manifest.json");
    let manifest: Manifest =
        serde_json::from_str(&read(mpath.clone())?).map_err(|e| LoadError::Manifest {
            path: mpath,
            message: e.to_string(),
        })?;
    let rpath = dir.join("runs.jsonl");
    let (records, warnings) = parse_runs(&rpath, &read(rpath.clone())?);
    let stamp = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(ResultsSet {
        dir: dir.to_owned(),
        name: format!("{}/{stamp}", manifest.scenario_name),
        manifest,
        records,
        warnings,
    })
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A run's `query-migrate` samples (empty if absent).
pub fn load_progress(set: &ResultsSet, run_id: &str) -> Vec<ProgressSample> {
    read_jsonl(&set.run_dir(run_id).join("progress.jsonl"))
}

/// A run's workload samples (empty if absent).
pub fn load_workload(set: &ResultsSet, run_id: &str) -> Vec<WorkloadSample> {
    read_jsonl(&set.run_dir(run_id).join("workload.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_with_and_without_a_schema_version_are_read() {
        let rec = RunRecord::pending(&migbench_model::matrix::sample_run(""), 0.0, "tcg");
        let new = serde_json::to_string(&rec).unwrap();
        assert!(new.contains("\"schema_version\":2"), "{new}");
        let old = new.replace("\"schema_version\":2,", "");
        let newer = new.replace("\"schema_version\":2", "\"schema_version\":99");
        let text = format!("{old}\n{new}\n{newer}\n");
        let (recs, warns) = parse_runs(Path::new("r/runs.jsonl"), &text);
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].schema_version, recs[1].schema_version), (1, 2));
        assert_eq!(warns.len(), 1);
        assert!(warns[0].contains("newer"), "{warns:?}");
    }

    #[test]
    fn a_truncated_last_line_is_a_warning_naming_the_line() {
        let good = r#"{"run_id":"run-0000"}"#; // not a full record either
        let text = format!("{good}\n{{\"run_id\":\"run-00");
        let (recs, warns) = parse_runs(Path::new("r/runs.jsonl"), &text);
        assert!(recs.is_empty());
        assert_eq!(warns.len(), 2);
        assert!(
            warns[0].starts_with("r/runs.jsonl:1: not a run record"),
            "{warns:?}"
        );
        assert!(
            warns[1].starts_with("r/runs.jsonl:2: truncated"),
            "{warns:?}"
        );
    }
}
