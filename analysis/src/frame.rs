//! polars frames: every run of the loaded results as one row ([`runs_frame`]),
//! the per-group aggregation ([`group_stats`]) and the lazy scan of raw
//! probe CSVs ([`scan_probes`], each file alone, on every core). Confidence intervals come from
//! [`crate::stats`]; polars does the grouping and the moments.

use std::collections::HashMap;
use std::path::PathBuf;

use polars::prelude::*;

use crate::dims::{completed_value, Dim, METRICS};
use crate::load::ResultsSet;

/// Column holding a run's group key (its labels of the varying dimensions).
pub const GROUP: &str = "group";

/// A run with where it came from.
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    /// Its results set.
    pub set: &'a ResultsSet,
    /// The record.
    pub rec: &'a migbench_model::RunRecord,
}

/// Every run of every set.
pub fn all_runs(sets: &[ResultsSet]) -> Vec<RunRef<'_>> {
    sets.iter()
        .flat_map(|set| set.records.iter().map(move |rec| RunRef { set, rec }))
        .collect()
}

/// The dimensions runs are grouped by: those the manifest says vary (the
/// union of the sets' manifests; when several sets are combined, those
/// that vary across all their runs), less settings that only change with
/// the variant or the host pair (which name them).
pub fn varying(runs: &[RunRef]) -> Vec<&'static Dim> {
    let mut sets: Vec<&ResultsSet> = runs.iter().map(|r| r.set).collect();
    sets.dedup_by(|a, b| a.dir == b.dir);
    let names: Vec<String> = match sets.as_slice() {
        [one] => one.manifest.varying.clone(),
        _ => {
            let params: Vec<_> = runs.iter().map(|r| r.rec.params.clone()).collect();
            migbench_model::matrix::varying(&params)
        }
    };
    let vary: Vec<&'static Dim> = crate::dims::DIMS
        .iter()
        .filter(|d| names.iter().any(|n| n == d.name))
        .collect();
    // A setting that only changes with the variant is named by it, and so
    // is one that only changes with the host pair (each pair's guest has
    // its own RAM): keep the dimensions that also vary inside some value
    // of each.
    let distinct = |d: &Dim, runs: &mut dyn Iterator<Item = &RunRef>| {
        let mut labels: Vec<String> = runs.map(|r| (d.label)(&r.rec.params)).collect();
        labels.sort();
        labels.dedup();
        labels.len()
    };
    // The dimensions that name others.
    const NAMERS: [&str; 2] = ["variant", "pair"];
    let mut vary = vary;
    for namer in NAMERS {
        let Some(by) = vary.iter().copied().find(|d| d.name == namer) else {
            continue;
        };
        let mut values: Vec<String> = runs.iter().map(|r| (by.label)(&r.rec.params)).collect();
        values.sort();
        values.dedup();
        vary.retain(|d| {
            NAMERS.contains(&d.name)
                || values.iter().any(|v| {
                    distinct(
                        d,
                        &mut runs.iter().filter(|r| (by.label)(&r.rec.params) == *v),
                    ) > 1
                })
        });
    }
    vary
}

/// The group key of a run: `dim=label` of each varying dimension.
pub fn group_key(run: &RunRef, varying: &[&Dim]) -> String {
    if varying.is_empty() {
        return "all runs".into();
    }
    varying
        .iter()
        .map(|d| format!("{}={}", d.name, (d.label)(&run.rec.params)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The runs grouped by their group key (the varying dimensions), groups
/// in first-seen order.
pub fn groups<'a, 'r>(runs: &'r [RunRef<'a>]) -> Vec<(String, Vec<&'r RunRef<'a>>)> {
    let vary = varying(runs);
    let mut out: Vec<(String, Vec<&RunRef>)> = Vec::new();
    for r in runs {
        let k = group_key(r, &vary);
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(r),
            None => out.push((k, vec![r])),
        }
    }
    out
}

/// One row per run: source, run_id, outcome, group, every dimension's value
/// and every metric (null unless the run completed).
pub fn runs_frame(runs: &[RunRef], varying: &[&Dim]) -> PolarsResult<DataFrame> {
    let mut cols: Vec<Column> = vec![
        Column::new(
            "source".into(),
            runs.iter().map(|r| r.set.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "run_id".into(),
            runs.iter()
                .map(|r| r.rec.run_id.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "outcome".into(),
            runs.iter()
                .map(|r| r.rec.outcome.to_string())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            GROUP.into(),
            runs.iter()
                .map(|r| group_key(r, varying))
                .collect::<Vec<_>>(),
        ),
    ];
    for d in crate::dims::DIMS {
        cols.push(Column::new(
            d.name.into(),
            runs.iter()
                .map(|r| (d.value)(&r.rec.params))
                .collect::<Vec<_>>(),
        ));
    }
    for m in METRICS {
        cols.push(Column::new(
            m.name.into(),
            runs.iter()
                .map(|r| completed_value(m, r.rec))
                .collect::<Vec<Option<f64>>>(),
        ));
    }
    DataFrame::new_infer_height(cols)
}

/// Aggregated moments of one metric in one group (over completed runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Non-null values.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub sd: f64,
}

/// Per-group counts and metric moments, from polars.
#[derive(Debug, Clone, Default)]
pub struct GroupStats {
    /// Runs.
    pub n: usize,
    /// Runs per outcome name.
    pub outcomes: HashMap<String, usize>,
    /// Metric name → moments (absent when no completed run has it).
    pub metrics: HashMap<&'static str, Moments>,
}

/// Group the runs frame by [`GROUP`] and aggregate counts and moments.
pub fn group_stats(df: &DataFrame) -> PolarsResult<HashMap<String, GroupStats>> {
    let mut aggs = vec![
        len().alias("n"),
        col("outcome")
            .eq(lit("completed"))
            .sum()
            .alias("n_completed"),
        col("outcome").eq(lit("failed")).sum().alias("n_failed"),
        col("outcome")
            .eq(lit("timed_out"))
            .sum()
            .alias("n_timed_out"),
        col("outcome")
            .eq(lit("interrupted"))
            .sum()
            .alias("n_interrupted"),
        col("outcome").eq(lit("aborted")).sum().alias("n_aborted"),
    ];
    for m in METRICS {
        aggs.push(col(m.name).count().alias(format!("{}__n", m.name)));
        aggs.push(col(m.name).median().alias(format!("{}__median", m.name)));
        aggs.push(col(m.name).mean().alias(format!("{}__mean", m.name)));
        aggs.push(col(m.name).std(1).alias(format!("{}__sd", m.name)));
    }
    let out = df
        .clone()
        .lazy()
        .group_by([col(GROUP)])
        .agg(aggs)
        .collect()?;
    let keys = out.column(GROUP)?.str()?.clone();
    let u = |name: &str| -> PolarsResult<Vec<usize>> {
        let c = out.column(name)?.cast(&DataType::UInt64)?;
        Ok(c.u64()?.iter().map(|v| v.unwrap_or(0) as usize).collect())
    };
    let f = |name: &str| -> PolarsResult<Vec<Option<f64>>> {
        let c = out.column(name)?.cast(&DataType::Float64)?;
        Ok(c.f64()?.iter().collect())
    };
    let n = u("n")?;
    let outcome_cols = ["completed", "failed", "timed_out", "interrupted", "aborted"];
    let outcome_counts: Vec<Vec<usize>> = outcome_cols
        .iter()
        .map(|o| u(&format!("n_{o}")))
        .collect::<PolarsResult<_>>()?;
    let mut metric_cols = Vec::new();
    for m in METRICS {
        metric_cols.push((
            m.name,
            u(&format!("{}__n", m.name))?,
            f(&format!("{}__median", m.name))?,
            f(&format!("{}__mean", m.name))?,
            f(&format!("{}__sd", m.name))?,
        ));
    }
    let mut res = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        let mut g = GroupStats {
            n: n[i],
            ..GroupStats::default()
        };
        for (o, counts) in outcome_cols.iter().zip(&outcome_counts) {
            g.outcomes.insert(o.to_string(), counts[i]);
        }
        for (name, cn, med, mean, sd) in &metric_cols {
            if let (Some(median), Some(mean)) = (med[i], mean[i]) {
                g.metrics.insert(
                    name,
                    Moments {
                        n: cn[i],
                        median,
                        mean,
                        sd: sd[i].unwrap_or(0.0),
                    },
                );
            }
        }
        res.insert(key.unwrap_or_default().to_string(), g);
    }
    Ok(res)
}

/// The values (labels) of dimension `d` among `runs`, each once, in the
/// dimension's numeric order.
pub fn dim_values(d: &Dim, runs: &[RunRef]) -> Vec<String> {
    let mut v: Vec<(f64, String)> = runs
        .iter()
        .map(|r| ((d.value)(&r.rec.params), (d.label)(&r.rec.params)))
        .collect();
    v.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    v.dedup_by(|x, y| x.1 == y.1);
    v.into_iter().map(|(_, l)| l).collect()
}

/// Probe statistics of one run, computed from its raw `probes.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeStats {
    /// Probes sent.
    pub sent: u64,
    /// Probes never answered.
    pub lost: u64,
    /// Median RTT, ms.
    pub rtt_p50_ms: f64,
    /// 99th-percentile RTT, ms.
    pub rtt_p99_ms: f64,
}

/// [`scan_probes`]' result: the statistics of every usable file, and each
/// unusable one with the reason in a plain sentence.
#[derive(Debug, Clone, Default)]
pub struct ProbeScan {
    /// Statistics per usable file.
    pub stats: HashMap<PathBuf, ProbeStats>,
    /// Files that could not be used, and why.
    pub unusable: Vec<crate::load::SeriesError>,
}

/// The `q` quantile of values, interpolated linearly between the two
/// nearest ranks (polars' and numpy's "linear"); NaN if empty. Reorders
/// `v` (a selection, not a sort: O(n)).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let k = pos.floor() as usize;
    let (_, at, above) = v.select_nth_unstable_by(k, f64::total_cmp);
    let lo = *at;
    let frac = pos - k as f64;
    if frac == 0.0 || above.is_empty() {
        return lo;
    }
    let hi = above.iter().copied().fold(f64::INFINITY, f64::min);
    lo + (hi - lo) * frac
}

/// One file's statistics; `None` for a missing file. The file is read and
/// checked by [`crate::load::read_probes`] (a file that is not text, not
/// `seq,sent_ms,recv_ms` numbers, or holds times beyond 1e9 ms is an error
/// naming its line).
pub fn probe_file_stats(
    path: &std::path::Path,
) -> Result<Option<ProbeStats>, crate::load::SeriesError> {
    let Some(events) = crate::load::read_probes(path)? else {
        return Ok(None);
    };
    let mut rtts: Vec<f64> = events
        .iter()
        .filter_map(|e| Some(e.recv_ms? - e.sent_ms))
        .collect();
    Ok(Some(ProbeStats {
        sent: events.len() as u64,
        lost: (events.len() - rtts.len()) as u64,
        rtt_p50_ms: quantile(&mut rtts, 0.5),
        rtt_p99_ms: quantile(&mut rtts, 0.99),
    }))
}

/// Scan `probes.csv` files, each on its own ([`probe_file_stats`]) so
/// that a bad file costs only its own run's probe metrics, on every core:
/// files are handed out one at a time to a thread per core, and each is
/// read, reduced to four numbers and dropped, so memory stays at a few
/// files' worth however many runs there are. Missing files are skipped.
pub fn scan_probes(paths: &[PathBuf]) -> ProbeScan {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(paths.len().max(1));
    type FileResult = (usize, Result<Option<ProbeStats>, crate::load::SeriesError>);
    let results: Vec<Vec<FileResult>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(p) = paths.get(i) else { break };
                        out.push((i, probe_file_stats(p)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a probe scan thread panicked"))
            .collect()
    });
    let mut scan = ProbeScan::default();
    for (i, r) in results.into_iter().flatten() {
        match r {
            Ok(Some(st)) => {
                scan.stats.insert(paths[i].clone(), st);
            }
            Ok(None) => {}
            Err(e) => scan.unusable.push(e),
        }
    }
    scan.unusable.sort_by(|a, b| a.path.cmp(&b.path));
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks_like_numpy() {
        // numpy.quantile([1, 2, 3, 4], [0.5, 0.99]) = [2.5, 3.97]
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&mut v, 0.5), 2.5);
        assert!((quantile(&mut v, 0.99) - 3.97).abs() < 1e-12);
        assert_eq!(quantile(&mut [7.0], 0.99), 7.0);
        assert!(quantile(&mut [], 0.5).is_nan());
        let mut w: Vec<f64> = (0..1000).rev().map(f64::from).collect();
        assert!((quantile(&mut w, 0.99) - 989.01).abs() < 1e-9);
    }
    use migbench_model::{expand, RunRecord, Scenario};

    fn set_of(text: &str) -> ResultsSet {
        let sc = Scenario::parse(std::path::Path::new("v.toml"), text).unwrap();
        let matrix = expand(&sc);
        let records = matrix
            .iter()
            .map(|p| RunRecord::pending(p, 0.0, "tcg"))
            .collect();
        ResultsSet {
            dir: PathBuf::from("/nonexistent"),
            name: "v".into(),
            manifest: migbench_model::record::Manifest {
                scenario_name: "v".into(),
                scenario_path: "v.toml".into(),
                scenario_text: text.into(),
                scenario_sha256: String::new(),
                varying: migbench_model::matrix::varying(&matrix),
                matrix,
                host_kernel: String::new(),
                host_name: String::new(),
                qemu_version: String::new(),
                accel: "tcg".into(),
                guest_image: String::new(),
                qemu_ram_padding_kib: 8,
                git_revision: String::new(),
                migbench_version: String::new(),
                started_at: 0.0,
            },
            records,
            lines: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn settings_named_by_their_variant_do_not_split_groups() {
        let set = set_of(
            "[guest]\nram = \"256MiB\"\n[workload]\ndirty_rate = [\"0\", \"5MB/s\"]\n[link]\nrate = \"100mbit\"\n\
             [[variant]]\nname = \"plain\"\n\
             [[variant]]\nname = \"pc\"\nmigration.postcopy = \"after 2 passes\"\n\
             [[variant]]\nname = \"limits\"\nmigration.downtime_limit = [\"30ms\", \"1s\"]\n",
        );
        let runs = all_runs(std::slice::from_ref(&set));
        let names: Vec<&str> = varying(&runs).iter().map(|d| d.name).collect();
        // postcopy only changes with the variant; the limit also varies
        // inside `limits`; the dirty rate everywhere.
        assert_eq!(names, ["variant", "dirty_rate", "downtime_limit"]);
    }

    #[test]
    fn a_guest_size_that_only_changes_with_the_host_pair_is_named_by_it() {
        let pair = |name: &str, ip: &str| {
            format!(
                "[[hosts.pair]]\nname = \"{name}\"\nsrc = \"qemu:///{name}1\"\ndst = \"qemu:///{name}2\"\n\
                 migration_address = \"10.0.0.2\"\nreturn_address = \"10.0.0.1\"\n\
                 domain = \"g\"\nguest_address = \"{ip}\"\n"
            )
        };
        let mut set = set_of(&format!(
            "repetitions = 2\n[link]\nrate = [\"1gbit\", \"10gbit\"]\n[hosts]\nprobe = \"icmp\"\n{}{}",
            pair("a", "10.0.1.5"),
            pair("b", "10.0.1.6")
        ));
        // Each pair's own guest, as libvirt reported it.
        for p in set.manifest.matrix.iter_mut().filter(|p| p.pair == "b") {
            p.ram = migbench_model::units::Size(4 << 30);
        }
        for r in set.records.iter_mut().filter(|r| r.params.pair == "b") {
            r.params.ram = migbench_model::units::Size(4 << 30);
        }
        set.manifest.varying = migbench_model::matrix::varying(&set.manifest.matrix);
        assert!(set.manifest.varying.contains(&"ram".to_string()));
        let runs = all_runs(std::slice::from_ref(&set));
        let names: Vec<&str> = varying(&runs).iter().map(|d| d.name).collect();
        assert_eq!(names, ["pair", "link_rate"]);
    }
}
