//! Loading results directories: `manifest.json` and `runs.jsonl` into
//! [`ResultsSet`]s, tolerating a truncated or corrupt line (a crash
//! mid-write) with a warning that names it, and setting aside records
//! whose numbers cannot be measurements ([`check_record`]: non-finite,
//! negative, absurdly large, a downtime longer than the migration) as
//! [`Skipped`] lines, so one bad record never reaches the statistics or
//! the charts. Raw per-run series are read with [`read_progress`],
//! [`read_workload`], [`read_probes`] and [`read_stream`], which say which
//! file is unusable and why ([`SeriesError`]); probes are summarised
//! through polars in [`crate::frame`]. [`duplicates`] finds runs given
//! twice (see [`RunIdentity`]).

mod check;
mod dups;
mod series;

use std::fmt;
use std::path::{Path, PathBuf};

use migbench_model::record::SCHEMA_VERSION;
use migbench_model::{Manifest, RunRecord};
use serde::Serialize;

pub use check::{
    check_record, Absurd, DOWNTIME_SLACK_MS, MAX_BYTES, MAX_COUNT, MAX_MBPS, MAX_MS, MIN_NONZERO,
};
pub use dups::{duplicates, refuse_duplicates, Duplicate, RunIdentity};
pub use series::{
    load_progress, load_workload, read_probes, read_progress, read_stream, read_workload,
    series_text, SeriesError,
};

/// A mistake in how the analyzer was called (an unknown dimension, a
/// value not in the data, a name that would leave the reports folder,
/// duplicated inputs): `migbench-analyze` exits 2 for these, 1 for
/// failures while working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

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

/// A `runs.jsonl` line that is not used: unreadable, from a newer
/// format, or holding a value no run can have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// The file.
    pub file: String,
    /// Its line (from 1).
    pub line: usize,
    /// The record's run_id, if it could be read.
    pub run_id: Option<String>,
    /// The offending field (`total_time_ms`, `rr.during.p99`), if one.
    pub field: Option<String>,
    /// Its value as written.
    pub value: Option<String>,
    /// Why the line is not used.
    pub why: String,
}

impl Skipped {
    /// The warning line: `FILE:LINE: ...`.
    pub fn warning(&self) -> String {
        match (&self.field, &self.value) {
            (Some(f), Some(v)) => format!(
                "{}:{}: {}{f} = {v}: {}; record skipped",
                self.file,
                self.line,
                self.run_id
                    .as_deref()
                    .map(|r| format!("{r}: "))
                    .unwrap_or_default(),
                self.why
            ),
            _ => format!("{}:{}: {}; skipped", self.file, self.line, self.why),
        }
    }
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
    /// Every usable run record, in file order.
    pub records: Vec<RunRecord>,
    /// The `runs.jsonl` line of each record (parallel to `records`; empty
    /// for sets built in memory).
    pub lines: Vec<usize>,
    /// Lines that could not be used (also in `warnings`).
    pub skipped: Vec<Skipped>,
    /// Lines that could not be used, as messages naming file and line.
    pub warnings: Vec<String>,
}

impl ResultsSet {
    /// Raw-data directory of a run.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.dir.join("runs").join(run_id)
    }

    /// `runs.jsonl:LINE` of record `i` (or `runs.jsonl` when unknown).
    pub fn where_is(&self, i: usize) -> String {
        let file = self.dir.join("runs.jsonl");
        match self.lines.get(i) {
            Some(l) => format!("{}:{l}", file.display()),
            None => file.display().to_string(),
        }
    }
}

/// `runs.jsonl` read: the usable records with their lines, and the rest.
#[derive(Debug, Clone, Default)]
pub struct ParsedRuns {
    /// Usable records, in file order.
    pub records: Vec<RunRecord>,
    /// The line of each record.
    pub lines: Vec<usize>,
    /// The lines not used.
    pub skipped: Vec<Skipped>,
}

/// Parse `runs.jsonl` text; bad lines become warnings naming `path` and the line.
pub fn parse_runs(path: &Path, text: &str) -> (Vec<RunRecord>, Vec<String>) {
    let p = parse_runs_checked(path, text);
    (p.records, p.skipped.iter().map(Skipped::warning).collect())
}

/// Parse `runs.jsonl` text, checking every record ([`check_record`]).
pub fn parse_runs_checked(path: &Path, text: &str) -> ParsedRuns {
    let mut out = ParsedRuns::default();
    let file = path.display().to_string();
    let ends_cleanly = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let skip = |run_id: Option<String>, field: Option<String>, value, why| Skipped {
            file: file.clone(),
            line: i + 1,
            run_id,
            field,
            value,
            why,
        };
        match serde_json::from_str::<RunRecord>(line) {
            Ok(r) if r.schema_version > SCHEMA_VERSION => out.skipped.push(skip(
                Some(r.run_id.clone()),
                None,
                None,
                format!(
                    "record format {} is newer than this analyzer's {SCHEMA_VERSION}",
                    r.schema_version
                ),
            )),
            Ok(r) => match check_record(&r) {
                Ok(()) => {
                    out.records.push(r);
                    out.lines.push(i + 1);
                }
                Err(a) => out.skipped.push(skip(
                    Some(r.run_id.clone()),
                    Some(a.field),
                    Some(a.value),
                    a.why,
                )),
            },
            Err(e) => {
                let last = i + 1 == lines.len();
                let why = if last && !ends_cleanly {
                    "truncated (the run was being written when migbench stopped)".to_string()
                } else {
                    format!("not a run record ({e})")
                };
                out.skipped.push(skip(run_id_in(line), None, None, why));
            }
        }
    }
    out
}

/// The `"run_id":"..."` of a line that is not a whole record, if visible.
fn run_id_in(line: &str) -> Option<String> {
    let rest = &line[line.find("\"run_id\"")? + 8..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let id = &rest[..rest.find('"')?];
    (id.len() <= 64).then(|| id.to_string())
}

/// A number for a message: plain when moderate, scientific otherwise.
pub fn show(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-3..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// At most 80 characters of `s`, control characters escaped.
pub fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Load one results directory: its manifest and its usable records
/// (unusable lines become [`Skipped`] entries and warnings).
pub fn load_results(dir: &Path) -> Result<ResultsSet, LoadError> {
    let read = |p: PathBuf| {
        std::fs::read(&p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|source| LoadError::Read { path: p, source })
    };
    let mpath = dir.join("manifest.json");
    let manifest: Manifest =
        serde_json::from_str(&read(mpath.clone())?).map_err(|e| LoadError::Manifest {
            path: mpath,
            message: e.to_string(),
        })?;
    let rpath = dir.join("runs.jsonl");
    let parsed = parse_runs_checked(&rpath, &read(rpath.clone())?);
    let stamp = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(ResultsSet {
        dir: dir.to_owned(),
        name: format!("{}/{stamp}", manifest.scenario_name),
        manifest,
        records: parsed.records,
        lines: parsed.lines,
        warnings: parsed.skipped.iter().map(Skipped::warning).collect(),
        skipped: parsed.skipped,
    })
}

#[cfg(test)]
mod load_tests;
