//! The run matrix: the Cartesian product of a scenario's list fields, times
//! its repetitions. Each element is a [`RunParams`] (generated from the knob
//! table, [`crate::knobs`]) with scalar values only.

use crate::dimension::times;
use crate::fault::FaultAt;
pub use crate::knobs::RunParams;
use crate::knobs::DIMENSIONS;
use crate::scenario::Scenario;
use crate::settings::{BandwidthCap, StorageMode};

impl RunParams {
    /// Stable run identifier inside one results directory.
    pub fn run_id(&self) -> String {
        format!("run-{:04}", self.index)
    }

    /// A one-line description of the dimensions, e.g. for progress bars.
    pub fn label(&self) -> String {
        let backend = match (self.backend, self.transport) {
            (crate::settings::Backend::Qmp, _) => String::new(),
            (b, crate::settings::Transport::Direct) => format!("{b} "),
            (b, t) => format!("{b} {t} "),
        };
        let storage = match self.storage_mode {
            StorageMode::None => String::new(),
            m => format!(" storage={m}"),
        };
        let variant = if self.variant.is_empty() {
            String::new()
        } else {
            format!("{} ", self.variant)
        };
        let variant = if self.pair.is_empty() {
            variant
        } else {
            format!("pair={} {variant}", self.pair)
        };
        let fault = if self.fault.is_some() {
            format!(" fault=\"{}\"", self.fault)
        } else {
            String::new()
        };
        format!(
            "{backend}{variant}ram={} dirty={} link={} dl={} bw={}{storage}{fault} rep={}",
            self.ram,
            self.dirty_rate,
            self.link_rate,
            self.downtime_limit,
            self.max_bandwidth,
            self.repetition
        )
    }

    /// The bandwidth the migration may use, MB/s: the cap, or the link if uncapped.
    pub fn bandwidth_mbs(&self) -> f64 {
        let link = self.link_rate.0 as f64 / 8.0 / 1e6;
        match self.max_bandwidth {
            BandwidthCap::Unlimited => link,
            BandwidthCap::Limit(r) => (r.0 as f64 / 1e6).min(link),
        }
    }
}

/// Expand a scenario into its runs, in a stable order: the host pairs
/// outermost (each pair's runs are one stretch of the matrix), the knob
/// table's sections in order, `[migration]` and `[policy]` per variant,
/// then repetitions innermost, so one combination's runs sit together in
/// the live table.
pub fn expand(sc: &Scenario) -> Vec<RunParams> {
    let mut runs: Vec<RunParams> = match sc.hosts.as_ref().map(|h| &h.pairs) {
        Some(pairs) if !pairs.is_empty() => pairs
            .iter()
            .map(|p| RunParams {
                pair: p.name.clone(),
                ..RunParams::default()
            })
            .collect(),
        _ => vec![RunParams::default()],
    };
    runs = sc.backend.expand(runs);
    runs = sc.guest.expand(runs);
    runs = sc.storage.expand(runs);
    runs = sc.workload.expand(runs);
    runs = sc.link.expand(runs);
    runs = sc.probe.expand(runs);
    runs = sc.service.expand(runs);
    runs = sc.fault.expand(runs);
    let runs: Vec<RunParams> = runs
        .into_iter()
        .flat_map(|r| {
            sc.variants.iter().flat_map(move |v| {
                let mut r = r.clone();
                r.variant = v.name.clone();
                v.policy.expand(v.migration.expand(vec![r]))
            })
        })
        .collect();
    // A fault at post-copy strikes only where post-copy runs.
    let runs: Vec<RunParams> = runs
        .into_iter()
        .filter(|r| r.fault.at != FaultAt::Postcopy || !r.fault.is_some() || r.postcopy.enabled())
        .collect();
    let reps: Vec<u32> = (0..sc.repetitions.max()).collect();
    let mut runs = times(runs, &reps, |r, v| r.repetition = v);
    for (i, r) in runs.iter_mut().enumerate() {
        r.index = i;
    }
    runs
}

/// How large a matrix may be before it is refused: runs, and the
/// estimated duration (`migbench_predict::plan::run_secs`) in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Runs at most (`--max-runs`).
    pub max_runs: u64,
    /// Estimated seconds at most (`--max-duration`).
    pub max_secs: f64,
}

impl Default for Limits {
    /// 10,000 runs, 7 days.
    fn default() -> Self {
        Limits {
            max_runs: 10_000,
            max_secs: 7.0 * 86_400.0,
        }
    }
}

/// A matrix's size before it is expanded: each factor with its size, and
/// their product (`None` when it overflows `u64`).
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSize {
    /// `(name, values)` of every factor with more than one value, in
    /// expansion order (`hosts.pair`, `guest.ram`, ..., `variants`,
    /// `repetitions`).
    pub factors: Vec<(String, u64)>,
    /// The number of runs: an upper bound (a post-copy fault drops the
    /// runs without post-copy), `None` above `u64::MAX`.
    pub runs: Option<u64>,
}

impl std::fmt::Display for MatrixSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let factors: Vec<String> = self
            .factors
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let product = match self.runs {
            Some(n) => n.to_string(),
            None => "more than 18446744073709551615".into(),
        };
        if factors.is_empty() {
            write!(f, "{product}")
        } else {
            write!(f, "{} = {product}", factors.join(" × "))
        }
    }
}

/// The size of `sc`'s matrix, computed with checked arithmetic from the
/// number of values of each key; nothing is expanded.
pub fn size(sc: &Scenario) -> MatrixSize {
    let mut factors: Vec<(String, u64)> = Vec::new();
    let mut runs = Some(1u64);
    let mut factor = |name: &str, n: usize, runs: &mut Option<u64>| {
        let n = n as u64;
        if n != 1 {
            factors.push((name.to_string(), n));
        }
        *runs = runs.and_then(|r| r.checked_mul(n));
    };
    let pairs = sc.hosts.as_ref().map_or(0, |h| h.pairs.len());
    if pairs > 0 {
        factor("hosts.pair", pairs, &mut runs);
    }
    let sections = [
        sc.backend.sizes(),
        sc.guest.sizes(),
        sc.storage.sizes(),
        sc.workload.sizes(),
        sc.link.sizes(),
        sc.probe.sizes(),
        sc.service.sizes(),
        sc.fault.sizes(),
    ];
    for (name, n) in sections.iter().flatten() {
        factor(name, *n, &mut runs);
    }
    // Each variant multiplies its own [migration] and [policy] lists.
    let mut per_variant = Some(0u64);
    let mut each = Vec::new();
    for v in &sc.variants {
        let one = v
            .migration
            .sizes()
            .into_iter()
            .chain(v.policy.sizes())
            .try_fold(1u64, |p, (_, n)| p.checked_mul(n as u64));
        each.push(format!(
            "{} {}",
            v.name,
            one.map_or_else(|| "too many".into(), |n| n.to_string())
        ));
        per_variant = per_variant.zip(one).and_then(|(a, b)| a.checked_add(b));
    }
    if sc.variants.len() <= 1 {
        let one = sc.variants.first();
        for (name, n) in one.map_or_else(Vec::new, |v| {
            v.migration
                .sizes()
                .into_iter()
                .chain(v.policy.sizes())
                .collect()
        }) {
            factor(name, n, &mut runs);
        }
    } else {
        let combos = per_variant.unwrap_or(u64::MAX);
        factors.push((format!("variants ({})", each.join(" + ")), combos));
        runs = runs.zip(per_variant).and_then(|(r, p)| r.checked_mul(p));
    }
    let reps = sc.repetitions.max();
    if reps != 1 {
        factors.push(("repetitions".into(), reps.into()));
    }
    runs = runs.and_then(|r| r.checked_mul(reps.into()));
    MatrixSize { factors, runs }
}

/// A matrix above [`Limits`]: what makes it, and how to allow it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(pub String);

/// [`expand`], refused before anything is allocated when the matrix has
/// more runs than `limits.max_runs`. The estimated duration is checked by
/// the predictor (`migbench_predict::plan::expand_bounded`), which
/// depends on this crate, not the reverse.
pub fn expand_counted(sc: &Scenario, limits: &Limits) -> Result<Vec<RunParams>, TooLarge> {
    let size = size(sc);
    match size.runs {
        Some(n) if n <= limits.max_runs => {}
        Some(n) => {
            return Err(TooLarge(format!(
                "the matrix has {n} runs, more than the limit of {}: {size}; give fewer values or repetitions, or pass `--max-runs {n}` to run them all",
                limits.max_runs
            )))
        }
        None => {
            return Err(TooLarge(format!(
                "the matrix has more runs than can be counted: {size}; give fewer values or repetitions (`--max-runs` raises the limit of {})",
                limits.max_runs
            )))
        }
    }
    Ok(expand(sc))
}

/// `secs` in the unit a person reads best: "12.5 min", "3.2 h", "9.7 days".
pub fn human_secs(secs: f64) -> String {
    if secs < 2.0 * 3600.0 {
        format!("{:.1} min", secs / 60.0)
    } else if secs < 2.0 * 86_400.0 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{:.1} days", secs / 86_400.0)
    }
}

/// Names of the dimensions that take more than one value among `runs`, in
/// the knob table's order: what a manifest records as `varying` and what
/// the analyzer groups by.
pub fn varying(runs: &[RunParams]) -> Vec<String> {
    DIMENSIONS
        .iter()
        .filter(|d| {
            let first = runs.first().map(d.label);
            runs.iter().any(|r| Some((d.label)(r)) != first)
        })
        .map(|d| d.name.to_string())
        .collect()
}

/// The first run of a 256 MiB guest on a 100 Mbit link, with `extra`
/// scenario text appended (`"[migration]\npostcopy = \"allowed\"\n"`):
/// a run for tests of code that takes one. Panics on invalid text.
pub fn sample_run(extra: &str) -> RunParams {
    let text = format!("[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n{extra}");
    let sc = Scenario::parse(std::path::Path::new("sample.toml"), &text).expect("sample scenario");
    expand(&sc).remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Scenario {
        Scenario::parse(std::path::Path::new("x.toml"), text).unwrap()
    }

    #[test]
    fn matrix_is_the_cartesian_product_times_repetitions() {
        let sc = parse(
            "repetitions = 3\n[guest]\nram = [\"256MiB\", \"512MiB\"]\n[workload]\ndirty_rate = [\"0\", \"1MB/s\", \"5MB/s\"]\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n",
        );
        let runs = expand(&sc);
        assert_eq!(runs.len(), 2 * 3 * 2 * 3);
        assert!(runs.iter().enumerate().all(|(i, r)| r.index == i));
        let distinct: std::collections::HashSet<_> = runs
            .iter()
            .map(|r| (r.ram, r.dirty_rate, r.link_rate, r.repetition))
            .collect();
        assert_eq!(distinct.len(), runs.len());
        assert_eq!(varying(&runs), vec!["ram", "dirty_rate", "link_rate"]);
    }
}
