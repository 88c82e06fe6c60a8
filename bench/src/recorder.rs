//! The results directory: `results/<scenario>/<timestamp>/` with
//! `manifest.json`, `runs.jsonl` (one [`RunRecord`] per line, appended and
//! fsync'd as each run ends so a crash loses at most the run in flight) and
//! `runs/<run-id>/` for raw series. Knows nothing of the lab.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use migbench_model::{Manifest, RunRecord};
use serde::Serialize;

/// Writes one results directory.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    runs: File,
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
        Ok(Recorder { dir, runs })
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
    pub fn append(&mut self, rec: &RunRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_string(rec).map_err(std::io::Error::other)?;
        line.push('\n');
        self.runs.write_all(line.as_bytes())?;
        self.runs.sync_data()
    }
}

/// Write a pretty JSON file.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
    fs::write(path, text + "\n")
}

/// Write one JSON object per line.
pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(File::create(path)?);
    for it in items {
        serde_json::to_writer(&mut w, it).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_795_306_609), "20261122T001649Z");
    }
}
