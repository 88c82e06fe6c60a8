//! The scheduler: runs a matrix of [`RunParams`] through a `dyn Executor`,
//! records each run as soon as it ends, shows progress, and stops cleanly
//! when interrupted. Knows nothing of QEMU: a mock executor tests it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use migbench_model::eta::Eta;
use migbench_model::repeat::Repetitions;
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

/// Run every element of `matrix` but those recorded before a resume
/// (`prior`), in the order `plan` gives: as expanded for a fixed count;
/// for `auto`, round-robin over the cells, each cell's further runs
/// skipped once its key metrics are precise enough.
pub fn run_matrix(
    matrix: &[RunParams],
    plan: &Repetitions,
    prior: &[RunRecord],
    exec: &mut dyn Executor,
    rec: &Recorder,
    cancel: &Cancel,
    display: &Display,
) -> std::io::Result<Schedule> {
    let done: std::collections::HashSet<&str> = prior.iter().map(|r| r.run_id.as_str()).collect();
    let todo: Vec<&RunParams> = plan
        .order(matrix)
        .into_iter()
        .filter(|p| !done.contains(p.run_id().as_str()))
        .collect();
    // The ETA: this session's runs planned by the model, scaled by what
    // the runs so far took (the seconds left as of `eta`'s instant).
    let mut eta = Eta::new(todo.iter().map(|p| migbench_predict::plan::run_secs(p)));
    let left = Arc::new(Mutex::new((Instant::now(), eta.left_secs())));
    let bar = display.multi.add(ProgressBar::new(matrix.len() as u64));
    let shown = left.clone();
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ETA {left}  {msg}",
        )
        .expect("static template")
        .with_key(
            "left",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let (at, secs) = *shown.lock().unwrap_or_else(|e| e.into_inner());
                let s = (secs - at.elapsed().as_secs_f64()).max(0.0).round() as u64;
                let _ = write!(w, "{}m{:02}s", s / 60, s % 60);
            },
        )
        .progress_chars("=> "),
    );
    // A host pair's worker shows its pair's name.
    let pair = todo.first().map_or("", |p| p.pair.as_str());
    bar.set_prefix(if pair.is_empty() || todo.iter().any(|p| p.pair != pair) {
        "matrix".to_string()
    } else {
        pair.to_string()
    });
    bar.set_position((matrix.len() - todo.len()) as u64);
    let set_left = |eta: &Eta| {
        *left.lock().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), eta.left_secs());
    };
    // Each cell's records so far (its runs sit together in the matrix).
    let per_cell = plan.max().max(1) as usize;
    let mut cells: std::collections::HashMap<usize, Vec<RunRecord>> = Default::default();
    for r in prior {
        cells
            .entry(r.params.index / per_cell)
            .or_default()
            .push(r.clone());
    }
    let mut stopped = std::collections::HashSet::new();
    let mut records = Vec::new();
    for p in todo {
        if cancel.is_cancelled() {
            break;
        }
        let cell = p.index / per_cell;
        if let Repetitions::Auto(a) = plan {
            let runs: Vec<&RunRecord> = cells
                .get(&cell)
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            if a.enough(&runs) {
                if stopped.insert(cell) {
                    display.line(&format!(
                        "cell {} ({}): {} after {} runs",
                        cell,
                        p.label()
                            .rsplit_once(" rep=")
                            .map_or(p.label(), |x| x.0.to_string()),
                        match a.reached(&runs) {
                            Some(true) => "precise enough",
                            Some(false) => "the maximum reached",
                            None => "nothing completed to refine",
                        },
                        runs.len()
                    ));
                }
                bar.set_length(bar.length().unwrap_or(1).saturating_sub(1));
                eta.skipped(migbench_predict::plan::run_secs(p));
                set_left(&eta);
                continue;
            }
        }
        bar.set_message(p.label());
        let run_id = p.run_id();
        let raw = rec.run_dir(&run_id)?;
        let t0 = Instant::now();
        let mut r = exec.execute(p, &raw);
        r.wall_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
        eta.ran(
            migbench_predict::plan::run_secs(p),
            t0.elapsed().as_secs_f64(),
        );
        set_left(&eta);
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
        cells.entry(cell).or_default().push(r.clone());
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

    /// Scenario `text`, its matrix, a temp dir for results and the manifest.
    fn mock_matrix(
        text: &str,
    ) -> (
        migbench_model::Scenario,
        Vec<RunParams>,
        tempfile::TempDir,
        migbench_model::Manifest,
    ) {
        let sc = migbench_model::Scenario::parse(std::path::Path::new("m.toml"), text).unwrap();
        let matrix = migbench_model::expand(&sc);
        let manifest = crate::manifest::build(&sc, "m.toml", "x", &matrix, "mock", "img");
        (sc, matrix, tempfile::tempdir().unwrap(), manifest)
    }

    #[test]
    fn records_every_finished_run_and_stops_when_interrupted() {
        let (sc, matrix, tmp, manifest) =
            mock_matrix("repetitions = 5\n[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n");
        let rec = Recorder::create(tmp.path(), &manifest).unwrap();
        let cancel = Cancel::default();
        let mut mock = Mock {
            cancel: cancel.clone(),
            seen: vec![],
        };
        let s = run_matrix(
            &matrix,
            &sc.repetitions,
            &[],
            &mut mock,
            &rec,
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
        let done = [
            record(&matrix[0], Outcome::Completed),
            record(&matrix[1], Outcome::Failed),
        ];
        let cancel = Cancel::default();
        let mut mock = Mock {
            cancel: cancel.clone(),
            seen: vec![],
        };
        let rec = Recorder::create(tmp.path(), &manifest).unwrap();
        let s = run_matrix(
            &matrix,
            &sc.repetitions,
            &done,
            &mut mock,
            &rec,
            &cancel,
            &Display::new(),
        )
        .unwrap();
        assert_eq!(mock.seen, vec![2], "stops at the interruption");
        assert_eq!(s.records.len(), 1);
    }

    /// Completes every run; total time 10 s in cell 0, 5 or 15 s in turn in
    /// cell 1 (never precise).
    struct Steady {
        seen: Vec<(usize, u32)>,
    }

    impl Executor for Steady {
        fn execute(&mut self, p: &RunParams, _raw: &std::path::Path) -> RunRecord {
            self.seen.push((p.index, p.repetition));
            let noisy = p.index >= 6;
            RunRecord {
                outcome: Outcome::Completed,
                total_time_ms: Some(if !noisy {
                    10_000.0
                } else if p.repetition.is_multiple_of(2) {
                    5_000.0
                } else {
                    15_000.0
                }),
                ..RunRecord::pending(p, 0.0, "mock")
            }
        }
    }

    #[test]
    fn auto_repetitions_interleave_cells_and_stop_each_when_precise() {
        let (sc, matrix, tmp, manifest) = mock_matrix(
            "repetitions = { precision = \"5%\", min = 3, max = 6 }\n[guest]\nram = \"256MiB\"\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n",
        );
        assert_eq!(matrix.len(), 12, "expanded to the maximum");
        let rec = Recorder::create(tmp.path(), &manifest).unwrap();
        let mut mock = Steady { seen: vec![] };
        let s = run_matrix(
            &matrix,
            &sc.repetitions,
            &[],
            &mut mock,
            &rec,
            &Cancel::default(),
            &Display::new(),
        )
        .unwrap();
        // Round-robin while both run, then the noisy cell alone to its max.
        let reps: Vec<(usize, u32)> = mock.seen.iter().map(|(i, r)| (i / 6, *r)).collect();
        assert_eq!(
            reps,
            vec![
                (0, 0),
                (1, 0),
                (0, 1),
                (1, 1),
                (0, 2),
                (1, 2),
                (1, 3),
                (1, 4),
                (1, 5)
            ]
        );
        assert_eq!(s.records.len(), 9);
    }

    /// Completes every run after a short pause (so the workers overlap).
    struct Slow;

    impl Executor for Slow {
        fn execute(&mut self, p: &RunParams, _raw: &std::path::Path) -> RunRecord {
            std::thread::sleep(std::time::Duration::from_millis(2));
            record(p, Outcome::Completed)
        }
    }

    #[test]
    fn pairs_run_in_parallel_into_one_recorder_and_a_resume_skips_what_each_pair_ran() {
        let (sc, matrix, tmp, manifest) = mock_matrix(
            "repetitions = 20\n[link]\nrate = \"1gbit\"\n[hosts]\nprobe = \"icmp\"\n\
             [[hosts.pair]]\nname = \"a\"\nsrc = \"qemu:///a\"\ndst = \"qemu:///b\"\n\
             migration_address = \"198.18.0.2\"\nreturn_address = \"198.18.0.1\"\n\
             domain = \"g\"\nguest_address = \"198.18.1.10\"\n\
             [[hosts.pair]]\nname = \"b\"\nsrc = \"qemu:///c\"\ndst = \"qemu:///d\"\n\
             migration_address = \"198.18.0.4\"\nreturn_address = \"198.18.0.3\"\n\
             domain = \"g\"\nguest_address = \"198.18.1.11\"\n",
        );
        assert_eq!(matrix.len(), 40);
        let rec = Recorder::create(tmp.path(), &manifest).unwrap();
        // Pair a ran its first 5 runs before a stop.
        let kept: Vec<RunRecord> = matrix[..5]
            .iter()
            .map(|p| record(p, Outcome::Completed))
            .collect();
        let ran: Vec<Schedule> = std::thread::scope(|s| {
            let workers: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|pair| {
                    let runs: Vec<RunParams> =
                        matrix.iter().filter(|p| p.pair == pair).cloned().collect();
                    let (rec, sc, kept) = (&rec, &sc, &kept);
                    s.spawn(move || {
                        let mine: Vec<RunRecord> = kept
                            .iter()
                            .filter(|k| k.params.pair == pair)
                            .cloned()
                            .collect();
                        let d = Display::new();
                        run_matrix(
                            &runs,
                            &sc.repetitions,
                            &mine,
                            &mut Slow,
                            rec,
                            &Cancel::default(),
                            &d,
                        )
                        .unwrap()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(ran[0].records.len(), 15, "pair a: what the stop left");
        assert_eq!(ran[1].records.len(), 20, "pair b: all of its runs");
        assert!(ran[0].records.iter().all(|r| r.params.pair == "a"));
        // Every record whole, once, naming its pair.
        let text = std::fs::read_to_string(ran[0].dir.join("runs.jsonl")).unwrap();
        let mut ids: Vec<(String, String)> = text
            .lines()
            .map(|l| {
                let r: RunRecord = serde_json::from_str(l).unwrap();
                (r.params.pair, r.run_id)
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 35);
        assert_eq!(ids[0], ("a".to_string(), "run-0005".to_string()));
        assert_eq!(ids[15], ("b".to_string(), "run-0020".to_string()));
    }
}
