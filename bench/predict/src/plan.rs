//! Planning a matrix with the model: each run's expected duration and
//! the matrix refused when its runs would take longer than allowed.

use migbench_model::matrix::{expand_counted, human_secs, size, Limits, TooLarge};
use migbench_model::units::Dur;
use migbench_model::{RunParams, Scenario};

use crate::{predict, Constants, Inputs};

/// A duration for planning, seconds: the probing windows before and
/// after, plus 3 s to start the guest (a boot; a snapshot start takes
/// less) and collect, plus the pre-copy model's prediction (this lab's
/// constants; the timeout when it does not converge).
/// `migbench_model::eta::Eta` corrects it by the runs measured so far.
pub fn run_secs(p: &RunParams) -> f64 {
    let setup = 3.0 + (p.probe_before.0 + p.probe_after.0).as_secs_f64();
    setup + predict(&Inputs::of(p), &Constants::LAB).total_time_ms / 1e3
}

/// The estimated duration of `runs` in seconds, each at its plan
/// ([`run_secs`]); host pairs run in parallel, so the longest pair's.
pub fn matrix_secs(runs: &[RunParams]) -> f64 {
    pairs_in_parallel(runs.iter().map(|r| (r.pair.as_str(), run_secs(r))))
}

/// How long runs take, given each as (its host pair, its seconds): each
/// pair one run at a time, the pairs in parallel, so the longest pair's
/// sum.
pub fn pairs_in_parallel<'a>(runs: impl IntoIterator<Item = (&'a str, f64)>) -> f64 {
    let mut per_pair: std::collections::BTreeMap<&str, f64> = Default::default();
    for (pair, secs) in runs {
        *per_pair.entry(pair).or_default() += secs;
    }
    per_pair.into_values().fold(0.0, f64::max)
}

/// The scenario's matrix, refused before anything is allocated when it
/// has more runs than `limits.max_runs` ([`expand_counted`]), and after
/// expansion when the runs' estimated duration is above
/// `limits.max_secs`.
pub fn expand_bounded(sc: &Scenario, limits: &Limits) -> Result<Vec<RunParams>, TooLarge> {
    let runs = expand_counted(sc, limits)?;
    let secs = matrix_secs(&runs);
    if secs > limits.max_secs {
        return Err(TooLarge(format!(
            "the matrix's {} runs would take about {} (estimated), more than the limit of {}: {}; give fewer values or repetitions, or pass `--max-duration {}` to run them all",
            runs.len(),
            human_secs(secs),
            human_secs(limits.max_secs),
            size(sc),
            Dur(std::time::Duration::from_secs(
                ((secs / 3600.0).ceil() as u64).saturating_mul(3600)
            )),
        )));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use migbench_model::matrix::expand;

    fn parse(text: &str) -> Scenario {
        Scenario::parse(std::path::Path::new("x.toml"), text).unwrap()
    }

    #[test]
    fn estimate_grows_with_the_memory_in_use_and_hits_timeout_when_not_converging() {
        // An idle guest moves its non-zero memory: the working set, not RAM.
        let sc = parse(
            "[guest]\nram = \"1GiB\"\n[workload]\nworking_set = [\"64MiB\", \"512MiB\"]\ndirty_rate = [\"0\", \"50MB/s\"]\n[link]\nrate = \"100mbit\"\n[migration]\ntimeout = \"60s\"\n",
        );
        let runs = expand(&sc);
        // Runs: (idle, 64MiB), (idle, 512MiB), (50MB/s, 64MiB), (50MB/s, 512MiB).
        assert!(run_secs(&runs[0]) < run_secs(&runs[1]));
        // 3 s to start, 2 s of probing before and after, the timeout.
        assert_eq!(run_secs(&runs[2]), 7.0 + 60.0);
    }

    #[test]
    fn host_pairs_run_in_parallel_so_the_matrix_takes_the_longest_pairs_time() {
        let runs = expand(&parse(
            "[guest]\nram = \"1GiB\"\n[link]\nrate = \"100mbit\"\n",
        ));
        let one = matrix_secs(&runs);
        let pair = |name: &str, n: usize| -> Vec<RunParams> {
            (0..n)
                .map(|_| RunParams {
                    pair: name.into(),
                    ..runs[0].clone()
                })
                .collect()
        };
        let both: Vec<RunParams> = pair("a", 3).into_iter().chain(pair("b", 2)).collect();
        assert!((matrix_secs(&both) - 3.0 * one).abs() < 1e-9);
        assert_eq!(matrix_secs(&[]), 0.0);
    }
}
