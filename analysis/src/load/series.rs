//! The raw per-run series beside a record (`progress.jsonl`,
//! `workload.jsonl`, `probes.csv`, `service/*.csv`), read with checks: a
//! file that cannot be read, is not text, does not parse, or holds a
//! value no run can have is a [`SeriesError`] naming the file, the line
//! where known, and why, so its run is shown without it.

use std::fmt;
use std::path::{Path, PathBuf};

use migbench_model::{ProbeEvent, ProgressSample, WorkloadSample};

use super::{clip, show, ResultsSet, MAX_BYTES, MAX_MBPS, MAX_MS};

/// A raw series file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesError {
    /// The file.
    pub path: PathBuf,
    /// The line at fault, if one.
    pub line: Option<usize>,
    /// Why, in a plain sentence.
    pub why: String,
}

impl fmt::Display for SeriesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.why),
            None => write!(f, "{}: {}", self.path.display(), self.why),
        }
    }
}

impl std::error::Error for SeriesError {}

/// A series file's text: `Ok(None)` when it does not exist, an error when
/// it cannot be read or is not UTF-8 text.
pub fn series_text(path: &Path) -> Result<Option<String>, SeriesError> {
    let err = |why: String| SeriesError {
        path: path.to_owned(),
        line: None,
        why,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(format!("cannot be read ({e})"))),
    };
    match String::from_utf8(bytes) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
            Err(SeriesError {
                path: path.to_owned(),
                line: Some(line),
                why: format!("not text: invalid UTF-8 at byte {at} (a binary or corrupt file)"),
            })
        }
    }
}

/// Check a series' times and values: finite, within ±[`MAX_MS`] for
/// times and within [`MAX_MBPS`] (or `MAX_BYTES` as bytes) for rates.
fn series_values(path: &Path, line: usize, vals: &[(&str, f64, f64)]) -> Result<(), SeriesError> {
    for (name, v, max) in vals {
        if !v.is_finite() || v.abs() > *max {
            return Err(SeriesError {
                path: path.to_owned(),
                line: Some(line),
                why: format!(
                    "{name} = {} is not a plausible value (finite, within ±{})",
                    show(*v),
                    show(*max)
                ),
            });
        }
    }
    Ok(())
}

fn read_jsonl_checked<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    values: impl Fn(&T) -> Vec<(&'static str, f64, f64)>,
) -> Result<Vec<T>, SeriesError> {
    let Some(text) = series_text(path)? else {
        return Ok(Vec::new());
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(l) {
            Ok(x) => {
                series_values(path, i + 1, &values(&x))?;
                out.push(x);
            }
            // A crash mid-write: the samples before it stand.
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => {
                return Err(SeriesError {
                    path: path.to_owned(),
                    line: Some(i + 1),
                    why: format!("not a {what} ({e})"),
                })
            }
        }
    }
    Ok(out)
}

/// A run's `query-migrate` samples (`progress.jsonl`; empty if absent).
pub fn read_progress(set: &ResultsSet, run_id: &str) -> Result<Vec<ProgressSample>, SeriesError> {
    let b = MAX_BYTES as f64;
    read_jsonl_checked(
        &set.run_dir(run_id).join("progress.jsonl"),
        "progress sample",
        |s: &ProgressSample| {
            vec![
                ("t_ms", s.t_ms, MAX_MS * 1e3),
                ("mbps", s.mbps, MAX_MBPS),
                ("transferred", s.transferred as f64, b),
                ("remaining", s.remaining as f64, b),
                ("total", s.total as f64, b),
                (
                    "expected_downtime_ms",
                    s.expected_downtime_ms.unwrap_or(0.0),
                    MAX_MS,
                ),
                ("throttle_pct", s.throttle_pct.unwrap_or(0.0), 100.0),
            ]
        },
    )
}

/// A run's workload samples (`workload.jsonl`; empty if absent).
pub fn read_workload(set: &ResultsSet, run_id: &str) -> Result<Vec<WorkloadSample>, SeriesError> {
    read_jsonl_checked(
        &set.run_dir(run_id).join("workload.jsonl"),
        "workload sample",
        |s: &WorkloadSample| {
            vec![
                ("t_ms", s.t_ms, MAX_MS * 1e3),
                ("window_ms", s.window_ms, MAX_MS),
                ("bytes", s.bytes as f64, MAX_BYTES as f64),
            ]
        },
    )
}

/// Probe events of a `probes.csv`-format file (`probes.csv`,
/// `service/rr.csv`, `service/icmp.csv`; `None` if absent), every time
/// finite and within ±1e12 ms.
pub fn read_probes(path: &Path) -> Result<Option<Vec<ProbeEvent>>, SeriesError> {
    let Some(text) = series_text(path)? else {
        return Ok(None);
    };
    let ev = migbench_model::record::read_probes_csv(&text).map_err(|e| {
        // The model says "probes.csv line N: `...`" or names the header.
        let line = e
            .split("line ")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse().ok())
            .or(Some(1));
        SeriesError {
            path: path.to_owned(),
            line,
            why: if text.is_empty() {
                "empty (not even the header seq,sent_ms,recv_ms)".into()
            } else if e.contains("header") {
                "the header is not seq,sent_ms,recv_ms".into()
            } else {
                format!(
                    "not seq,sent_ms,recv_ms numbers: {}",
                    e.split_once(": ").map(|x| clip(x.1)).unwrap_or_default()
                )
            },
        }
    })?;
    for (i, e) in ev.iter().enumerate() {
        series_values(
            path,
            i + 2,
            &[
                ("sent_ms", e.sent_ms, MAX_MS * 1e3),
                ("recv_ms", e.recv_ms.unwrap_or(0.0), MAX_MS * 1e3),
            ],
        )?;
    }
    Ok(Some(ev))
}

/// A run's TCP stream chunks (`service/stream.csv`; `None` if absent).
pub fn read_stream(
    path: &Path,
) -> Result<Option<Vec<migbench_model::series::StreamChunk>>, SeriesError> {
    let Some(text) = series_text(path)? else {
        return Ok(None);
    };
    let ch = migbench_model::series::read_stream_csv(&text).map_err(|e| SeriesError {
        path: path.to_owned(),
        line: None,
        why: clip(&e),
    })?;
    for (i, c) in ch.iter().enumerate() {
        series_values(
            path,
            i + 2,
            &[
                ("sent_guest_ms", c.sent_guest_ms, MAX_MS * 1e3),
                ("recv_ms", c.recv_ms, MAX_MS * 1e3),
            ],
        )?;
    }
    Ok(Some(ch))
}

/// A run's `query-migrate` samples (empty if absent or unusable).
pub fn load_progress(set: &ResultsSet, run_id: &str) -> Vec<ProgressSample> {
    read_progress(set, run_id).unwrap_or_default()
}

/// A run's workload samples (empty if absent or unusable).
pub fn load_workload(set: &ResultsSet, run_id: &str) -> Vec<WorkloadSample> {
    read_workload(set, run_id).unwrap_or_default()
}
