//! polars frames: every run of the loaded results as one row ([`runs_frame`]),
//! the per-group aggregation ([`group_stats`]) and the lazy scan of raw
//! probe CSVs ([`probe_stats`]). Confidence intervals come from
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
/// the variant (the variant names them).
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
    if !vary.iter().any(|d| d.name == "variant") {
        return vary;
    }
    // A setting that only changes with the variant is named by it: keep
    // the dimensions that also vary inside some variant.
    let distinct = |d: &Dim, runs: &mut dyn Iterator<Item = &RunRef>| {
        let mut labels: Vec<String> = runs.map(|r| (d.label)(&r.rec.params)).collect();
        labels.sort();
        labels.dedup();
        labels.len()
    };
    let mut variants: Vec<&str> = runs.iter().map(|r| r.rec.params.variant.as_str()).collect();
    variants.sort();
    variants.dedup();
    vary.into_iter()
        .filter(|d| {
            d.name == "variant"
                || variants.iter().any(|v| {
                    distinct(d, &mut runs.iter().filter(|r| r.rec.params.variant == *v)) > 1
                })
        })
        .collect()
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

/// Scan the given `probes.csv` files lazily (one polars query over all of
/// them) and aggregate per file. Missing files are skipped.
pub fn probe_stats(paths: &[PathBuf]) -> PolarsResult<HashMap<PathBuf, ProbeStats>> {
    let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.is_file()).collect();
    if existing.is_empty() {
        return Ok(HashMap::new());
    }
    let sources: Vec<PlRefPath> = existing
        .iter()
        .map(|p| PlRefPath::from(p.to_string_lossy().as_ref()))
        .collect();
    let schema = Schema::from_iter([
        Field::new("seq".into(), DataType::UInt64),
        Field::new("sent_ms".into(), DataType::Float64),
        Field::new("recv_ms".into(), DataType::Float64),
    ]);
    let lf = LazyCsvReader::new_paths(sources.into_iter().collect())
        .with_schema(Some(Arc::new(schema)))
        .with_include_file_paths(Some("path".into()))
        .finish()?;
    let out = lf
        .with_column((col("recv_ms") - col("sent_ms")).alias("rtt"))
        .group_by([col("path")])
        .agg([
            len().alias("sent"),
            col("recv_ms").null_count().alias("lost"),
            col("rtt")
                .quantile(lit(0.5), QuantileMethod::Linear)
                .alias("p50"),
            col("rtt")
                .quantile(lit(0.99), QuantileMethod::Linear)
                .alias("p99"),
        ])
        .collect()?;
    let paths_col = out.column("path")?.str()?.clone();
    let num = |name: &str| -> PolarsResult<Vec<f64>> {
        let c = out.column(name)?.cast(&DataType::Float64)?;
        Ok(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    };
    let (sent, lost, p50, p99) = (num("sent")?, num("lost")?, num("p50")?, num("p99")?);
    Ok(paths_col
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                PathBuf::from(p.unwrap_or_default()),
                ProbeStats {
                    sent: sent[i] as u64,
                    lost: lost[i] as u64,
                    rtt_p50_ms: p50[i],
                    rtt_p99_ms: p99[i],
                },
            )
        })
        .collect())
}

/// [`probe_stats`] over many files, file by file where one query over
/// all of them fails: the statistics of every usable file, and each
/// unusable one with the reason in a plain sentence.
#[derive(Debug, Clone, Default)]
pub struct ProbeScan {
    /// Statistics per usable file.
    pub stats: HashMap<PathBuf, ProbeStats>,
    /// Files that could not be used, and why.
    pub unusable: Vec<crate::load::SeriesError>,
}

/// Scan `probes.csv` files ([`probe_stats`]) so that one bad file costs
/// only its own run's probe metrics: when the query over all of them
/// fails, each is scanned alone, and a file that fails, or whose RTTs
/// are not finite numbers within 1e9 ms, is set aside with the reason
/// ([`probe_error`]).
pub fn scan_probes(paths: &[PathBuf]) -> ProbeScan {
    let mut scan = ProbeScan::default();
    let all = match quiet(|| probe_stats(paths)) {
        Ok(Ok(all)) => all,
        _ => {
            for p in paths {
                match quiet(|| probe_stats(std::slice::from_ref(p))) {
                    Ok(Ok(one)) => scan.stats.extend(one),
                    Ok(Err(e)) => scan.unusable.push(probe_error(p, &e.to_string())),
                    Err(()) => scan
                        .unusable
                        .push(probe_error(p, "the CSV reader failed on it")),
                }
            }
            std::mem::take(&mut scan.stats)
        }
    };
    for (p, st) in all {
        let plausible = |v: f64| v.is_nan() || v.abs() <= crate::load::MAX_MS;
        if plausible(st.rtt_p50_ms) && plausible(st.rtt_p99_ms) {
            scan.stats.insert(p, st);
        } else {
            scan.unusable.push(crate::load::SeriesError {
                path: p,
                line: None,
                why: format!(
                    "its RTTs are not plausible (median {} ms, p99 {} ms)",
                    crate::load::show(st.rtt_p50_ms),
                    crate::load::show(st.rtt_p99_ms)
                ),
            });
        }
    }
    scan.unusable.sort_by(|a, b| a.path.cmp(&b.path));
    scan
}

/// Run `f`, turning a panic inside it (a CSV reader meeting bytes it
/// does not expect) into `Err(())` without printing it.
fn quiet<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    static HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    out.map_err(|_| ())
}

/// Why a `probes.csv` cannot be used, in a plain sentence: the file's own
/// first fault (not text, a wrong header, a line that is not three
/// numbers, with its line), else the first line of polars' message
/// without its hints.
pub fn probe_error(path: &std::path::Path, polars_message: &str) -> crate::load::SeriesError {
    if let Err(e) = crate::load::read_probes(path) {
        return e;
    }
    let first = polars_message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unreadable");
    crate::load::SeriesError {
        path: path.to_owned(),
        line: None,
        why: format!("cannot be read as CSV ({})", crate::load::clip(first)),
    }
}

/// (send time, RTT) in ms of every answered probe in one run's
/// `probes.csv`, for CDF charts.
pub fn probe_rtts(path: &std::path::Path) -> PolarsResult<Vec<(f64, f64)>> {
    if !path.is_file() {
        return Ok(vec![]);
    }
    let lf = LazyCsvReader::new(PlRefPath::from(path.to_string_lossy().as_ref())).finish()?;
    let out = lf
        .select([
            col("sent_ms").cast(DataType::Float64),
            (col("recv_ms") - col("sent_ms"))
                .cast(DataType::Float64)
                .alias("rtt"),
        ])
        .drop_nulls(None)
        .collect()?;
    let sent = out.column("sent_ms")?.f64()?.clone();
    let rtt = out.column("rtt")?.f64()?.clone();
    Ok(sent
        .iter()
        .zip(rtt.iter())
        .filter_map(|(s, r)| Some((s?, r?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
