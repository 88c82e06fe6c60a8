//! A `--by` comparison in words and on a page: factors with their
//! direction ("9.46x lower"), the pooled line (one number, or what it
//! depends on), the terminal table and the report page with its chart.

use super::*;

/// "1gbit is 9.1x [8.7, 9.6] lower than 100mbit" (or higher); an
/// interval that spans no difference is said end by end: "1gbit is 2.23x
/// lower than 100mbit (95 % CI from 5.83x lower to 1.18x higher)".
pub fn in_words(a: &str, b: &str, r: &Ratio) -> String {
    let (x, bracket, dir, note) = factor(r.ratio, r.interval());
    format!("{b} is {x}{bracket} {dir} than {a}{note}")
}

/// A ratio as a factor of at least 1 ("9.10x"), its interval turned the
/// same way (" [8.70, 9.60]"), its direction ("lower"/"higher"), or, when
/// the interval spans no difference, the interval end by end
/// (" (95 % CI from 5.83x lower to 1.18x higher)").
fn factor(ratio: f64, interval: Option<(f64, f64)>) -> (String, String, &'static str, String) {
    let dir = if ratio < 1.0 { "lower" } else { "higher" };
    let x = format!("{}x", fmt(if ratio < 1.0 { 1.0 / ratio } else { ratio }));
    let (bracket, note) = match interval {
        None => (String::new(), String::new()),
        Some((lo, hi)) if lo <= 1.0 && hi >= 1.0 => (
            String::new(),
            format!(" (95 % CI from {} to {})", direction(lo), direction(hi)),
        ),
        Some((lo, hi)) if ratio < 1.0 => (
            format!(" [{}, {}]", fmt(1.0 / hi), fmt(1.0 / lo)),
            String::new(),
        ),
        Some((lo, hi)) => (format!(" [{}, {}]", fmt(lo), fmt(hi)), String::new()),
    };
    (x, bracket, dir, note)
}

/// "9.46x lower" / "1.20x higher": a ratio's factor and direction alone.
fn direction(ratio: f64) -> String {
    if ratio < 1.0 {
        format!("{}x lower", fmt(1.0 / ratio))
    } else {
        format!("{}x higher", fmt(ratio))
    }
}

/// The pooled line of one metric, in words: one number with its
/// interval, heterogeneity and prediction interval when the combinations
/// agree; what it depends on, per combination, when they do not.
pub fn pooled_words(c: &ByComparison, title: &str, metric: &str, p: &Pooled) -> String {
    let pct = |x: f64| format!("{:.1} %", 100.0 * x);
    if p.n == 1 {
        return format!(
            "{title}: {} (one combination)",
            in_words(&c.a, &c.b, &p.as_ratio())
        );
    }
    let het = match (p.fit.i2, p.fit.q_p) {
        (Some(i2), Some(qp)) => format!(
            "I² = {}, τ = {:.2}, Q p {}",
            pct(i2),
            p.fit.tau2.unwrap_or(0.0).sqrt(),
            if qp < 0.001 {
                "< 0.001".into()
            } else {
                format!("= {qp:.3}")
            }
        ),
        _ => "equal weights: a combination has one run a side or no spread".into(),
    };
    let pooled = in_words(&c.a, &c.b, &p.as_ratio());
    let new = match (p.pi_lo, p.pi_hi) {
        (Some(lo), Some(hi)) => format!(
            "; in a new combination from {} to {}",
            direction(lo),
            direction(hi)
        ),
        _ => "; no prediction for a new combination (needs 3)".into(),
    };
    if !p.heterogeneous {
        return format!(
            "{title}: {pooled} (random effects over {} combinations, {het}{new})",
            p.n
        );
    }
    let per: Vec<(String, f64)> = c
        .cells
        .iter()
        .filter_map(|cell| {
            let r = cell.rows.iter().find(|r| r.metric == metric)?.ratio?;
            Some((cell.others.clone(), r.ratio))
        })
        .collect();
    let list = if per.len() <= 6 {
        per.iter()
            .map(|(k, r)| format!("{} at {k}", direction(*r)))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        format!(
            "from {} to {} over {} combinations",
            direction(p.range.0),
            direction(p.range.1),
            per.len()
        )
    };
    let on = if c.others.is_empty() {
        "the combination".to_string()
    } else {
        c.others.join(", ")
    };
    format!(
        "{title}: depends on {on}: {} is {list} than {}; pooled {}, not one effect ({het}{new})",
        c.b,
        c.a,
        {
            let (x, bracket, dir, note) = factor(p.ratio, p.interval());
            format!("{x}{bracket} {dir}{note}")
        }
    )
}

/// Three significant figures below 100 (0.00471, 0.66, 9.46, 14.9), whole
/// numbers above; below 0.001 and from a million on, in scientific
/// notation (2.25e-33, 4.71e38), not 35 digits.
pub(super) fn fmt(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 1e6 || (a != 0.0 && a < 1e-3) {
        format!("{x:.2e}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 || a == 0.0 {
        format!("{x:.2}")
    } else {
        let prec = (-a.log10()).ceil() as usize + 2;
        format!("{x:.prec$}")
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
                    .map(|x| match x.interval() {
                        Some((lo, hi)) => format!("{} [{}, {}]", fmt(x.ratio), fmt(lo), fmt(hi)),
                        None => format!("{} [–]", fmt(x.ratio)),
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
        let _ = writeln!(
            s,
            "\n  pooled over the combinations (random effects, HKSJ 95 % interval):"
        );
        for (name, title, p) in &c.pooled {
            let _ = writeln!(s, "  {}", pooled_words(c, title, name, p));
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
                    // No whisker where the ratio has no interval.
                    Some(Estimate {
                        n: 2,
                        median: 1.0 / r.ratio,
                        mean: 1.0 / r.ratio,
                        sd: None,
                        se: None,
                        ci_lo: r.hi.map(|h| 1.0 / h),
                        ci_hi: r.lo.map(|l| 1.0 / l),
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
