//! Fitting the model's constants to a lab's own runs: medians and
//! least-squares lines for what a run shows directly (link goodput, setup,
//! the guest's own memory, switchover), a small grid for what only shows
//! in total times (pass cost, background dirtying), and the share of the
//! downtime limit a busy guest leaves for its switchover.

use super::{predict, Constants, Envelope, Inputs, Model};
use crate::stats::median;
use crate::{Outcome, RunRecord};

fn gib(r: &RunRecord) -> f64 {
    r.params.ram.0 as f64 / (1u64 << 30) as f64
}

/// Whether a run's settings are the plain pre-copy the constants are
/// fitted on (no compression, XBZRLE, throttle, post-copy, stepping or
/// forced end: those act on the model through fixed rules).
fn plain(r: &RunRecord) -> bool {
    let i = Inputs::of(&r.params);
    !r.params.postcopy.enabled()
        && !i.compression
        && i.xbzrle_cache == 0.0
        && i.auto_converge.is_none()
        && i.downtime_steps == 0
        && i.completion_timeout_ms == 0.0
        && i.disk_bytes == 0.0
}

/// Fit the constants from recorded runs, with the envelope they rest on:
/// what the link delivered (throughput over link rate), setup and the
/// guest's own non-zero memory (lines in RAM), the pass cost and
/// background dirtying that predict the busy runs' total times best (a
/// grid), the switchover (QEMU's downtime less the time to send what
/// remained) and the share of the limit a busy guest leaves. `None`
/// without a completed uncapped pre-copy run (then [`Constants::LAB`]
/// stands).
pub fn fit(records: &[RunRecord]) -> Option<Model> {
    let pre: Vec<&RunRecord> = records.iter().filter(|r| plain(r)).collect();
    let done: Vec<&RunRecord> = pre
        .iter()
        .copied()
        .filter(|r| r.outcome == Outcome::Completed)
        .collect();
    let goodput = median(
        &done
            .iter()
            .filter(|r| r.params.max_bandwidth == crate::settings::BandwidthCap::Unlimited)
            .filter_map(|r| r.throughput_mbps.map(|t| t / r.link_rate_mbps))
            .collect::<Vec<_>>(),
    )?;
    let d = Constants::LAB;
    let (setup_ms, setup_ms_per_gib) = cost_fit(
        &done
            .iter()
            .filter_map(|r| Some((gib(r), r.qemu_setup_time_ms?)))
            .collect::<Vec<_>>(),
    )
    .unwrap_or((d.setup_ms, 0.0));
    let idle: Vec<&&RunRecord> = done.iter().filter(|r| r.params.dirty_rate.0 == 0).collect();
    let base = Constants {
        goodput,
        setup_ms,
        setup_ms_per_gib,
        pass_ms: d.pass_ms,
        switchover_ms: d.switchover_ms,
        switchover_ms_per_gib: 0.0,
        base_bytes: median(
            &idle
                .iter()
                .filter_map(|r| {
                    let ws = r.params.working_set.0.min(r.params.ram.0);
                    Some(r.transferred_bytes? as f64 - ws as f64)
                })
                .collect::<Vec<_>>(),
        )
        .map(|b| b.max(0.0))
        .unwrap_or(d.base_bytes),
        base_bytes_per_gib: 0.0,
        dirty_scale: 1.0,
        background_rate: 0.0,
        ..d
    };
    // Every plain run judged: completed ones by their total time,
    // timed-out ones by whether the model converges too (a wrong verdict
    // costs as much as a 100 % error).
    let judged: Vec<(Inputs, Option<f64>)> = pre
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Completed => Some((Inputs::of(&r.params), Some(r.total_time_ms?))),
            Outcome::TimedOut => Some((Inputs::of(&r.params), None)),
            _ => None,
        })
        .collect();
    let envelope = Envelope::of(records);
    if !judged.iter().any(|(i, _)| i.dirty_rate > 0.0) {
        return Some(Model {
            constants: base,
            envelope,
        });
    }
    // Mean |log(predicted / measured)|: a run off by a factor counts the
    // same, short or long.
    let error = |c: &Constants| {
        let e: f64 = judged
            .iter()
            .map(|(i, t)| {
                let p = predict(i, c);
                match (t, p.converges) {
                    (Some(t), true) => (p.total_time_ms / t).ln().abs(),
                    (None, false) => 0.0,
                    _ => 1.0,
                }
            })
            .sum();
        e / judged.len() as f64
    };
    let mut c = grid(base, &error);
    // The guest's own memory as a line in its RAM: what each completed run
    // sent beyond the model's working set and dirtying.
    let bytes: Vec<(f64, f64)> = done
        .iter()
        .filter_map(|r| {
            let p = predict(&Inputs::of(&r.params), &c);
            let own = c.base_bytes + c.base_bytes_per_gib * gib(r);
            Some((gib(r), r.transferred_bytes? as f64 - (p.bytes - own)))
        })
        .collect();
    if let Some((a, b)) = line_fit(&bytes) {
        (c.base_bytes, c.base_bytes_per_gib) = (a, b);
        // Refit the pass cost and background with the new base.
        c = grid(c, &error);
    }
    // Runs whose predicted downtime does not depend on the share are
    // those that end with their pass's dirtying (after the bulk pass, or
    // idle): they give the switchover, a line in RAM over what QEMU's
    // downtime adds to sending the last pages. The others give the share.
    let with_share = |r: &RunRecord, s: f64| {
        predict(
            &Inputs::of(&r.params),
            &Constants {
                remainder_share: s,
                ..c
            },
        )
    };
    let (mut points, mut shares) = (Vec::new(), Vec::new());
    for r in &done {
        let (Some(measured), Some(lo), Some(hi)) = (
            r.downtime_qemu_ms,
            with_share(r, 0.0).downtime_ms,
            with_share(r, 1.0).downtime_ms,
        ) else {
            continue;
        };
        let sw = c.switchover_ms + c.switchover_ms_per_gib * gib(r);
        if (hi - lo).abs() < 1e-9 {
            points.push((gib(r), measured - (lo - sw)));
        } else {
            shares.push((r, measured));
        }
    }
    if let Some((a, b)) = cost_fit(&points) {
        (c.switchover_ms, c.switchover_ms_per_gib) = (a, b);
    }
    let limit_share: Vec<f64> = shares
        .iter()
        .map(|(r, measured)| {
            let sw = c.switchover_ms + c.switchover_ms_per_gib * gib(r);
            ((measured - sw) / r.params.downtime_limit.ms()).clamp(0.0, 1.0)
        })
        .collect();
    if let Some(s) = median(&limit_share) {
        c.remainder_share = s;
    }
    Some(Model {
        constants: c,
        envelope,
    })
}

/// The pass cost (0–1 s) and background dirtying (0–4 MB/s) that give
/// `error` its least value, the rest of `c` kept.
fn grid(c: Constants, error: &dyn Fn(&Constants) -> f64) -> Constants {
    let mut best = (error(&c), c);
    for pass in (0..=20).map(|k| k as f64 * 50.0) {
        for bg in (0..=8).map(|k| k as f64 * 0.5e6) {
            let t = Constants {
                pass_ms: pass,
                background_rate: bg,
                ..c
            };
            let e = error(&t);
            if e < best.0 {
                best = (e, t);
            }
        }
    }
    best.1
}

/// Least-squares line `y = a + b x` through `points`; a flat line at the
/// mean when every x is the same, `None` without points.
fn line_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.is_empty() {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx < 1e-12 {
        return Some((my, 0.0));
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

/// [`line_fit`] for a cost that cannot be negative at zero: a negative
/// intercept becomes a line through the origin.
fn cost_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    match line_fit(points)? {
        (a, b) if a >= 0.0 => Some((a, b)),
        _ => {
            let sxx: f64 = points.iter().map(|p| p.0 * p.0).sum();
            let sxy: f64 = points.iter().map(|p| p.0 * p.1).sum();
            Some((0.0, if sxx > 0.0 { sxy / sxx } else { 0.0 }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_through_points_and_a_flat_one_through_one_x() {
        let (a, b) = line_fit(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((a - 1.0).abs() < 1e-9 && (b - 2.0).abs() < 1e-9);
        assert_eq!(line_fit(&[(1.0, 2.0), (1.0, 4.0)]), Some((3.0, 0.0)));
        assert_eq!(line_fit(&[]), None);
        // A cost through the origin rather than below it.
        let (a, b) = cost_fit(&[(1.0, 1.0), (2.0, 3.0)]).unwrap();
        assert_eq!(a, 0.0);
        assert!((b - 1.4).abs() < 1e-9, "{b}");
    }
}
