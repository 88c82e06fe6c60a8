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
mod tests {
    use super::*;
    use migbench_model::ProgressSample;

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

    fn completed(i: usize) -> RunRecord {
        let mut p = migbench_model::matrix::sample_run("");
        p.index = i;
        let mut r = RunRecord::pending(&p, 0.0, "tcg");
        r.total_time_ms = Some(12_000.0);
        r.downtime_qemu_ms = Some(150.0);
        r.throughput_mbps = Some(94.0);
        r.transferred_bytes = Some(140 << 20);
        r
    }

    fn line(r: &RunRecord) -> String {
        serde_json::to_string(r).unwrap()
    }

    #[test]
    fn absurd_values_skip_the_record_naming_line_field_and_value() {
        let good = completed(0);
        let mut cases: Vec<(RunRecord, &str, &str)> = Vec::new();
        let mut r = completed(1);
        r.total_time_ms = Some(1e200);
        cases.push((r, "total_time_ms = 1e200", "above 1e9 ms"));
        let mut r = completed(2);
        r.total_time_ms = Some(-5.0);
        cases.push((r, "total_time_ms = -5", "negative"));
        let mut r = completed(3);
        r.downtime_qemu_ms = Some(13_500.0);
        cases.push((
            r,
            "downtime_qemu_ms = 13500",
            "longer than the whole migration",
        ));
        let mut r = completed(4);
        r.throughput_mbps = Some(1e308);
        cases.push((r, "throughput_mbps = 1e308", "Mbit/s"));
        let mut r = completed(5);
        r.transferred_bytes = Some(u64::MAX);
        cases.push((r, "transferred_bytes = 18446744073709551615", "bytes"));
        let mut r = completed(6);
        r.params.ram = migbench_model::units::Size(0);
        cases.push((r, "params.ram = 0B", "divide"));
        let mut r = completed(7);
        r.run_id = "../../../escape".into();
        cases.push((r, "run_id = ../../../escape", "plain name"));
        let mut text = line(&good) + "\n";
        for (r, _, _) in &cases {
            text += &(line(r) + "\n");
        }
        let p = parse_runs_checked(Path::new("r/runs.jsonl"), &text);
        assert_eq!(p.records, vec![good]);
        assert_eq!(p.lines, vec![1]);
        assert_eq!(p.skipped.len(), cases.len());
        for (i, ((r, what, why), s)) in cases.iter().zip(&p.skipped).enumerate() {
            let w = s.warning();
            assert!(
                w.starts_with(&format!("r/runs.jsonl:{}: {}: ", i + 2, r.run_id)),
                "{w}"
            );
            assert!(w.contains(what) && w.contains(why), "{w}");
            assert_eq!(s.run_id.as_deref(), Some(r.run_id.as_str()));
        }
        // A downtime within a second of the total time stands (other clocks).
        let mut r = completed(8);
        r.downtime_probe_ms = Some(12_900.0);
        assert_eq!(check_record(&r), Ok(()));
    }

    #[test]
    fn numbers_json_cannot_hold_are_lines_that_are_not_records() {
        let l = line(&completed(0));
        let text = [
            l.replace("\"total_time_ms\":12000.0", "\"total_time_ms\":1e400"),
            l.replace("\"passes\":null", "\"passes\":-3"),
            l.replace("\"passes\":null", "\"passes\":100000000000000000000000"),
        ]
        .join("\n")
            + "\n";
        let p = parse_runs_checked(Path::new("r/runs.jsonl"), &text);
        assert!(p.records.is_empty());
        assert_eq!(p.skipped.len(), 3, "{:?}", p.skipped);
        for s in &p.skipped {
            assert!(s.why.starts_with("not a run record"), "{s:?}");
            assert_eq!(s.run_id.as_deref(), Some("run-0000"), "{s:?}");
        }
    }

    fn set_at(dir: &Path, started: f64, recs: &[RunRecord]) -> ResultsSet {
        let text: String = recs.iter().map(|r| line(r) + "\n").collect();
        let p = parse_runs_checked(&dir.join("runs.jsonl"), &text);
        let mut m: Manifest = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../fixtures/golden/results/manifest.json"),
            )
            .unwrap(),
        )
        .unwrap();
        m.started_at = started;
        ResultsSet {
            dir: dir.to_owned(),
            name: "t".into(),
            manifest: m,
            records: p.records,
            lines: p.lines,
            skipped: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_run_is_its_session_and_run_id() {
        let (a, b) = (completed(0), completed(1));
        let one = set_at(Path::new("x"), 1.0, &[a.clone(), b.clone()]);
        let copy = set_at(Path::new("y"), 1.0, std::slice::from_ref(&b));
        let other_session = set_at(Path::new("z"), 2.0, &[a.clone(), b.clone()]);
        assert!(duplicates(&[one.clone(), other_session.clone()]).is_empty());
        assert_eq!(refuse_duplicates(&[one.clone(), other_session]), Ok(()));
        let d = duplicates(&[one.clone(), copy.clone()]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].id.run_id, b.run_id);
        assert_eq!(d[0].places, ["x/runs.jsonl:2", "y/runs.jsonl:1"]);
        let e = refuse_duplicates(&[one, copy]).unwrap_err().0;
        assert!(e.contains("x/runs.jsonl:2 and y/runs.jsonl:1"), "{e}");
        assert!(e.contains("--allow-duplicates"), "{e}");
        // A line copied within one file.
        let twice = set_at(Path::new("w"), 1.0, &[a.clone(), b, a]);
        let d = duplicates(&[twice]);
        assert_eq!(d[0].places, ["w/runs.jsonl:1", "w/runs.jsonl:3"]);
    }

    #[test]
    fn series_files_that_cannot_be_used_say_which_line_and_why() {
        let tmp = tempfile::tempdir().unwrap();
        let f = |name: &str, body: &[u8]| {
            let p = tmp.path().join(name);
            std::fs::write(&p, body).unwrap();
            p
        };
        let ok = f("ok.csv", b"seq,sent_ms,recv_ms\n0,1.5,2.0\n1,11.5,\n");
        assert_eq!(read_probes(&ok).unwrap().unwrap().len(), 2);
        assert_eq!(read_probes(&tmp.path().join("absent.csv")), Ok(None));
        for (name, body, line, why) in [
            (
                "bin.csv",
                &b"seq,sent_ms\xff\xfe,recv_ms\n"[..],
                1,
                "not text",
            ),
            ("empty.csv", b"", 1, "empty"),
            ("head.csv", b"a,b,c\n1,2,3\n", 1, "header"),
            (
                "cell.csv",
                b"seq,sent_ms,recv_ms\n0,1,2\n1,abc,3\n",
                3,
                "`1,abc,3`",
            ),
            (
                "huge.csv",
                b"seq,sent_ms,recv_ms\n0,1e300,2\n",
                2,
                "sent_ms = 1e300",
            ),
            (
                "inf.csv",
                b"seq,sent_ms,recv_ms\n0,1,inf\n",
                2,
                "recv_ms = inf",
            ),
        ] {
            let e = read_probes(&f(name, body)).unwrap_err();
            assert_eq!(e.line, Some(line), "{e}");
            assert!(e.to_string().contains(why), "{e}");
            assert!(e
                .to_string()
                .starts_with(&tmp.path().join(name).display().to_string()));
        }
    }

    #[test]
    fn a_progress_series_with_a_bad_line_is_refused_but_a_torn_end_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let mut set = set_at(tmp.path(), 1.0, &[]);
        set.dir = tmp.path().to_owned();
        let run = set.run_dir("run-0000");
        std::fs::create_dir_all(&run).unwrap();
        let sample = |t: f64| {
            serde_json::to_string(&ProgressSample {
                t_ms: t,
                status: "active".into(),
                ..Default::default()
            })
            .unwrap()
        };
        let path = run.join("progress.jsonl");
        std::fs::write(
            &path,
            format!("{}\n{}\n{{\"t_ms\":", sample(1.0), sample(2.0)),
        )
        .unwrap();
        assert_eq!(read_progress(&set, "run-0000").unwrap().len(), 2);
        std::fs::write(
            &path,
            format!("{}\nnot json\n{}\n", sample(1.0), sample(2.0)),
        )
        .unwrap();
        let e = read_progress(&set, "run-0000").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        std::fs::write(&path, format!("{}\n{}\n", sample(1.0), sample(1e300))).unwrap();
        let e = read_progress(&set, "run-0000").unwrap_err();
        assert!(e.to_string().contains(":2: t_ms = 1e300"), "{e}");
        assert!(load_progress(&set, "run-0000").is_empty());
    }
}
