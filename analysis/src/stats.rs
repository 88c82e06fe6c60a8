//! Pure statistics, no I/O and no polars: point estimates with confidence
//! intervals ([`Estimate`], [`estimate`]), two-sample comparison
//! ([`compare`], Welch's t-test) and random-effects pooling ([`meta`]).
//!
//! A statistic that is undefined (the spread of one value, a test with no
//! degrees of freedom, anything computed from values so large that it
//! overflows) is `None` (null in JSON, empty in CSV, "–" in tables), never
//! 0 or a degenerate interval.
//!
//! Confidence intervals are Student-t intervals for the mean at 95 %:
//! mean ± t(0.975, n−1) · s/√n. With the few repetitions a migration
//! benchmark can afford (3–10) a bootstrap has too few resamples to be
//! trusted, while the t interval is exact for normal data and robust enough
//! for the roughly symmetric spread of repeated migrations.

pub mod meta;

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF, StudentsT};

/// Confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// A summary of one metric over a group of runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Number of values.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n−1); `None` for one value.
    pub sd: Option<f64>,
    /// Standard error of the mean; `None` for one value.
    pub se: Option<f64>,
    /// Lower bound of the 95 % t interval of the mean; `None` for one value.
    pub ci_lo: Option<f64>,
    /// Upper bound; `None` for one value.
    pub ci_hi: Option<f64>,
}

impl Estimate {
    /// A known value with no spread (a setting, a reference line): its
    /// interval is the value itself.
    pub fn exact(v: f64) -> Estimate {
        Estimate {
            n: 1,
            median: v,
            mean: v,
            sd: Some(0.0),
            se: Some(0.0),
            ci_lo: Some(v),
            ci_hi: Some(v),
        }
    }

    /// From moments computed elsewhere (polars' group-by): the t interval
    /// of the mean; spread and interval `None` for one value or when not
    /// finite.
    pub fn from_moments(n: usize, median: f64, mean: f64, sd: f64) -> Estimate {
        let fin = finite;
        let sd = (n > 1).then_some(sd).and_then(fin);
        let se = sd.map(|sd| sd / (n as f64).sqrt()).and_then(fin);
        let half = se
            .zip(t_quantile(n as f64 - 1.0))
            .map(|(se, t)| t * se)
            .and_then(fin);
        Estimate {
            n,
            median,
            mean,
            sd,
            se,
            ci_lo: half.map(|h| mean - h).and_then(fin),
            ci_hi: half.map(|h| mean + h).and_then(fin),
        }
    }

    /// The 95 % interval, when defined.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.ci_lo.zip(self.ci_hi)
    }

    /// The same estimate with every value multiplied by `k` (a change of
    /// unit; a negative `k` swaps the interval's ends).
    pub fn scaled(&self, k: f64) -> Estimate {
        let (lo, hi) = match self.interval() {
            Some((lo, hi)) if k < 0.0 => (Some(hi * k), Some(lo * k)),
            Some((lo, hi)) => (Some(lo * k), Some(hi * k)),
            None => (None, None),
        };
        Estimate {
            n: self.n,
            median: self.median * k,
            mean: self.mean * k,
            sd: self.sd.map(|x| x * k.abs()),
            se: self.se.map(|x| x * k.abs()),
            ci_lo: lo,
            ci_hi: hi,
        }
    }
}

/// Median of values (any order); `None` if empty (the model's: one
/// median for the whole workspace).
pub use migbench_model::stats::median;

/// `v` when it is a finite number: an undefined statistic (an overflow,
/// a 0/0) is `None`, never shown as a number.
pub fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Both ends of an interval when both are finite.
pub fn finite_pair(c: Option<(f64, f64)>) -> Option<(f64, f64)> {
    c.filter(|c| c.0.is_finite() && c.1.is_finite())
}

/// Mean and sample standard deviation.
pub fn mean_sd(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    // Identical values have exactly no spread (the two-pass formula leaves
    // rounding dust like 1e-32, which would weigh a combination by 1e32).
    if values.iter().all(|x| *x == values[0]) {
        return Some((values[0], 0.0));
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some((mean, sd))
}

/// Two-sided critical t value for `CONFIDENCE` with `df` degrees of
/// freedom; `None` when `df` is not a positive finite number.
pub fn t_quantile(df: f64) -> Option<f64> {
    if !(df.is_finite() && df > 0.0) {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(t.inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0)).filter(|t| t.is_finite())
}

/// Upper tail P(X ≥ x) of χ² with `df` degrees of freedom.
pub fn chi2_sf(x: f64, df: f64) -> Option<f64> {
    if !(x.is_finite() && df.is_finite() && df > 0.0) {
        return None;
    }
    Some(1.0 - ChiSquared::new(df).ok()?.cdf(x.max(0.0)))
}

/// Summarise values; `None` if there are none. Non-finite values are
/// ignored; spread and interval are `None` for one value or when they
/// overflow.
pub fn estimate(values: &[f64]) -> Option<Estimate> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    let (mean, sd) = mean_sd(&v)?;
    let median = median(&v)?;
    Some(Estimate::from_moments(n, median, mean, sd))
}

/// The difference of two groups' means (B − A) and whether it is significant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// Mean of B minus mean of A.
    pub diff: f64,
    /// 95 % Welch interval of the difference (NaN, serialised as null,
    /// when undefined).
    pub ci_lo: f64,
    /// Upper bound.
    pub ci_hi: f64,
    /// Welch–Satterthwaite degrees of freedom (NaN when undefined).
    pub df: f64,
    /// Two-sided p-value of Welch's t-test (`None` when a group has < 2 values
    /// or both have zero variance).
    pub p_value: Option<f64>,
    /// p < 0.05.
    pub significant: bool,
}

/// Name of the test [`compare`] applies, for reports.
pub const COMPARE_TEST: &str = "Welch's two-sample t-test (unequal variances), two-sided, α = 0.05";

/// Compare two samples with Welch's t-test. With fewer than two values
/// on a side, or spreads so large they overflow, the difference has no
/// interval and no test; with no spread on either side, an interval of
/// the difference itself and no p-value.
pub fn compare(a: &[f64], b: &[f64]) -> Option<Comparison> {
    let (ea, eb) = (estimate(a)?, estimate(b)?);
    let diff = eb.mean - ea.mean;
    let untested = Comparison {
        diff,
        ci_lo: f64::NAN,
        ci_hi: f64::NAN,
        df: f64::NAN,
        p_value: None,
        significant: false,
    };
    let (Some(sa), Some(sb)) = (ea.sd, eb.sd) else {
        return Some(untested);
    };
    let (va, vb) = (sa.powi(2) / ea.n as f64, sb.powi(2) / eb.n as f64);
    let se = (va + vb).sqrt();
    if !(se.is_finite() && diff.is_finite()) {
        return Some(untested);
    }
    if se == 0.0 {
        return Some(Comparison {
            ci_lo: diff,
            ci_hi: diff,
            significant: diff != 0.0,
            ..untested
        });
    }
    // Welch–Satterthwaite degrees of freedom.
    let df = (va + vb).powi(2) / (va.powi(2) / (ea.n - 1) as f64 + vb.powi(2) / (eb.n - 1) as f64);
    let (Some(tq), Ok(dist)) = (t_quantile(df), StudentsT::new(0.0, 1.0, df)) else {
        return Some(untested);
    };
    let p = 2.0 * (1.0 - dist.cdf((diff / se).abs()));
    let half = tq * se;
    Some(Comparison {
        diff,
        ci_lo: diff - half,
        ci_hi: diff + half,
        df,
        p_value: Some(p),
        significant: p < 1.0 - CONFIDENCE,
    })
}

/// How far each value lies from the median, in scaled median absolute
/// deviations (MAD × 1.4826, the standard deviation of normal data), and
/// whether that is an outlier (more than 3). With a MAD of 0 (most values
/// equal) a value more than 5 % from the median is one. Outliers are
/// flagged, never dropped.
pub fn outliers(values: &[f64]) -> Vec<(f64, bool)> {
    let Some(m) = median(values) else {
        return Vec::new();
    };
    let dev: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&dev).unwrap_or(0.0) * 1.4826;
    values
        .iter()
        .map(|x| {
            let d = (x - m).abs();
            if mad > 0.0 {
                (d / mad, d / mad > 3.0)
            } else {
                (
                    if d > 0.0 { f64::INFINITY } else { 0.0 },
                    d > 0.05 * m.abs(),
                )
            }
        })
        .collect()
}

/// Empirical CDF points (value, fraction ≤ value) of up to `max_points`
/// evenly spaced quantiles, for plotting.
pub fn ecdf(values: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() || max_points == 0 {
        return vec![];
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let step = (n as f64 / max_points as f64).max(1.0);
    let mut out = Vec::new();
    let mut i = 0.0;
    while (i as usize) < n {
        let k = i as usize;
        out.push((v[k], (k + 1) as f64 / n as f64));
        i += step;
    }
    if out.last().map(|p| p.1) != Some(1.0) {
        out.push((v[n - 1], 1.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn a_run_far_from_its_group_is_flagged_not_dropped() {
        let o = outliers(&[10.0, 10.5, 9.8, 10.2, 30.0]);
        assert_eq!(o.len(), 5);
        assert_eq!(o.iter().filter(|x| x.1).count(), 1);
        assert!(o[4].1 && o[4].0 > 3.0);
        // Equal values but one: the odd one is flagged when 5 % away.
        assert!(outliers(&[4.0, 4.0, 4.0, 5.0])[3].1);
        assert!(!outliers(&[100.0, 100.0, 100.0, 101.0])[3].1);
        assert!(outliers(&[]).is_empty());
    }

    #[test]
    fn median_known_answers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn t_interval_known_answer() {
        // 10, 12, 14: mean 12, s = 2, se = 2/√3 = 1.1547, t(0.975, 2) = 4.3027
        // half-width = 4.9683 → [7.0317, 16.9683].
        let e = estimate(&[10.0, 12.0, 14.0]).unwrap();
        assert_eq!((e.n, e.median, e.mean), (3, 12.0, 12.0));
        assert!(close(e.sd.unwrap(), 2.0, 1e-12));
        assert!(close(e.ci_lo.unwrap(), 7.0317, 1e-3), "{e:?}");
        assert!(close(e.ci_hi.unwrap(), 16.9683, 1e-3), "{e:?}");
    }

    #[test]
    fn a_single_value_has_no_spread_and_no_interval() {
        let e = estimate(&[5.0]).unwrap();
        assert_eq!((e.n, e.median, e.mean), (1, 5.0, 5.0));
        assert_eq!((e.sd, e.se, e.ci_lo, e.ci_hi), (None, None, None, None));
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.contains("\"sd\":null") && json.contains("\"ci_lo\":null"),
            "{json}"
        );
    }

    #[test]
    fn extreme_values_give_undefined_statistics_not_a_panic() {
        // Squares of 1e200 overflow: no spread, no test, no panic.
        let e = estimate(&[1e200, 3e200]).unwrap();
        assert_eq!(e.sd, None);
        let c = compare(&[1.0, 2.0], &[1e200, 3e200]).unwrap();
        assert_eq!(c.p_value, None);
        assert!(c.ci_lo.is_nan());
        let c = compare(&[f64::MAX, 1.0], &[-f64::MAX, 0.0]).unwrap();
        assert!(!c.significant);
        assert_eq!(t_quantile(0.0), None);
        assert_eq!(t_quantile(f64::NAN), None);
    }

    #[test]
    fn welch_known_answer() {
        // A = 1..5 (mean 3, var 2.5), B = 6..10 (mean 8, var 2.5): se = 1,
        // t = 5, df = 8, two-sided p = 0.001053.
        let c = compare(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert!(close(c.diff, 5.0, 1e-12));
        assert!(close(c.p_value.unwrap(), 0.001053, 1e-5), "{c:?}");
        assert!(c.significant);
        // t(0.975, 8) = 2.306 → [2.694, 7.306]
        assert!(
            close(c.ci_lo, 2.694, 1e-3) && close(c.ci_hi, 7.306, 1e-3),
            "{c:?}"
        );
        let same = compare(&[1.0, 2.0, 3.0], &[1.5, 2.0, 2.5]).unwrap();
        assert!(!same.significant, "{same:?}");
    }

    #[test]
    fn ecdf_ends_at_one_and_is_monotone() {
        let pts = ecdf(&[3.0, 1.0, 2.0, 2.0], 100);
        assert_eq!(pts.first(), Some(&(1.0, 0.25)));
        assert_eq!(pts.last().unwrap().1, 1.0);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    proptest::proptest! {
        #[test]
        fn estimate_is_consistent(v in proptest::collection::vec(-1e6f64..1e6, 1..60)) {
            let e = estimate(&v).unwrap();
            let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
            proptest::prop_assert!(e.median >= lo && e.median <= hi);
            proptest::prop_assert!(e.mean >= lo - 1e-6 && e.mean <= hi + 1e-6);
            if let Some((lo, hi)) = e.interval() {
                proptest::prop_assert!(lo <= e.mean + 1e-9 && e.mean <= hi + 1e-9);
            }
            proptest::prop_assert_eq!(e.sd.is_some(), v.len() > 1);
            proptest::prop_assert!(e.sd.unwrap_or(0.0) >= 0.0);
        }

        #[test]
        fn shifting_data_shifts_estimates(v in proptest::collection::vec(-1e3f64..1e3, 2..30), k in -1e3f64..1e3) {
            let a = estimate(&v).unwrap();
            let shifted: Vec<f64> = v.iter().map(|x| x + k).collect();
            let b = estimate(&shifted).unwrap();
            proptest::prop_assert!((b.mean - a.mean - k).abs() < 1e-6);
            proptest::prop_assert!((b.sd.unwrap() - a.sd.unwrap()).abs() < 1e-6);
            proptest::prop_assert!((b.median - a.median - k).abs() < 1e-6);
        }

        #[test]
        fn comparison_is_antisymmetric(a in proptest::collection::vec(0f64..100.0, 2..20), b in proptest::collection::vec(0f64..100.0, 2..20)) {
            let ab = compare(&a, &b).unwrap();
            let ba = compare(&b, &a).unwrap();
            proptest::prop_assert!((ab.diff + ba.diff).abs() < 1e-9);
            proptest::prop_assert_eq!(ab.significant, ba.significant);
        }
    }
}
