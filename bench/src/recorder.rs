//! The results directory: `results/<scenario>/<timestamp>/` with
//! `manifest.json`, `runs.jsonl` (one [`RunRecord`] per line, appended and
//! fsync'd as each run ends so a crash loses at most the run in flight) and
//! `runs/<run-id>/` for raw series. Knows nothing of the lab.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use migbench_model::{Manifest, RunRecord};
use serde::Serialize;

/// Writes one results directory; shared by the workers of several host
/// pairs (each record is appended whole under a lock).
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    runs: std::sync::Mutex<File>,
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time, UTC (directory names, sortable).
pub fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch, as f64.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Recorder {
    /// Create a fresh results directory under `root/<scenario>/` and write
    /// the manifest. Never reuses an existing directory.
    pub fn create(root: &Path, manifest: &Manifest) -> std::io::Result<Recorder> {
        let base = root.join(&manifest.scenario_name);
        fs::create_dir_all(&base)?;
        let stamp = utc_stamp(manifest.started_at as u64);
        let mut dir = base.join(&stamp);
        let mut n = 1;
        while dir.exists() {
            dir = base.join(format!("{stamp}-{n}"));
            n += 1;
        }
        fs::create_dir(&dir)?;
        fs::create_dir(dir.join("runs"))?;
        write_json(&dir.join("manifest.json"), manifest)?;
        let runs = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.join("runs.jsonl"))?;
        Ok(Recorder {
            dir,
            runs: runs.into(),
        })
    }

    /// The results directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The raw-data directory of a run (created).
    pub fn run_dir(&self, run_id: &str) -> std::io::Result<PathBuf> {
        let d = self.dir.join("runs").join(run_id);
        fs::create_dir_all(&d)?;
        Ok(d)
    }

    /// Append one record and flush it to disk.
    pub fn append(&self, rec: &RunRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_string(rec).map_err(std::io::Error::other)?;
        line.push('\n');
        // A worker that panicked mid-append left whole records only (see
        // below): the file is still good.
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let before = runs.metadata()?.len();
        let written = runs
            .write_all(line.as_bytes())
            .and_then(|()| runs.sync_data());
        if written.is_err() {
            // A full disk may take half the line: cut it off again, so the
            // file holds whole records only.
            let _ = runs.set_len(before);
        }
        written
    }
}

/// What an earlier, unfinished results directory holds.
#[derive(Debug)]
pub struct Resumed {
    /// The recorder, appending to it.
    pub recorder: Recorder,
    /// The runs kept (finished before the stop), in matrix order.
    pub kept: Vec<RunRecord>,
    /// What was dropped and why (a partial last line, interrupted runs).
    pub notes: Vec<String>,
}

impl Recorder {
    /// Reopen results directory `dir` to continue its matrix: keep every
    /// finished run, drop runs recorded `interrupted` (to be redone, their
    /// raw data removed) and a partial last line (a run killed while being
    /// written), and rewrite `runs.jsonl` with what is kept, atomically.
    /// A corrupt line elsewhere is an error: the file is not migbench's to
    /// repair.
    pub fn resume(dir: &Path) -> std::io::Result<Resumed> {
        let path = dir.join("runs.jsonl");
        let text = fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        let mut kept: Vec<RunRecord> = Vec::new();
        let mut notes = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let last = i + 1 == lines.len();
            match serde_json::from_str::<RunRecord>(line) {
                Ok(r) if r.outcome == migbench_model::Outcome::Interrupted => {
                    notes.push(format!("{} was interrupted: it runs again", r.run_id));
                    let raw = dir.join("runs").join(&r.run_id);
                    if raw.exists() {
                        fs::remove_dir_all(raw)?;
                    }
                }
                Ok(r) if kept.iter().any(|k| k.run_id == r.run_id) => {
                    notes.push(format!(
                        "{} was recorded twice: the first is kept",
                        r.run_id
                    ));
                }
                Ok(r) => kept.push(r),
                Err(_) if last && !text.ends_with('\n') => {
                    notes.push(format!(
                        "runs.jsonl:{}: a partial line (a run killed while it was written) is dropped",
                        i + 1
                    ));
                }
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}:{}: not a run record: {e}", path.display(), i + 1),
                    ))
                }
            }
        }
        kept.sort_by_key(|r| r.params.index);
        write_jsonl(&path, &kept)?;
        let runs = OpenOptions::new().append(true).open(&path)?;
        Ok(Resumed {
            recorder: Recorder {
                dir: dir.to_owned(),
                runs: runs.into(),
            },
            kept,
            notes,
        })
    }

    /// Rewrite `runs.jsonl` in matrix order (after a resumed matrix, so the
    /// file reads as if it had run in one go), atomically.
    pub fn sort_runs(&mut self) -> std::io::Result<()> {
        let path = self.dir.join("runs.jsonl");
        let mut recs: Vec<RunRecord> = fs::read_to_string(&path)?
            .lines()
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect::<std::io::Result<_>>()?;
        recs.sort_by_key(|r| r.params.index);
        write_jsonl(&path, &recs)?;
        self.runs = OpenOptions::new().append(true).open(&path)?.into();
        Ok(())
    }
}

/// Write `path` whole or not at all: `fill` writes a temporary file beside
/// it, which is fsync'd and renamed over `path` (the directory fsync'd
/// too). A crash or a full disk leaves the old file or none, never a
/// partial one that would mislead (a truncated probe series reads as an
/// outage); the temporary file is removed on error.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let written = (|| {
        let mut w = std::io::BufWriter::new(File::create(&tmp)?);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Write a pretty JSON file, atomically ([`write_atomic`]).
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
    write_atomic(path, |w| w.write_all((text + "\n").as_bytes()))
}

/// Write one JSON object per line, atomically ([`write_atomic`]).
pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> std::io::Result<()> {
    write_atomic(path, |w| {
        for it in items {
            serde_json::to_writer(&mut *w, it).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: usize, outcome: migbench_model::Outcome) -> RunRecord {
        let mut p = migbench_model::matrix::sample_run("");
        p.index = index;
        RunRecord {
            outcome,
            ..RunRecord::pending(&p, 0.0, "tcg")
        }
    }

    #[test]
    fn resuming_keeps_finished_runs_in_order_and_drops_interrupted_and_partial_ones() {
        use migbench_model::Outcome::*;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join("runs/run-0002")).unwrap();
        let line = |r: &RunRecord| serde_json::to_string(r).unwrap();
        let text = format!(
            "{}\n{}\n{}\n{}\n{}",
            line(&rec(1, Failed)),
            line(&rec(0, Completed)),
            line(&rec(2, Interrupted)),
            line(&rec(0, Completed)),
            &line(&rec(3, Completed))[..40]
        );
        fs::write(dir.join("runs.jsonl"), text).unwrap();
        let r = Recorder::resume(dir).unwrap();
        let ids: Vec<usize> = r.kept.iter().map(|k| k.params.index).collect();
        assert_eq!(ids, vec![0, 1], "{:?}", r.notes);
        assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
        assert!(
            !dir.join("runs/run-0002").exists(),
            "the interrupted run's raw data goes"
        );
        let mut recorder = r.recorder;
        recorder.append(&rec(3, Completed)).unwrap();
        recorder.append(&rec(2, Completed)).unwrap();
        recorder.sort_runs().unwrap();
        let back: Vec<usize> = fs::read_to_string(dir.join("runs.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<RunRecord>(l).unwrap().params.index)
            .collect();
        assert_eq!(back, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_corrupt_line_before_the_end_is_refused_not_repaired() {
        let tmp = tempfile::tempdir().unwrap();
        let good = serde_json::to_string(&rec(0, migbench_model::Outcome::Completed)).unwrap();
        fs::write(tmp.path().join("runs.jsonl"), format!("{{oops\n{good}\n")).unwrap();
        let e = Recorder::resume(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("runs.jsonl:1"), "{e}");
    }

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_795_306_609), "20261122T001649Z");
    }

    #[test]
    fn an_atomic_write_that_fails_leaves_the_old_file_whole_and_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("probes.csv");
        write_atomic(&path, |w| w.write_all(b"old, whole\n")).unwrap();
        let full = write_atomic(&path, |w| {
            w.write_all(b"new, half")?;
            Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
        });
        assert_eq!(full.unwrap_err().raw_os_error(), Some(28));
        assert_eq!(fs::read_to_string(&path).unwrap(), "old, whole\n");
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("probes.csv")]);
    }
}
