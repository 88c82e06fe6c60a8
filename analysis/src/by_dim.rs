//! `compare RESULTS --by DIM`: one dimension's values compared within
//! every combination of the other dimensions (the headline "100 Mbit vs
//! 1 Gbit" while dirty rate and RAM also vary): each side's median, the
//! ratio B/A and the difference B − A with 95 % intervals and a verdict,
//! then the ratios pooled over the combinations.
//!
//! The ratio is that of geometric means, its interval Welch's on the
//! logarithms (Student's t with Welch–Satterthwaite degrees of freedom: a
//! ratio of times is symmetric on a log scale). The pooled ratio is a
//! random-effects estimate ([`crate::stats::meta`]): the combinations
//! are different conditions, not repeats of one, so the interval carries
//! the spread between them (HKSJ), the heterogeneity is reported (τ², I²)
//! with a prediction interval for a new combination, and when the
//! combinations differ beyond chance the text says what the ratio depends
//! on, per combination, instead of one confident number.

use serde::Serialize;

use crate::dims::{completed_value, dim, metric, Dim, Metric};
use crate::frame::{dim_values, group_key, varying, RunRef};
use crate::stats::meta::{self, Effect};
use crate::stats::{compare, estimate, Comparison, Estimate};

mod render;
pub use render::{in_words, pooled_words, render_text, write_page};

/// The metrics a `--by` comparison reports (when a run has them).
pub const KEY_METRICS: &[&str] = &[
    "total_time_s",
    "downtime_qemu_ms",
    "downtime_libvirt_ms",
    "switchover_probe_ms",
    "downtime_probe_ms",
    "throughput_mbps",
];

/// B/A with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio {
    /// B / A (geometric means).
    pub ratio: f64,
    /// Interval, low (`None` with one run on a side or no spread).
    pub lo: Option<f64>,
    /// Interval, high.
    pub hi: Option<f64>,
    /// ln(B / A).
    pub log_ratio: f64,
    /// Standard error of ln(B / A) (`None` with one run on a side).
    pub se: Option<f64>,
    /// Welch–Satterthwaite degrees of freedom of the interval.
    pub df: Option<f64>,
}

impl Ratio {
    /// The interval, when defined.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.lo.zip(self.hi)
    }

    fn effect(&self) -> Effect {
        Effect {
            y: self.log_ratio,
            v: self.se.map(|s| s * s),
        }
    }
}

/// The ratios of the combinations pooled (random effects).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pooled {
    /// The pooled ratio.
    pub ratio: f64,
    /// Its 95 % interval, low (`None` when undefined).
    pub lo: Option<f64>,
    /// High.
    pub hi: Option<f64>,
    /// 95 % prediction interval for the ratio in a new combination, low
    /// (needs 3 combinations).
    pub pi_lo: Option<f64>,
    /// High.
    pub pi_hi: Option<f64>,
    /// Combinations pooled.
    pub n: usize,
    /// Their smallest and largest ratio.
    pub range: (f64, f64),
    /// Whether they differ so much that one pooled number misleads.
    pub heterogeneous: bool,
    /// The fit on the log scale (method, τ², I², Q, standard errors).
    pub fit: meta::Pooled,
}

impl Pooled {
    /// The interval, when defined.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.lo.zip(self.hi)
    }

    /// The pooled ratio as a [`Ratio`] (for words and charts).
    pub fn as_ratio(&self) -> Ratio {
        Ratio {
            ratio: self.ratio,
            lo: self.lo,
            hi: self.hi,
            log_ratio: self.fit.mu,
            se: self.fit.se,
            df: None,
        }
    }
}

/// One metric in one combination.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Metric name.
    pub metric: &'static str,
    /// Title with unit.
    pub title: &'static str,
    /// Side A's estimate (its median among them).
    pub a: Option<Estimate>,
    /// Side B's.
    pub b: Option<Estimate>,
    /// B / A.
    pub ratio: Option<Ratio>,
    /// B − A (Welch).
    pub diff: Option<Comparison>,
}

/// One combination of the other dimensions.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The other dimensions' values ("dirty_rate=0"), or "all runs".
    pub others: String,
    /// The rows with data.
    pub rows: Vec<Row>,
}

/// A whole `--by` comparison of value B against value A.
#[derive(Debug, Clone, Serialize)]
pub struct ByComparison {
    /// The dimension.
    pub dim: &'static str,
    /// The other varying dimensions (what a combination is made of).
    pub others: Vec<&'static str>,
    /// Its baseline value.
    pub a: String,
    /// The value compared with it.
    pub b: String,
    /// Per combination of the other dimensions.
    pub cells: Vec<Cell>,
    /// Pooled over the combinations, per metric (name, title, pooled).
    pub pooled: Vec<(&'static str, &'static str, Pooled)>,
}

/// B/A of geometric means with Welch's interval on the logarithms;
/// `None` when a side has no value or a value ≤ 0 (an outage of 0 ms):
/// that side's geometric mean is 0 or undefined, and leaving such runs
/// out would let the side's few nonzero runs stand for all of it.
pub fn ratio(a: &[f64], b: &[f64]) -> Option<Ratio> {
    let log = |v: &[f64]| -> Option<Vec<f64>> {
        let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        (!v.is_empty() && v.iter().all(|x| *x > 0.0)).then(|| v.iter().map(|x| x.ln()).collect())
    };
    let (la, lb) = (log(a)?, log(b)?);
    let c = compare(&la, &lb)?;
    let (ea, eb) = (estimate(&la)?, estimate(&lb)?);
    let se = ea
        .se
        .zip(eb.se)
        .map(|(x, y)| (x * x + y * y).sqrt())
        .filter(|s| s.is_finite() && *s > 0.0);
    let interval = (c.ci_lo.is_finite() && c.ci_hi.is_finite() && c.df.is_finite())
        .then(|| (c.ci_lo.exp(), c.ci_hi.exp()));
    Some(Ratio {
        ratio: c.diff.exp(),
        lo: interval.map(|i| i.0),
        hi: interval.map(|i| i.1),
        log_ratio: c.diff,
        se,
        df: Some(c.df).filter(|d| d.is_finite()),
    })
}

/// Pool per-combination ratios with random effects (see [`meta::pool`]).
pub fn pool(ratios: &[Ratio]) -> Option<Pooled> {
    let effects: Vec<Effect> = ratios.iter().map(Ratio::effect).collect();
    let fit = meta::pool(&effects)?;
    let range = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| {
        (lo.min(r.ratio), hi.max(r.ratio))
    });
    let (ratio, lo, hi) = if fit.k == 1 {
        (ratios[0].ratio, ratios[0].lo, ratios[0].hi)
    } else {
        let ci = fit.ci.map(|c| (c.0.exp(), c.1.exp()));
        (fit.mu.exp(), ci.map(|c| c.0), ci.map(|c| c.1))
    };
    Some(Pooled {
        ratio,
        lo,
        hi,
        pi_lo: fit.pi.map(|c| c.0.exp()),
        pi_hi: fit.pi.map(|c| c.1.exp()),
        n: fit.k,
        range,
        heterogeneous: fit.heterogeneous(&effects),
        fit,
    })
}

/// Compare every value of dimension `name` after the first with the
/// first (or `b` with `a` when given), within each combination of the
/// other varying dimensions. The error names the dimension and what was
/// possible.
pub fn compare_by(
    runs: &[RunRef],
    name: &str,
    a: Option<&str>,
    b: Option<&str>,
) -> Result<Vec<ByComparison>, String> {
    let vary = varying(runs);
    let Some(d) = dim(name) else {
        return Err(format!(
            "--by {name}: no such dimension; these vary here: {}",
            vary.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
        ));
    };
    let vals = dim_values(d, runs);
    if vals.is_empty() {
        return Err(format!(
            "--by {name}: no runs to compare (none read, or every record skipped)"
        ));
    }
    if vals.len() < 2 {
        return Err(format!(
            "--by {name}: it has one value here ({}); these vary: {}",
            vals.join(""),
            vary.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
        ));
    }
    let pick = |want: Option<&str>, default: &str| -> Result<String, String> {
        match want {
            None => Ok(default.to_string()),
            Some(w) if vals.iter().any(|v| v == w) => Ok(w.to_string()),
            Some(w) => Err(format!(
                "{name}={w}: no such value here; there are {}",
                vals.join(", ")
            )),
        }
    };
    let base = pick(a, &vals[0])?;
    let others: Vec<String> = match b {
        Some(_) => vec![pick(b, &vals[1])?],
        None => vals.iter().filter(|v| **v != base).cloned().collect(),
    };
    // The same runs on both sides are no comparison ("100mbit is 1.00x
    // higher than 100mbit", with an interval from two copies of a sample).
    if others.contains(&base) {
        return Err(format!(
            "{name}={base} on both sides: compare it with another value; there are {}",
            vals.join(", ")
        ));
    }
    let rest: Vec<&Dim> = vary.into_iter().filter(|x| x.name != d.name).collect();
    // Combinations in the order of their values (0, 2MB/s, 10MB/s; as
    // text "10MB/s" would come before "2MB/s"), each once.
    let mut keyed: Vec<(Vec<f64>, String)> = runs
        .iter()
        .map(|r| {
            let v = rest.iter().map(|x| (x.value)(&r.rec.params)).collect();
            (v, group_key(r, &rest))
        })
        .collect();
    keyed.sort_by(|x, y| {
        x.0.iter()
            .zip(&y.0)
            .map(|(a, b)| a.total_cmp(b))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| x.1.cmp(&y.1))
    });
    let mut seen = std::collections::HashSet::new();
    let keys: Vec<String> = keyed
        .into_iter()
        .map(|(_, k)| k)
        .filter(|k| seen.insert(k.clone()))
        .collect();
    let metrics: Vec<&Metric> = KEY_METRICS.iter().filter_map(|m| metric(m)).collect();
    let side = |key: &str, value: &str, m: &Metric| -> Vec<f64> {
        runs.iter()
            .filter(|r| group_key(r, &rest) == key && (d.label)(&r.rec.params) == value)
            .filter_map(|r| completed_value(m, r.rec))
            .collect()
    };
    Ok(others
        .into_iter()
        .map(|bv| {
            let cells: Vec<Cell> = keys
                .iter()
                .map(|k| Cell {
                    others: k.clone(),
                    rows: metrics
                        .iter()
                        .map(|m| {
                            let (va, vb) = (side(k, &base, m), side(k, &bv, m));
                            Row {
                                metric: m.name,
                                title: m.title,
                                a: estimate(&va),
                                b: estimate(&vb),
                                ratio: ratio(&va, &vb),
                                diff: compare(&va, &vb),
                            }
                        })
                        .filter(|r| r.a.is_some() || r.b.is_some())
                        .collect(),
                })
                .collect();
            let pooled = metrics
                .iter()
                .filter_map(|m| {
                    let rs: Vec<Ratio> = cells
                        .iter()
                        .flat_map(|c| c.rows.iter().filter(|r| r.metric == m.name))
                        .filter_map(|r| r.ratio)
                        .collect();
                    Some((m.name, m.title, pool(&rs)?))
                })
                .collect();
            ByComparison {
                dim: d.name,
                others: rest.iter().map(|x| x.name).collect(),
                a: base.clone(),
                b: bv,
                cells,
                pooled,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::render::fmt;
    use super::*;

    #[test]
    fn a_ratio_of_times_and_its_interval() {
        let r = ratio(&[10.0, 11.0, 12.0], &[1.0, 1.1, 1.2]).unwrap();
        assert!((r.ratio - 0.1).abs() < 1e-9, "{r:?}");
        let (lo, hi) = r.interval().unwrap();
        assert!(lo < 0.1 && hi > 0.1 && hi < 0.13, "{r:?}");
        assert!(in_words("100mbit", "1gbit", &r).starts_with("1gbit is 10.0x ["));
        // One run a side: a ratio, no interval.
        let one = ratio(&[4.0], &[2.0]).unwrap();
        assert_eq!(one.ratio, 0.5);
        assert_eq!((one.lo, one.se, one.df), (None, None, None));
        assert_eq!(in_words("a", "b", &one), "b is 2.00x lower than a");
    }

    fn r(x: f64, se: Option<f64>) -> Ratio {
        Ratio {
            ratio: x,
            lo: None,
            hi: None,
            log_ratio: x.ln(),
            se,
            df: None,
        }
    }

    #[test]
    fn the_pooled_interval_covers_combinations_that_disagree() {
        // Two precise combinations at 2x and 8x: a fixed-effect pool
        // would say 4x [3.7, 4.3]; random effects cover both.
        let p = pool(&[r(2.0, Some(0.02)), r(8.0, Some(0.02))]).unwrap();
        assert!((p.ratio - 4.0).abs() < 1e-9);
        let (lo, hi) = p.interval().unwrap();
        assert!(lo < 2.0 && hi > 8.0, "{p:?}");
        assert!(p.heterogeneous && p.fit.i2.unwrap() > 0.99);
        assert_eq!((p.n, p.range), (2, (2.0, 8.0)));
        assert!(p.pi_lo.is_none(), "no prediction from two combinations");
    }

    #[test]
    fn agreeing_combinations_pool_to_one_number_with_a_prediction() {
        let rs = [
            r(4.0, Some(0.1)),
            r(4.2, Some(0.1)),
            r(3.9, Some(0.1)),
            r(4.1, Some(0.1)),
        ];
        let p = pool(&rs).unwrap();
        assert!(!p.heterogeneous, "{p:?}");
        assert_eq!(p.fit.tau2, Some(0.0));
        let (lo, hi) = p.interval().unwrap();
        let (plo, phi) = (p.pi_lo.unwrap(), p.pi_hi.unwrap());
        assert!(
            plo <= lo && lo < p.ratio && p.ratio < hi && hi <= phi,
            "{p:?}"
        );
        // The more precise one weighs more (no heterogeneity to spread it).
        let w = pool(&[r(2.0, Some(0.05)), r(2.6, Some(0.5))]).unwrap();
        assert!(w.ratio < 2.1, "{w:?}");
    }

    #[test]
    fn combinations_without_spread_pool_with_equal_weights() {
        let q = pool(&[r(2.0, None), r(8.0, None)]).unwrap();
        assert_eq!(q.fit.method, meta::Method::Unweighted);
        assert!((q.ratio - 4.0).abs() < 1e-9 && q.hi.unwrap() > 8.0);
        assert_eq!(pool(&[r(3.0, Some(0.1))]).unwrap().ratio, 3.0);
        assert!(pool(&[]).is_none());
    }

    #[test]
    fn a_side_with_a_zero_has_no_ratio() {
        // Two of side A's three outages are 0: its geometric mean is 0,
        // and the one nonzero run alone must not stand for the side (it
        // made "B is 4.56x lower" of medians 0 and 110).
        assert_eq!(ratio(&[0.0, 0.0, 500.0], &[100.0, 110.0, 120.0]), None);
        assert_eq!(ratio(&[10.0, 11.0], &[0.0, 1.0]), None);
        assert_eq!(ratio(&[10.0, -1.0], &[1.0, 1.1]), None);
        assert!(ratio(&[10.0, 11.0], &[1.0, 1.1]).is_some());
    }

    #[test]
    fn nearly_equal_ratios_without_spread_do_not_depend_on_anything() {
        // One run a side in two combinations, 0.99x and 1.01x: nothing
        // says the effect depends on the other dimension.
        let p = pool(&[r(0.99, None), r(1.01, None)]).unwrap();
        assert_eq!(p.fit.method, meta::Method::Unweighted);
        assert!(!p.heterogeneous, "{p:?}");
        // Far apart (9.5x and 14.9x lower) they do.
        let q = pool(&[r(1.0 / 9.46, None), r(1.0 / 14.9, None)]).unwrap();
        assert!(q.heterogeneous, "{q:?}");
    }

    #[test]
    fn identical_ratios_without_spread_have_no_interval() {
        // Three combinations of one run a side with the same ratio: no
        // spread to size an interval, not an interval of zero width.
        let p = pool(&[r(1.0, None), r(1.0, None), r(1.0, None)]).unwrap();
        assert_eq!(p.fit.method, meta::Method::Unweighted);
        assert_eq!(
            (p.lo, p.hi, p.pi_lo, p.pi_hi),
            (None, None, None, None),
            "{p:?}"
        );
    }

    #[test]
    fn a_value_is_not_compared_with_itself() {
        let golden =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden/results");
        let sets = vec![crate::load::load_results(&golden).unwrap()];
        let runs = crate::frame::all_runs(&sets);
        let err = compare_by(&runs, "link_rate", Some("100mbit"), Some("100mbit")).unwrap_err();
        assert!(err.contains("link_rate=100mbit on both sides"), "{err}");
        assert!(compare_by(&runs, "link_rate", Some("100mbit"), Some("1gbit")).is_ok());
    }

    #[test]
    fn no_runs_is_said_plainly() {
        let err = compare_by(&[], "link_rate", None, None).unwrap_err();
        assert!(err.contains("no runs to compare"), "{err}");
    }

    #[test]
    fn small_factors_keep_three_significant_figures() {
        assert_eq!(fmt(0.004712), "0.00471");
        assert_eq!(fmt(0.66), "0.66");
        assert_eq!(fmt(14.93), "14.9");
        assert_eq!(fmt(f64::NAN), "–");
        // Extremes the loader lets through (1e-30 ms against 1e9 ms).
        assert_eq!(fmt(2.25e-33), "2.25e-33");
        assert_eq!(fmt(4.7116e38), "4.71e38");
        assert_eq!(fmt(999_999.0), "999999");
        assert_eq!(fmt(0.00123), "0.00123");
    }
}
