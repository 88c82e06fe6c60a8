//! The scheduler: runs a matrix of [`RunParams`] through a `dyn Executor`,
//! records each run as soon as it ends, shows progress, and stops cleanly
//! when interrupted. Knows nothing of QEMU: a mock executor tests it.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use migbench_model::{Outcome, RunParams, RunRecord};

pub use crate::control::{Cancel, Display};
use crate::recorder::Recorder;

/// Runs one element of the matrix. Never panics on a failed run: it returns
/// a record whose outcome says what happened.
pub trait Executor {
    /// Run `params`, keeping raw data in `raw_dir`.
    fn execute(&mut self, params: &RunParams, raw_dir: &std::path::Path) -> RunRecord;
}

/// Summary of a finished schedule.
#[derive(Debug)]
pub struct Schedule {
    /// Records of every run that ended, in order.
    pub records: Vec<RunRecord>,
    /// True if the operator interrupted it.
    pub interrupted: bool,
    /// Where results went.
    pub dir: PathBuf,
}

/// Run every element of `matrix` in order, but those whose run id is in
/// `done` (recorded before a resume).
pub fn run_matrix(
    matrix: &[RunParams],
    done: &std::collections::HashSet<String>,
    exec: &mut dyn Executor,
    rec: &mut Recorder,
    cancel: &Cancel,
    display: &Display,
) -> std::io::Result<Schedule> {
    let bar = display.multi.add(ProgressBar::new(matrix.len() as u64));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ETA {eta}  {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_prefix("matrix");
    let todo: Vec<&RunParams> = matrix
        .iter()
        .filter(|p| !done.contains(&p.run_id()))
        .collect();
    bar.set_position((matrix.len() - todo.len()) as u64);
    // The ETA counts only runs of this session.
    bar.reset_eta();
    let mut records = Vec::new();
    for p in todo {
        if cancel.is_cancelled() {
            break;
        }
        bar.set_message(p.label());
        let run_id = p.run_id();
        let raw = rec.run_dir(&run_id)?;
        let r = exec.execute(p, &raw);
        rec.append(&r).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "{run_id} ({}) could not be recorded in {}: {e}; the runs before it are intact: free space and continue with --resume {}",
                    r.outcome,
                    rec.dir().join("runs.jsonl").display(),
                    rec.dir().display()
                ),
            )
        })?;
        display.line(&format!(
            "{run_id} {:<11} {}{}",
            r.outcome.to_string(),
            p.label(),
            r.error
                .as_deref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        ));
        let interrupted = r.outcome == Outcome::Interrupted;
        records.push(r);
        bar.inc(1);
        if interrupted {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(Schedule {
        records,
        interrupted: cancel.is_cancelled(),
        dir: rec.dir().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails run 1, asks for cancellation during run 2.
    struct Mock {
        cancel: Cancel,
        seen: Vec<usize>,
    }

    fn record(p: &RunParams, outcome: Outcome) -> RunRecord {
        RunRecord {
            outcome,
            ..RunRecord::pending(p, 0.0, "mock")
        }
    }

    impl Executor for Mock {
        fn execute(&mut self, p: &RunParams, raw: &std::path::Path) -> RunRecord {
            assert!(raw.is_dir());
            self.seen.push(p.index);
            match p.index {
                1 => record(p, Outcome::Failed),
                2 => {
                    self.cancel.cancel();
                    record(p, Outcome::Interrupted)
                }
                _ => record(p, Outcome::Completed),
            }
        }
    }

    #[test]
    fn records_every_finished_run_and_stops_when_interrupted() {
        let sc = migbench_model::Scenario::parse(
            std::path::Path::new("m.toml"),
            "repetitions = 5\n[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n",
        )
        .unwrap();
        let matrix = migbench_model::expand(&sc);
        let tmp = tempfile::tempdir().unwrap();
        let manifest = crate::manifest::build(&sc, "m.toml", "x", &matrix, "mock", "img");
        let mut rec = Recorder::create(tmp.path(), &manifest).unwrap();
        let cancel = Cancel::default();
        let mut mock = Mock {
            cancel: cancel.clone(),
            seen: vec![],
        };
        let none = std::collections::HashSet::new();
        let s = run_matrix(
            &matrix,
            &none,
            &mut mock,
            &mut rec,
            &cancel,
            &Display::new(),
        )
        .unwrap();
        assert_eq!(mock.seen, vec![0, 1, 2]);
        assert!(s.interrupted);
        let text = std::fs::read_to_string(s.dir.join("runs.jsonl")).unwrap();
        let outcomes: Vec<Outcome> = text
            .lines()
            .map(|l| serde_json::from_str::<RunRecord>(l).unwrap().outcome)
            .collect();
        assert_eq!(
            outcomes,
            vec![Outcome::Completed, Outcome::Failed, Outcome::Interrupted]
        );
        assert!(s.dir.join("manifest.json").is_file());
        // Resumed: the recorded runs are skipped, the rest run.
        let done: std::collections::HashSet<String> = ["run-0000", "run-0001"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cancel = Cancel::default();
        let mut mock = Mock {
            cancel: cancel.clone(),
            seen: vec![],
        };
        let mut rec = Recorder::create(tmp.path(), &manifest).unwrap();
        let s = run_matrix(
            &matrix,
            &done,
            &mut mock,
            &mut rec,
            &cancel,
            &Display::new(),
        )
        .unwrap();
        assert_eq!(mock.seen, vec![2], "stops at the interruption");
        assert_eq!(s.records.len(), 1);
    }
}
