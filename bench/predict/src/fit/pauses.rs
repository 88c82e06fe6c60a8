//! The pause's constants: the remainder's shares, the top of RAM, the
//! span between QEMU's checks and the switchover line that predict
//! QEMU's downtimes of uncapped runs, and what the socket takes under a
//! bandwidth cap below the link, each on a grid.

use super::{distinct, gib, ram_line};
use crate::{predict, Constants, Inputs};
use migbench_model::RunRecord;

/// `c` with the switchover (a line in RAM) and the remainder's constants
/// that give QEMU's downtimes of `done` their least mean |error|: the
/// share of what the guest dirtied since the last sync, the top of the
/// guest's RAM and the span between QEMU's checks, on a grid; for each,
/// the switchover is the line through what the remainder leaves of each
/// downtime. What the runs cannot tell apart keeps its prior: the top
/// and the span need more than one limit's worth (limit or link varied),
/// the dirtied share more than one dirty rate. The limit's share acts
/// on throttled guests only, which a plain run is not: it keeps its prior.
/// Runs capped below their link are left out: their pauses are the
/// socket's ([`socket_fit`]), and judging them without it bent this fit.
pub(super) fn downtime_fit(
    done: &[&RunRecord],
    c: Constants,
    ram_varies: bool,
    unidentified: &mut Vec<String>,
) -> Constants {
    let prior = Constants::PRIOR;
    // Runs capped below the link tell the socket's take ([`socket_fit`]).
    let measured: Vec<(&RunRecord, f64)> = done
        .iter()
        .filter(|r| !capped_below_link(r, &c))
        .filter_map(|r| Some((*r, r.downtime_qemu_ms?)))
        .collect();
    let used: Vec<&RunRecord> = measured.iter().map(|(r, _)| *r).collect();
    let limit_varies = distinct(&used, |r| r.params.downtime_limit.ms()) >= 2
        || distinct(&used, |r| r.link_rate_mbps) >= 2;
    let dirty_varies = distinct(&used, |r| r.params.dirty_rate.0 as f64) >= 2;
    if !limit_varies {
        unidentified.push(format!(
            "the top of the guest's RAM and the span between QEMU's checks (one downtime limit over one link): {:.1} MB and {:.0} ms + {:.1} MB kept, so the remainder is {:.0} % of the limit's worth",
            prior.tail_bytes / 1e6,
            prior.check_ms,
            prior.check_bytes / 1e6,
            prior.remainder_share * 100.0
        ));
    }
    if !dirty_varies {
        unidentified.push(format!(
            "the remainder's share of what the guest dirties between syncs (one dirty rate): {:.2} kept",
            prior.sync_share
        ));
    }
    // 0, unit, 2 × unit, … n × unit: the grids below.
    let steps = |n: usize, unit: f64| (0..=n).map(move |k| unit * k as f64);
    // (top of RAM, its slope per GiB of RAM, span between checks in ms
    // and in bytes). The slope needs more than one RAM size.
    let layouts: Vec<(f64, f64, f64, f64)> = if limit_varies {
        let slopes: Vec<f64> = if ram_varies {
            steps(8, 2e6).collect()
        } else {
            vec![prior.tail_bytes_per_gib]
        };
        let mut v = Vec::new();
        for ms in steps(10, 25.0) {
            for bytes in steps(6, 1e6) {
                for top in steps(8, 2e6) {
                    v.extend(slopes.iter().map(|&slope| (top, slope, ms, bytes)));
                }
            }
        }
        v
    } else {
        vec![(
            prior.tail_bytes,
            prior.tail_bytes_per_gib,
            prior.check_ms,
            prior.check_bytes,
        )]
    };
    let sync_shares: Vec<f64> = if dirty_varies {
        steps(4, 0.25).collect()
    } else {
        vec![prior.sync_share]
    };
    let mut candidates = Vec::new();
    for &sync_share in &sync_shares {
        candidates.extend(layouts.iter().map(
            |&(tail_bytes, tail_bytes_per_gib, check_ms, check_bytes)| Constants {
                sync_share,
                tail_bytes,
                tail_bytes_per_gib,
                check_ms,
                check_bytes,
                switchover_ms: 0.0,
                switchover_ms_per_gib: 0.0,
                ..c
            },
        ));
    }
    // The candidate with the least mean |error| and its switchover line:
    // fitted through what each remainder leaves, or the one given.
    let best_of = |fixed: Option<(f64, f64)>| {
        let mut best: Option<(f64, Constants)> = None;
        for without in &candidates {
            let points: Vec<(f64, f64)> = measured
                .iter()
                .filter_map(|(r, m)| {
                    let left = predict(&Inputs::of(&r.params), without).downtime_ms?;
                    Some((gib(r), m - left))
                })
                .collect();
            let line = fixed.or_else(|| ram_line(&points, ram_varies, prior.switchover_ms_per_gib));
            let Some((a, b)) = line.filter(|_| !points.is_empty()) else {
                continue;
            };
            let e = points
                .iter()
                .map(|(x, y)| (y - a - b * x).abs())
                .sum::<f64>()
                / points.len() as f64;
            if best.is_none_or(|(be, _)| e < be) {
                let with = Constants {
                    switchover_ms: a,
                    switchover_ms_per_gib: b,
                    ..*without
                };
                best = Some((e, with));
            }
        }
        best.map(|(_, with)| with)
    };
    let Some(with) = best_of(None) else {
        unidentified.push(format!(
            "the remainder and the switchover (no uncapped run with QEMU's downtime): {:.0} ms kept",
            prior.switchover_ms
        ));
        return Constants {
            switchover_ms: prior.switchover_ms,
            switchover_ms_per_gib: prior.switchover_ms_per_gib,
            sync_share: prior.sync_share,
            tail_bytes: prior.tail_bytes,
            tail_bytes_per_gib: prior.tail_bytes_per_gib,
            check_ms: prior.check_ms,
            check_bytes: prior.check_bytes,
            ..c
        };
    };
    // A switchover of nothing is no estimate: the remainder took all of
    // every downtime (or more), so these runs cannot tell the switchover
    // (a post-copy switch, which is the switchover alone, would pause
    // for 0 ms). The prior's is kept, and the remainder chosen with it.
    if with.switchover_ms <= 0.0 && with.switchover_ms_per_gib <= 0.0 {
        unidentified.push(format!(
            "the switchover (the remainder takes all of these runs' downtimes): {:.0} ms kept",
            prior.switchover_ms
        ));
        return best_of(Some((prior.switchover_ms, prior.switchover_ms_per_gib))).unwrap_or(with);
    }
    with
}

/// Whether a run's bandwidth cap is below what its link delivers.
fn capped_below_link(r: &RunRecord, c: &Constants) -> bool {
    let i = Inputs::of(&r.params);
    i.max_bandwidth
        .is_some_and(|cap| cap < i.link_bps / 8.0 * c.goodput)
}

/// `c` with the socket's take under a bandwidth cap below the link
/// (0–8 MB in steps of 0.25 MB) that gives the downtimes of `done`'s runs
/// so capped their least mean |error|; the prior's (none) without such a
/// run, named.
pub(super) fn socket_fit(
    done: &[&RunRecord],
    c: Constants,
    unidentified: &mut Vec<String>,
) -> Constants {
    // Those the model completes too (the socket does not change that).
    let capped: Vec<(Inputs, f64)> = done
        .iter()
        .filter(|r| capped_below_link(r, &c))
        .filter_map(|r| Some((Inputs::of(&r.params), r.downtime_qemu_ms?)))
        .filter(|(i, _)| predict(i, &c).converges)
        .collect();
    if capped.is_empty() {
        unidentified.push(format!(
            "what the socket takes under a bandwidth cap below the link (no such run completed, measured and predicted): {:.1} MB kept",
            Constants::PRIOR.socket_bytes / 1e6
        ));
        return Constants {
            socket_bytes: Constants::PRIOR.socket_bytes,
            ..c
        };
    }
    let error = |c: &Constants| -> f64 {
        let down = |i: &Inputs| predict(i, c).downtime_ms.unwrap_or(0.0);
        capped.iter().map(|(i, m)| (down(i) - m).abs()).sum()
    };
    (0..=32)
        .map(|k| Constants {
            socket_bytes: k as f64 * 0.25e6,
            ..c
        })
        .min_by(|a, b| error(a).total_cmp(&error(b)))
        .unwrap_or(c)
}
