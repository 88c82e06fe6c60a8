//! Fitting the model's constants to a lab's own runs: medians and
//! least-squares lines for what a run shows directly (link goodput, setup,
//! the guest's own memory), a small grid for what only shows in total
//! times (pass cost, background dirtying), one for the remainder's
//! shares with the switchover line that predict QEMU's downtimes, and one
//! for what the socket takes under a cap below the link. What the runs
//! cannot tell apart keeps [`Constants::PRIOR`] and is named.

mod pauses;

use crate::{predict, Constants, Envelope, Inputs, Model};
use migbench_model::stats::median;
use migbench_model::{Outcome, RunRecord};
use pauses::{downtime_fit, socket_fit};

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

/// A fit, and what its runs could not identify.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// The constants and what they rest on.
    pub model: Model,
    /// Constants kept at [`Constants::PRIOR`] because the runs do not vary
    /// what tells them apart (one RAM size, one link and limit, no
    /// dirtying guest), in words.
    pub unidentified: Vec<String>,
}

/// [`fit_report`]'s model alone.
pub fn fit(records: &[RunRecord]) -> Option<Model> {
    fit_report(records).map(|f| f.model)
}

/// How many distinct values `key` takes over `runs`.
fn distinct(runs: &[&RunRecord], key: impl Fn(&RunRecord) -> f64) -> usize {
    let mut v: Vec<f64> = runs.iter().map(|r| key(r)).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.len()
}

/// The median `y` of each distinct `x` of `points`.
fn medians(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs.into_iter()
        .filter_map(|x| {
            let ys: Vec<f64> = points.iter().filter(|p| p.0 == x).map(|p| p.1).collect();
            Some((x, median(&ys)?))
        })
        .collect()
}

/// A cost line in RAM: fitted when the runs vary RAM (a slope that comes
/// out negative becomes a flat line), else the prior slope with the
/// intercept that fits.
fn ram_line(points: &[(f64, f64)], ram_varies: bool, prior_slope: f64) -> Option<(f64, f64)> {
    if points.is_empty() {
        return None;
    }
    if ram_varies {
        return match cost_fit(points)? {
            (_, b) if b < 0.0 => {
                let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
                Some((mean.max(0.0), 0.0))
            }
            ab => Some(ab),
        };
    }
    let a = points.iter().map(|p| p.1 - prior_slope * p.0).sum::<f64>() / points.len() as f64;
    Some((a.max(0.0), prior_slope))
}

/// Fit the constants from recorded runs, with the envelope they rest on
/// and what the runs could not identify: what the link delivered
/// (throughput over link rate), setup and the guest's own non-zero
/// memory (lines in RAM), the pass cost and background dirtying that
/// predict the busy runs' total times best (a grid), then the switchover
/// (a line in RAM) and the remainder's constants that predict QEMU's
/// downtimes best (runs capped below their link left out), then the
/// socket's take that predicts those capped runs' downtimes best. Nothing
/// starts from [`Constants::LAB`]: what the runs cannot identify keeps
/// [`Constants::PRIOR`] and is named. `None`
/// without a completed uncapped pre-copy run.
pub fn fit_report(records: &[RunRecord]) -> Option<Fitted> {
    let prior = Constants::PRIOR;
    let pre: Vec<&RunRecord> = records.iter().filter(|r| plain(r)).collect();
    let done: Vec<&RunRecord> = pre
        .iter()
        .copied()
        .filter(|r| r.outcome == Outcome::Completed)
        .collect();
    let goodput = median(
        &done
            .iter()
            .filter(|r| r.params.max_bandwidth == migbench_model::settings::BandwidthCap::Unlimited)
            .filter_map(|r| r.throughput_mbps.map(|t| t / r.link_rate_mbps))
            .collect::<Vec<_>>(),
    )?;
    let mut unidentified = Vec::new();
    let ram_varies = distinct(&done, gib) >= 2;
    if !ram_varies {
        unidentified.push(format!(
            "the per-GiB costs (every run has {:.0} MiB of RAM): setup {:.0} ms, the guest's own memory {:.1} MB, the top of its RAM {:.1} MB and switchover {:.0} ms per GiB kept",
            done.first().map_or(0.0, |r| gib(r) * 1024.0),
            prior.setup_ms_per_gib,
            prior.base_bytes_per_gib / 1e6,
            prior.tail_bytes_per_gib / 1e6,
            prior.switchover_ms_per_gib
        ));
    }
    // QEMU's setup varies several-fold between identical runs under TCG
    // (0.5-2.4 s for 1 GiB): the line goes through each RAM size's median.
    let (setup_ms, setup_ms_per_gib) = ram_line(
        &medians(
            &done
                .iter()
                .filter_map(|r| Some((gib(r), r.qemu_setup_time_ms?)))
                .collect::<Vec<_>>(),
        ),
        ram_varies,
        prior.setup_ms_per_gib,
    )
    .unwrap_or((prior.setup_ms, prior.setup_ms_per_gib));
    let idle: Vec<&&RunRecord> = done.iter().filter(|r| r.params.dirty_rate.0 == 0).collect();
    // The guest's own memory per GiB starts flat where the runs will fit it.
    let start_slope = if ram_varies {
        0.0
    } else {
        prior.base_bytes_per_gib
    };
    let base = Constants {
        goodput,
        setup_ms,
        setup_ms_per_gib,
        pass_ms: 0.0,
        switchover_ms: 0.0,
        switchover_ms_per_gib: 0.0,
        base_bytes: median(
            &idle
                .iter()
                .filter_map(|r| {
                    let ws = r.params.working_set.0.min(r.params.ram.0);
                    Some(r.transferred_bytes? as f64 - ws as f64 - start_slope * gib(r))
                })
                .collect::<Vec<_>>(),
        )
        .map(|b| b.max(0.0))
        .unwrap_or(prior.base_bytes),
        base_bytes_per_gib: start_slope,
        dirty_scale: 1.0,
        background_rate: 0.0,
        ..prior
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
    let busy = judged.iter().any(|(i, _)| i.dirty_rate > 0.0);
    let mut c = if busy {
        grid(base, &error)
    } else {
        unidentified.push(format!(
            "the pass cost and background dirtying (no run with a dirtying workload): {:.0} ms and {:.1} MB/s kept",
            prior.pass_ms,
            prior.background_rate / 1e6
        ));
        Constants {
            pass_ms: prior.pass_ms,
            background_rate: prior.background_rate,
            ..base
        }
    };
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
    if let Some((a, b)) = ram_line(&bytes, ram_varies, prior.base_bytes_per_gib) {
        (c.base_bytes, c.base_bytes_per_gib) = (a, b);
        if busy {
            // Refit the pass cost and background with the new base.
            c = grid(c, &error);
        }
    }
    let c = downtime_fit(&done, c, ram_varies, &mut unidentified);
    let c = socket_fit(&done, c, &mut unidentified);
    Some(Fitted {
        model: Model {
            constants: c,
            envelope,
        },
        unidentified,
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
