//! `compare RESULTS --by DIM`: one dimension's values compared within
//! every combination of the other dimensions (the headline "100 Mbit vs
//! 1 Gbit" while dirty rate and RAM also vary): each side's median, the
//! ratio B/A and the difference B − A with 95 % intervals and a verdict,
//! then a line pooled over the combinations.
//!
//! The ratio is that of geometric means, its interval Welch's on the
//! logarithms (a ratio of times is symmetric on a log scale); the pooled
//! ratio weighs each combination's log-ratio by its precision (inverse
//! variance, a fixed-effect pooling: the effect averaged over these
//! combinations), and says the range of the combinations' own ratios, as
//! they may differ (100 Mbit hurts a busy guest more than an idle one).

use serde::Serialize;

use crate::dims::{completed_value, dim, metric, Dim, Metric};
use crate::frame::{group_key, varying, RunRef};
use crate::stats::{compare, estimate, Comparison, Estimate};

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
    /// Interval, low.
    pub lo: f64,
    /// Interval, high.
    pub hi: f64,
    /// Standard error of ln(ratio) (NaN with one run on a side).
    pub se: f64,
}

/// A pooled ratio and the range of the ratios it pools.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pooled {
    /// The pooled ratio.
    pub ratio: Ratio,
    /// Combinations pooled.
    pub n: usize,
    /// Their smallest and largest ratio.
    pub range: (f64, f64),
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
    /// Its baseline value.
    pub a: String,
    /// The value compared with it.
    pub b: String,
    /// Per combination of the other dimensions.
    pub cells: Vec<Cell>,
    /// Pooled over the combinations, per metric (name, title, pooled).
    pub pooled: Vec<(&'static str, &'static str, Pooled)>,
}

/// B/A of geometric means with Welch's interval on the logarithms.
pub fn ratio(a: &[f64], b: &[f64]) -> Option<Ratio> {
    let log = |v: &[f64]| -> Option<Vec<f64>> {
        let l: Vec<f64> = v.iter().filter(|x| **x > 0.0).map(|x| x.ln()).collect();
        (!l.is_empty()).then_some(l)
    };
    let (la, lb) = (log(a)?, log(b)?);
    let c = compare(&la, &lb)?;
    let (ea, eb) = (estimate(&la)?, estimate(&lb)?);
    let se = if ea.n > 1 && eb.n > 1 {
        (ea.se.powi(2) + eb.se.powi(2)).sqrt()
    } else {
        f64::NAN
    };
    let (lo, hi) = if c.ci_lo.is_finite() {
        (c.ci_lo.exp(), c.ci_hi.exp())
    } else {
        (f64::NAN, f64::NAN)
    };
    Some(Ratio {
        ratio: c.diff.exp(),
        lo,
        hi,
        se,
    })
}

/// Pool per-combination ratios: inverse-variance weighted on the log
/// scale with a normal 95 % interval; when a ratio has no spread to weigh
/// it by (one run a side, or none at all), their geometric mean with a t
/// interval over the combinations instead.
pub fn pool(ratios: &[Ratio]) -> Option<Pooled> {
    let first = ratios.first()?;
    let range = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| {
        (lo.min(r.ratio), hi.max(r.ratio))
    });
    let n = ratios.len();
    let weighed = ratios.iter().all(|r| r.se.is_finite() && r.se > 0.0);
    let ratio = if n == 1 {
        *first
    } else if weighed {
        let w: Vec<f64> = ratios.iter().map(|r| 1.0 / r.se.powi(2)).collect();
        let sw: f64 = w.iter().sum();
        let mean = ratios
            .iter()
            .zip(&w)
            .map(|(r, w)| w * r.ratio.ln())
            .sum::<f64>()
            / sw;
        let se = 1.0 / sw.sqrt();
        Ratio {
            ratio: mean.exp(),
            lo: (mean - 1.96 * se).exp(),
            hi: (mean + 1.96 * se).exp(),
            se,
        }
    } else {
        let logs: Vec<f64> = ratios.iter().map(|r| r.ratio.ln()).collect();
        let e = estimate(&logs)?;
        Ratio {
            ratio: e.mean.exp(),
            lo: e.ci_lo.exp(),
            hi: e.ci_hi.exp(),
            se: e.se,
        }
    };
    Some(Pooled { ratio, n, range })
}

/// The values of `d` among `runs`, in the dimension's numeric order.
fn values(d: &Dim, runs: &[RunRef]) -> Vec<String> {
    let mut v: Vec<(f64, String)> = runs
        .iter()
        .map(|r| ((d.value)(&r.rec.params), (d.label)(&r.rec.params)))
        .collect();
    v.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    v.dedup_by(|x, y| x.1 == y.1);
    v.into_iter().map(|(_, l)| l).collect()
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
    let vals = values(d, runs);
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
    let rest: Vec<&Dim> = vary.into_iter().filter(|x| x.name != d.name).collect();
    let mut keys: Vec<String> = runs.iter().map(|r| group_key(r, &rest)).collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
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
                a: base.clone(),
                b: bv,
                cells,
                pooled,
            }
        })
        .collect())
}

/// "1gbit is 9.1x [8.7, 9.6] lower than 100mbit" (or higher).
pub fn in_words(a: &str, b: &str, r: &Ratio) -> String {
    let iv = |lo: f64, hi: f64| {
        if lo.is_finite() {
            format!(" [{}, {}]", fmt(lo), fmt(hi))
        } else {
            String::new()
        }
    };
    if r.ratio < 1.0 {
        format!(
            "{b} is {}x{} lower than {a}",
            fmt(1.0 / r.ratio),
            iv(1.0 / r.hi, 1.0 / r.lo)
        )
    } else {
        format!("{b} is {}x{} higher than {a}", fmt(r.ratio), iv(r.lo, r.hi))
    }
}

fn fmt(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The comparisons as a terminal table.
pub fn render_text(set: &str, cmps: &[ByComparison]) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "{set}\ntest: Welch's t on the values (B − A) and on their logarithms (B / A), 95 %\n"
    );
    let est = |e: &Option<Estimate>| {
        e.map(|e| format!("{} (n={})", fmt(e.median), e.n))
            .unwrap_or_else(|| "–".into())
    };
    for c in cmps {
        let _ = writeln!(s, "\nby {}: A = {}, B = {}", c.dim, c.a, c.b);
        for cell in &c.cells {
            let _ = writeln!(s, "\n  {}", cell.others);
            let _ = writeln!(
                s,
                "  {:<44} {:>14} {:>14} {:>30} {:>30}  verdict",
                "metric (medians)", "A", "B", "B / A [95% CI]", "B − A [95% CI]"
            );
            for r in &cell.rows {
                let ratio = r
                    .ratio
                    .map(|x| {
                        if x.lo.is_finite() {
                            format!("{} [{}, {}]", fmt(x.ratio), fmt(x.lo), fmt(x.hi))
                        } else {
                            fmt(x.ratio)
                        }
                    })
                    .unwrap_or_else(|| "–".into());
                let (diff, verdict) = match &r.diff {
                    Some(d) if d.ci_lo.is_finite() => (
                        format!("{} [{}, {}]", fmt(d.diff), fmt(d.ci_lo), fmt(d.ci_hi)),
                        match d.p_value {
                            Some(p) if d.significant => format!("significant (p={p:.3})"),
                            Some(p) => format!("not significant (p={p:.3})"),
                            None => "no spread".into(),
                        },
                    ),
                    Some(d) => (fmt(d.diff), "too few runs to test".into()),
                    None => ("–".into(), "no data".into()),
                };
                let _ = writeln!(
                    s,
                    "  {:<44} {:>14} {:>14} {:>30} {:>30}  {verdict}",
                    r.title,
                    est(&r.a),
                    est(&r.b),
                    ratio,
                    diff
                );
            }
        }
        let _ = writeln!(s, "\n  pooled over the combinations:");
        for (_, title, p) in &c.pooled {
            // The range the way the words put it ("x lower" inverts).
            let (lo, hi) = if p.ratio.ratio < 1.0 {
                (1.0 / p.range.1, 1.0 / p.range.0)
            } else {
                p.range
            };
            let _ = writeln!(
                s,
                "  {title}: {} ({} combinations: {}x–{}x)",
                in_words(&c.a, &c.b, &p.ratio),
                p.n,
                fmt(lo),
                fmt(hi)
            );
        }
    }
    s
}

/// The comparisons as a report page (tables and a chart of the ratios per
/// combination) in `dir`, with `compare.json`; returns the index path.
pub fn write_page(
    set: &str,
    cmps: &[ByComparison],
    dir: &std::path::Path,
) -> anyhow::Result<std::path::PathBuf> {
    use crate::charts::bars::{Bars, Series};
    use crate::report::{esc, figure, page};
    std::fs::create_dir_all(dir)?;
    let mut body = format!(
        "<p>{}</p><pre>{}</pre>",
        esc(set),
        esc(&render_text(set, cmps))
    );
    for (k, c) in cmps.iter().enumerate() {
        let cats: Vec<String> = c.cells.iter().map(|x| x.others.clone()).collect();
        // Times lower with B (A / B) for what should shrink: total time and
        // the client's outage (QEMU's downtime of two runs a side spans
        // orders of magnitude, so it stays in the table).
        let series = |metric: &str, name: &str| Series {
            name: name.into(),
            values: c
                .cells
                .iter()
                .map(|cell| {
                    let r = cell.rows.iter().find(|r| r.metric == metric)?.ratio?;
                    let (lo, hi) = if r.lo.is_finite() {
                        (1.0 / r.hi, 1.0 / r.lo)
                    } else {
                        (1.0 / r.ratio, 1.0 / r.ratio)
                    };
                    Some(Estimate {
                        n: 2,
                        median: 1.0 / r.ratio,
                        mean: 1.0 / r.ratio,
                        sd: 0.0,
                        se: 0.0,
                        ci_lo: lo,
                        ci_hi: hi,
                    })
                })
                .collect(),
            outliers: Vec::new(),
        };
        let chart = Bars {
            name: format!("ratio-{k}"),
            title: format!(
                "How many times lower with {} = {} than with {} (95 % CI)",
                c.dim, c.b, c.a
            ),
            y_axis: format!("{} / {}", c.a, c.b),
            categories: cats.clone(),
            series: vec![
                series("total_time_s", "total time"),
                series("switchover_probe_ms", "probe outage at switchover"),
            ],
            marker: Some((vec![Some(1.0); cats.len()], "no difference".into())),
        };
        body.push_str(&figure(&crate::charts::render(&chart, dir)?));
    }
    let index = dir.join("index.html");
    std::fs::write(&index, page("migbench comparison by dimension", &body))?;
    std::fs::write(
        dir.join("compare.json"),
        serde_json::to_string_pretty(cmps)? + "\n",
    )?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_of_times_and_its_interval() {
        let r = ratio(&[10.0, 11.0, 12.0], &[1.0, 1.1, 1.2]).unwrap();
        assert!((r.ratio - 0.1).abs() < 1e-9, "{r:?}");
        assert!(r.lo < 0.1 && r.hi > 0.1 && r.hi < 0.13, "{r:?}");
        assert!(in_words("100mbit", "1gbit", &r).starts_with("1gbit is 10.0x ["));
        // One run a side: a ratio, no interval.
        let one = ratio(&[4.0], &[2.0]).unwrap();
        assert_eq!(one.ratio, 0.5);
        assert!(one.lo.is_nan());
        assert_eq!(in_words("a", "b", &one), "b is 2.00x lower than a");
    }

    #[test]
    fn pooled_ratios_are_their_geometric_mean() {
        let r = |x, se| Ratio {
            ratio: x,
            lo: x,
            hi: x,
            se,
        };
        // Equally precise: the geometric mean, a tight interval.
        let p = pool(&[r(2.0, 0.1), r(8.0, 0.1)]).unwrap();
        assert!((p.ratio.ratio - 4.0).abs() < 1e-9);
        assert!(
            p.ratio.lo < 4.0 && p.ratio.hi > 4.0 && p.ratio.hi < 5.0,
            "{p:?}"
        );
        assert_eq!((p.n, p.range), (2, (2.0, 8.0)));
        // The more precise one weighs more.
        assert!(pool(&[r(2.0, 0.05), r(8.0, 0.5)]).unwrap().ratio.ratio < 2.2);
        // No spread to weigh by: over the combinations.
        let q = pool(&[r(2.0, f64::NAN), r(8.0, f64::NAN)]).unwrap();
        assert!((q.ratio.ratio - 4.0).abs() < 1e-9 && q.ratio.hi > 8.0);
        assert_eq!(pool(&[r(3.0, 0.1)]).unwrap().ratio.ratio, 3.0);
        assert!(pool(&[]).is_none());
    }
}
