//! Random-effects pooling of per-combination effects (log-ratios): the
//! DerSimonian–Laird between-combination variance τ², Cochran's Q and I²,
//! the Hartung–Knapp–Sidik–Jonkman interval for the pooled effect (with
//! the ad-hoc correction that keeps it at least as wide as the plain
//! random-effects interval) and the prediction interval for a new
//! combination (Higgins, Thompson & Spiegelhalter 2009; IntHout et al.
//! 2016).
//!
//! Why random effects: the combinations of the other dimensions are not
//! repeated measurements of one effect — 1 Gbit helps a busy guest more
//! than an idle one — so a fixed-effect (precision-weighted) pool claims a
//! precision the data do not have (10.9x [10.7, 11.0] from two
//! combinations at 9.5x and 14.9x). With few combinations the HKSJ
//! interval uses Student's t on k − 1 degrees of freedom and is honestly
//! wide. When a combination has no within-spread (one run a side, or
//! identical values) nothing can weigh it: the effects are pooled with
//! equal weights and a t interval over the combinations (again a
//! random-effects estimate, with the spread between combinations as its
//! only error).
//!
//! The figures are cross-checked against statsmodels' `combine_effects`
//! and scipy (analysis/tests/fixtures/meta/).

use serde::Serialize;

use super::{finite, finite_pair, t_quantile};

/// One combination's effect: a log-ratio and its sampling variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Effect {
    /// The effect (ln of B / A).
    pub y: f64,
    /// Its variance; `None` when it cannot be estimated.
    pub v: Option<f64>,
}

/// How the effects were pooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One combination: its own figures.
    Single,
    /// Inverse-variance random effects (DerSimonian–Laird, HKSJ interval).
    Weighted,
    /// Equal weights (some combination has no variance to weigh it by).
    Unweighted,
}

/// Pooled effect, on the effects' (log) scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pooled {
    /// How.
    pub method: Method,
    /// Combinations pooled.
    pub k: usize,
    /// Pooled effect.
    pub mu: f64,
    /// Its standard error behind the interval (HKSJ, corrected, when
    /// weighted); `None` when undefined.
    pub se: Option<f64>,
    /// 95 % interval of the pooled effect; `None` when undefined.
    pub ci: Option<(f64, f64)>,
    /// 95 % prediction interval for a new combination (needs k ≥ 3).
    pub pi: Option<(f64, f64)>,
    /// Between-combination variance (DerSimonian–Laird).
    pub tau2: Option<f64>,
    /// Share of the spread between combinations not explained by chance (0–1).
    pub i2: Option<f64>,
    /// Cochran's Q on k − 1 degrees of freedom.
    pub q: Option<f64>,
    /// p-value of Q (χ² on k − 1 df): small when the combinations differ.
    pub q_p: Option<f64>,
    /// Random-effects standard error without the HKSJ adjustment.
    pub se_dl: Option<f64>,
    /// HKSJ standard error before the correction (may be below `se_dl`).
    pub se_hksj_raw: Option<f64>,
}

impl Pooled {
    /// Whether the combinations differ beyond chance so much that one
    /// pooled number would mislead: I² ≥ 50 % with Q's p < 0.10 (weighted);
    /// unweighted, whether the interval over the combinations spans more
    /// than a factor of 2 (e^0.69; no interval counts as wider) while they
    /// disagree in direction or by more than 1.5x. Without the first
    /// condition two runs at 0.99x and 1.01x "depended" on the other
    /// dimension.
    pub fn heterogeneous(&self, effects: &[Effect]) -> bool {
        match self.method {
            Method::Single => false,
            Method::Weighted => {
                self.i2.is_some_and(|i| i >= 0.5) && self.q_p.is_some_and(|p| p < 0.10)
            }
            Method::Unweighted => {
                let (lo, hi) = effects
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), e| {
                        (lo.min(e.y), hi.max(e.y))
                    });
                let wide = self.ci.is_none_or(|(a, b)| b - a > 2f64.ln());
                wide && (hi - lo > 1.5f64.ln() || (lo < 0.0 && hi > 0.0))
            }
        }
    }
}

fn finite_pos(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v > 0.0)
}

/// Pool `effects`; `None` when there are none or an effect is not finite.
pub fn pool(effects: &[Effect]) -> Option<Pooled> {
    let k = effects.len();
    if k == 0 || effects.iter().any(|e| !e.y.is_finite()) {
        return None;
    }
    let none = Pooled {
        method: Method::Single,
        k,
        mu: effects[0].y,
        se: None,
        ci: None,
        pi: None,
        tau2: None,
        i2: None,
        q: None,
        q_p: None,
        se_dl: None,
        se_hksj_raw: None,
    };
    if k == 1 {
        let e = effects[0];
        return Some(match finite_pos(e.v) {
            Some(v) => Pooled {
                se: Some(v.sqrt()),
                se_dl: Some(v.sqrt()),
                ..none
            },
            None => none,
        });
    }
    let variances: Option<Vec<f64>> = effects.iter().map(|e| finite_pos(e.v)).collect();
    // Weights so extreme that the sums overflow fall back to equal weights.
    variances
        .and_then(|v| weighted(effects, &v))
        .or_else(|| unweighted(effects, none))
}

/// Equal weights, t over the combinations. When every combination has
/// the same effect the spread between them is 0 and, with no
/// within-combination spread either, nothing sizes an interval: the
/// interval and the prediction are `None`, not a zero-width [y, y].
fn unweighted(effects: &[Effect], none: Pooled) -> Option<Pooled> {
    let k = effects.len();
    let kf = k as f64;
    let ys: Vec<f64> = effects.iter().map(|e| e.y).collect();
    let (mu, sd) = super::mean_sd(&ys)?;
    if sd == 0.0 {
        return Some(Pooled {
            method: Method::Unweighted,
            mu,
            ..none
        })
        .filter(|p| p.mu.is_finite());
    }
    let se = sd / kf.sqrt();
    let ci = t_quantile(kf - 1.0).map(|t| (mu - t * se, mu + t * se));
    let pi = (k >= 3).then(|| t_quantile(kf - 2.0)).flatten().map(|t| {
        let h = t * sd * (1.0 + 1.0 / kf).sqrt();
        (mu - h, mu + h)
    });
    Some(Pooled {
        method: Method::Unweighted,
        mu,
        se: finite(se),
        ci: finite_pair(ci),
        pi: finite_pair(pi),
        ..none
    })
    .filter(|p| p.mu.is_finite())
}

/// Inverse-variance random effects; `None` if a sum overflows.
fn weighted(effects: &[Effect], v: &[f64]) -> Option<Pooled> {
    let k = effects.len();
    let kf = k as f64;
    let w: Vec<f64> = v.iter().map(|v| 1.0 / v).collect();
    let sw: f64 = w.iter().sum();
    let sw2: f64 = w.iter().map(|w| w * w).sum();
    let y_fe = effects.iter().zip(&w).map(|(e, w)| w * e.y).sum::<f64>() / sw;
    let q: f64 = effects
        .iter()
        .zip(&w)
        .map(|(e, w)| w * (e.y - y_fe).powi(2))
        .sum();
    let df = kf - 1.0;
    let c = sw - sw2 / sw;
    let tau2 = if c > 0.0 {
        ((q - df) / c).max(0.0)
    } else {
        0.0
    };
    let i2 = if q > 0.0 {
        ((q - df) / q).max(0.0)
    } else {
        0.0
    };
    let ws: Vec<f64> = v.iter().map(|v| 1.0 / (v + tau2)).collect();
    let sws: f64 = ws.iter().sum();
    let mu = effects.iter().zip(&ws).map(|(e, w)| w * e.y).sum::<f64>() / sws;
    let se_dl = (1.0 / sws).sqrt();
    let q_star = effects
        .iter()
        .zip(&ws)
        .map(|(e, w)| w * (e.y - mu).powi(2))
        .sum::<f64>()
        / df;
    let se_hksj_raw = (q_star / sws).sqrt();
    let se = (q_star.max(1.0) / sws).sqrt();
    let ci = t_quantile(df).map(|t| (mu - t * se, mu + t * se));
    let pi = (k >= 3).then(|| t_quantile(kf - 2.0)).flatten().map(|t| {
        let h = t * (tau2 + se * se).sqrt();
        (mu - h, mu + h)
    });
    if !(mu.is_finite() && q.is_finite() && se.is_finite()) {
        return None;
    }
    Some(Pooled {
        method: Method::Weighted,
        k,
        mu,
        se: finite(se),
        ci: finite_pair(ci),
        pi: finite_pair(pi),
        tau2: finite(tau2),
        i2: finite(i2),
        q: finite(q),
        q_p: super::chi2_sf(q, df),
        se_dl: finite(se_dl),
        se_hksj_raw: finite(se_hksj_raw),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(y: f64, v: f64) -> Effect {
        Effect { y, v: Some(v) }
    }

    #[test]
    fn homogeneous_effects_have_no_between_variance() {
        // Equal effects: Q = 0, τ² = 0, I² = 0; the interval is the
        // corrected HKSJ one (q* = 0 → max(1, q*) = 1: the DL se).
        let p = pool(&[e(1.0, 0.01), e(1.0, 0.01), e(1.0, 0.01)]).unwrap();
        assert_eq!(p.method, Method::Weighted);
        assert!((p.mu - 1.0).abs() < 1e-12);
        assert_eq!((p.tau2, p.i2, p.q), (Some(0.0), Some(0.0), Some(0.0)));
        let se = (0.01f64 / 3.0).sqrt();
        assert!((p.se.unwrap() - se).abs() < 1e-12);
        // t(0.975, 2) = 4.302653
        let (lo, hi) = p.ci.unwrap();
        assert!((hi - lo - 2.0 * 4.302653 * se).abs() < 1e-5, "{p:?}");
        assert!(!p.heterogeneous(&[]));
    }

    #[test]
    fn two_distant_effects_give_an_interval_covering_both() {
        // The golden case in miniature: two precise but different effects.
        let effects = [e(9.46f64.ln(), 0.0004), e(14.9f64.ln(), 0.0004)];
        let p = pool(&effects).unwrap();
        let (lo, hi) = p.ci.unwrap();
        assert!(lo < 9.46f64.ln() && hi > 14.9f64.ln(), "{p:?}");
        assert!(p.i2.unwrap() > 0.99 && p.tau2.unwrap() > 0.0);
        assert!(p.heterogeneous(&effects));
        assert!(p.pi.is_none(), "a prediction interval needs k >= 3");
    }

    #[test]
    fn unweighted_when_a_variance_is_missing() {
        let effects = [
            Effect { y: 0.0, v: None },
            e(1.0, 0.1),
            Effect {
                y: 2.0,
                v: Some(0.0),
            },
        ];
        let p = pool(&effects).unwrap();
        assert_eq!(p.method, Method::Unweighted);
        assert!((p.mu - 1.0).abs() < 1e-12);
        assert!(p.tau2.is_none() && p.i2.is_none());
        let (lo, hi) = p.ci.unwrap();
        // sd 1, se 1/√3, t(0.975, 2) = 4.302653
        assert!((hi - 1.0 - 4.302653 / 3f64.sqrt()).abs() < 1e-5 && lo < 0.0);
        assert!(p.pi.is_some());
    }

    #[test]
    fn one_effect_is_itself_and_none_is_nothing() {
        let p = pool(&[e(0.5, 0.04)]).unwrap();
        assert_eq!((p.method, p.mu, p.se), (Method::Single, 0.5, Some(0.2)));
        assert!(pool(&[]).is_none());
        assert!(pool(&[e(f64::NAN, 0.1), e(1.0, 0.1)]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn pooling_never_panics_and_covers_the_pooled_value(
            ys in proptest::collection::vec(-1e3f64..1e3, 1..12),
            vs in proptest::collection::vec(proptest::option::of(0.0f64..1e6), 12),
        ) {
            let effects: Vec<Effect> = ys.iter().zip(&vs).map(|(y, v)| Effect { y: *y, v: *v }).collect();
            let p = pool(&effects).unwrap();
            if let Some((lo, hi)) = p.ci {
                proptest::prop_assert!(lo <= p.mu + 1e-9 && p.mu <= hi + 1e-9);
            }
            if let (Some(ci), Some(pi)) = (p.ci, p.pi) {
                proptest::prop_assert!(pi.0 <= ci.0 + 1e-9 && ci.1 <= pi.1 + 1e-9);
            }
            if let Some(i2) = p.i2 { proptest::prop_assert!((0.0..=1.0).contains(&i2)); }
        }
    }
}
