//! The few statistics the model, the scheduler and the analyzer share:
//! the median, the 95 % Student-t quantile and the relative half-width of
//! a mean's interval.

/// The median of the finite values (the mean of the middle two for an
/// even count), `None` without any.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Two-sided 95 % Student-t quantile for `df` degrees of freedom (a
/// table to 30, then 1.96 + 2.5/df, within 0.002 of the exact value).
pub fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        _ => 1.96 + 2.5 / df as f64,
    }
}

/// Half-width of the 95 % t interval of the mean over |mean| (`None`
/// under two values or a zero mean).
pub fn relative_half_width(v: &[f64]) -> Option<f64> {
    let n = v.len();
    if n < 2 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if mean == 0.0 {
        return None;
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some(t95(n - 1) * (var / n as f64).sqrt() / mean.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_quantile_and_half_width() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
        assert_eq!(median(&[]), None);
        assert!((t95(4) - 2.776).abs() < 1e-9);
        assert!((t95(60) - 2.0).abs() < 0.002);
        // 10, 11, 12: mean 11, s = 1, half-width 4.303 / √3 = 2.48 → 22.6 %.
        let w = relative_half_width(&[10.0, 11.0, 12.0]).unwrap();
        assert!((w - 0.2259).abs() < 1e-3, "{w}");
        assert_eq!(relative_half_width(&[5.0]), None);
    }
}
