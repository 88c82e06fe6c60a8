//! A pre-copy migration model (issue 13, first part): pure arithmetic
//! from guest RAM, the working set and its dirty rate, the link and the
//! migration's limits to the predicted total time, downtime, passes and
//! bytes, and whether it converges. QEMU's loop, pass by pass: the first
//! pass sends every page that is not zero, each later pass the pages
//! dirtied during the one before (a page dirtied twice is sent once, so
//! they saturate at the working set); after each pass QEMU completes when
//! what remains fits the downtime limit at the rate it measured. The
//! constants (what the link delivers, setup, per-pass and switchover
//! costs, the guest's own non-zero memory) are fitted from a lab's runs;
//! [`Constants::LAB`] are this machine's.

use serde::{Deserialize, Serialize};

/// The model's constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constants {
    /// Share of the link rate the migration stream achieves (TCP/IP and
    /// QEMU framing, the token bucket).
    pub goodput: f64,
    /// From `migrate` to the first page sent, ms, plus
    /// [`Constants::setup_ms_per_gib`] per GiB of guest RAM.
    pub setup_ms: f64,
    /// Setup per GiB of guest RAM (its dirty bitmap, under TCG its
    /// translation state), ms.
    #[serde(default)]
    pub setup_ms_per_gib: f64,
    /// Cost of each dirty-bitmap sync between passes, ms.
    pub pass_ms: f64,
    /// Switchover beyond sending the last pages (device state, stop and
    /// start), ms, plus [`Constants::switchover_ms_per_gib`] per GiB of RAM.
    pub switchover_ms: f64,
    /// Switchover per GiB of guest RAM (the last bitmap sync), ms.
    #[serde(default)]
    pub switchover_ms_per_gib: f64,
    /// Non-zero memory of the guest outside the workload's working set
    /// (kernel, initramfs, page cache), bytes.
    pub base_bytes: f64,
    /// The guest's own non-zero memory per GiB of RAM (its page tables
    /// and structures grow with it), bytes.
    #[serde(default)]
    pub base_bytes_per_gib: f64,
    /// Memory dirtied per byte the workload means to write (the guest's
    /// own writes beside the workload's, and the pacing's bursts).
    #[serde(default = "one")]
    pub dirty_scale: f64,
    /// What the guest dirties by itself, whatever the workload (network
    /// buffers of the probe traffic, timers, page cache), bytes/s; it
    /// keeps an idle guest from converging under a tight bandwidth cap.
    #[serde(default)]
    pub background_rate: f64,
}

/// The guest's own dirtying saturates here (the memory its kernel rewrites).
const BACKGROUND_SET: f64 = 64.0 * 1048576.0;

fn one() -> f64 {
    1.0
}

impl Constants {
    /// Fitted from this machine's runs (`fixtures/model/`: link-speed,
    /// max-downtime and bandwidth, TCG on 2 cores).
    pub const LAB: Constants = Constants {
        goodput: 0.962,
        setup_ms: 0.0,
        setup_ms_per_gib: 1230.0,
        pass_ms: 50.0,
        switchover_ms: 0.0,
        switchover_ms_per_gib: 86.0,
        base_bytes: 57.5e6,
        base_bytes_per_gib: 12.5e6,
        dirty_scale: 1.0,
        background_rate: 0.5e6,
    };
}

/// What the model needs of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// Guest RAM, bytes.
    pub ram: f64,
    /// Memory the workload rewrites, bytes (at most `ram`).
    pub working_set: f64,
    /// Rate the workload rewrites it, bytes/s.
    pub dirty_rate: f64,
    /// Link rate, bits/s.
    pub link_bps: f64,
    /// QEMU's `max-bandwidth`, bytes/s (`None`: unlimited).
    pub max_bandwidth: Option<f64>,
    /// `downtime-limit`, ms.
    pub downtime_limit_ms: f64,
    /// Give up after this long, ms.
    pub timeout_ms: f64,
}

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Whether pre-copy completes within the timeout.
    pub converges: bool,
    /// From `migrate` to completion (or to the timeout), ms.
    pub total_time_ms: f64,
    /// The guest paused at switchover, ms (`None` when it does not converge).
    pub downtime_ms: Option<f64>,
    /// Dirty-sync passes.
    pub passes: u32,
    /// Bytes sent.
    pub bytes: f64,
}

impl Inputs {
    /// A run's inputs.
    pub fn of(p: &crate::RunParams) -> Inputs {
        Inputs {
            ram: p.ram.0 as f64,
            working_set: p.working_set.0 as f64,
            dirty_rate: p.dirty_rate.0 as f64,
            link_bps: p.link_rate.0 as f64,
            max_bandwidth: match p.max_bandwidth {
                crate::settings::BandwidthCap::Unlimited => None,
                crate::settings::BandwidthCap::Limit(r) => Some(r.0 as f64),
            },
            downtime_limit_ms: p.downtime_limit.ms(),
            timeout_ms: p.timeout.ms(),
        }
    }
}

/// Fit the constants from recorded runs: what the link delivered
/// (throughput over link rate), setup, the guest's own non-zero memory
/// (an idle guest's bytes less its working set), each the median over
/// the completed pre-copy runs that show it; then the pass cost and dirty
/// scale that predict the busy runs' total times best (a grid), and the
/// switchover (QEMU's downtime less the predicted time to send what
/// remained, median). `None` without a completed uncapped pre-copy run
/// (then [`Constants::LAB`] stands).
pub fn fit(records: &[crate::RunRecord]) -> Option<Constants> {
    let done: Vec<&crate::RunRecord> = records
        .iter()
        .filter(|r| r.outcome == crate::Outcome::Completed && !r.params.postcopy.enabled())
        .collect();
    let idle: Vec<&&crate::RunRecord> =
        done.iter().filter(|r| r.params.dirty_rate.0 == 0).collect();
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    };
    let goodput = median(
        done.iter()
            .filter(|r| r.params.max_bandwidth == crate::settings::BandwidthCap::Unlimited)
            .filter_map(|r| r.throughput_mbps.map(|t| t / r.link_rate_mbps))
            .collect(),
    )?;
    let d = Constants::LAB;
    let gib = |r: &crate::RunRecord| r.params.ram.0 as f64 / (1u64 << 30) as f64;
    let (setup_ms, setup_ms_per_gib) = line_fit(
        &done
            .iter()
            .filter_map(|r| Some((gib(r), r.qemu_setup_time_ms?)))
            .collect::<Vec<_>>(),
    )
    .unwrap_or((d.setup_ms, 0.0));
    let base = Constants {
        goodput,
        setup_ms,
        setup_ms_per_gib,
        pass_ms: d.pass_ms,
        switchover_ms: d.switchover_ms,
        switchover_ms_per_gib: 0.0,
        base_bytes: median(
            idle.iter()
                .filter_map(|r| r.transferred_bytes)
                .zip(
                    idle.iter()
                        .map(|r| r.params.working_set.0.min(r.params.ram.0)),
                )
                .map(|(b, ws)| b as f64 - ws as f64)
                .collect(),
        )
        .map(|b| b.max(0.0))
        .unwrap_or(d.base_bytes),
        base_bytes_per_gib: 0.0,
        dirty_scale: 1.0,
        background_rate: 0.0,
    };
    // The pass cost and the dirty scale from the runs with a workload:
    // the pair that predicts their total times best (median error).
    // Every pre-copy run judged: completed ones by their total time,
    // timed-out ones by whether the model converges too (a wrong verdict
    // costs as much as a 100 % error).
    let judged: Vec<(Inputs, Option<f64>)> = records
        .iter()
        .filter(|r| !r.params.postcopy.enabled())
        .filter_map(|r| match r.outcome {
            crate::Outcome::Completed => Some((Inputs::of(&r.params), Some(r.total_time_ms?))),
            crate::Outcome::TimedOut => Some((Inputs::of(&r.params), None)),
            _ => None,
        })
        .collect();
    if !judged.iter().any(|(i, _)| i.dirty_rate > 0.0) {
        return Some(base);
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
    // The switchover: what QEMU's downtime adds to sending the last pages,
    // a line in the guest's RAM over every run that shows it.
    let points: Vec<(f64, f64)> = done
        .iter()
        .filter_map(|r| {
            let i = Inputs::of(&r.params);
            let pd = predict(&i, &c).downtime_ms?;
            let sw = c.switchover_ms + c.switchover_ms_per_gib * gib(r);
            Some((gib(r), r.downtime_qemu_ms? - (pd - sw)))
        })
        .collect();
    if let Some((a, b)) = line_fit(&points) {
        (c.switchover_ms, c.switchover_ms_per_gib) = (a.max(0.0), b);
    }
    Some(c)
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

/// The rate the migration sends at, bytes/s.
pub fn send_rate(i: &Inputs, c: &Constants) -> f64 {
    let link = i.link_bps / 8.0 * c.goodput;
    i.max_bandwidth.map_or(link, |b| b.min(link))
}

/// Predict one pre-copy migration.
pub fn predict(i: &Inputs, c: &Constants) -> Prediction {
    let rate = send_rate(i, c).max(1.0);
    let ws = i.working_set.min(i.ram);
    let limit_s = i.downtime_limit_ms / 1e3;
    let dirtied = |secs: f64| {
        (i.dirty_rate * c.dirty_scale * secs).min(ws)
            + (c.background_rate * secs).min(BACKGROUND_SET)
    };
    let gib = i.ram / (1u64 << 30) as f64;
    let switchover_ms = c.switchover_ms + c.switchover_ms_per_gib * gib;
    let mut t = (c.setup_ms + c.setup_ms_per_gib * gib).max(0.0) / 1e3;
    let mut bytes = 0.0;
    // Pass 1: every non-zero page.
    let mut remaining = (c.base_bytes + c.base_bytes_per_gib * gib + ws).min(i.ram);
    let mut passes = 0u32;
    loop {
        passes += 1;
        let send = remaining / rate;
        t += send + c.pass_ms / 1e3;
        bytes += remaining;
        remaining = dirtied(send + c.pass_ms / 1e3);
        // QEMU's test after the sync: what remains fits the limit.
        if remaining / rate <= limit_s {
            let downtime = remaining / rate * 1e3 + switchover_ms;
            return Prediction {
                converges: t * 1e3 + downtime <= i.timeout_ms,
                total_time_ms: (t * 1e3 + downtime).min(i.timeout_ms),
                downtime_ms: Some(downtime),
                passes: passes + 1,
                bytes: bytes + remaining,
            };
        }
        if t * 1e3 >= i.timeout_ms || passes >= 100_000 {
            return Prediction {
                converges: false,
                total_time_ms: i.timeout_ms,
                downtime_ms: None,
                passes,
                bytes,
            };
        }
    }
}

/// The smallest change that makes a migration converge, in words, or
/// `None` when it already does: a downtime limit that holds what the
/// workload dirties per pass, or the send rate that outpaces it.
pub fn to_converge(i: &Inputs, c: &Constants) -> Option<String> {
    if predict(i, c).converges {
        return None;
    }
    let rate = send_rate(i, c);
    let ws = i.working_set.min(i.ram);
    // Each pass ends with at most the working set (and the guest's own
    // writes) dirty: a limit that holds it converges (given time).
    let own = if c.background_rate > 0.0 {
        BACKGROUND_SET
    } else {
        0.0
    };
    let limit_ms = ((ws + own) / rate * 1e3).ceil();
    let mut relaxed = *i;
    relaxed.downtime_limit_ms = limit_ms;
    let by_limit = predict(&relaxed, c)
        .converges
        .then(|| format!("downtime limit ≥ {:.0} ms", limit_ms));
    // A rate above the dirty rate shrinks every pass.
    let need_bps = i.dirty_rate * 1.25 * 8.0 / c.goodput;
    let by_rate = format!("a send rate of at least {:.0} Mbit/s", need_bps / 1e6);
    Some(match by_limit {
        Some(l) => format!("{l}, or {by_rate}"),
        None => by_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1e6;

    /// Round constants, so the tests do not move with each refit.
    const T: Constants = Constants {
        goodput: 0.955,
        setup_ms: 60.0,
        setup_ms_per_gib: 0.0,
        pass_ms: 15.0,
        switchover_ms: 40.0,
        switchover_ms_per_gib: 0.0,
        base_bytes: 72e6,
        base_bytes_per_gib: 0.0,
        dirty_scale: 1.0,
        background_rate: 0.0,
    };

    fn guest(dirty_mbs: f64, link_mbit: f64) -> Inputs {
        Inputs {
            ram: 256.0 * 1048576.0,
            working_set: 64.0 * 1048576.0,
            dirty_rate: dirty_mbs * MB,
            link_bps: link_mbit * 1e6,
            max_bandwidth: None,
            downtime_limit_ms: 300.0,
            timeout_ms: 300_000.0,
        }
    }

    #[test]
    fn an_idle_guest_moves_its_non_zero_memory_at_the_link_rate() {
        let p = predict(&guest(0.0, 100.0), &T);
        assert!(p.converges);
        // (72 MB + 64 MiB) at 95.5 % of 12.5 MB/s: about 11.6 s.
        assert!((11_000.0..12_500.0).contains(&p.total_time_ms), "{p:?}");
        assert!(p.passes >= 2, "{p:?}");
        let fast = predict(&guest(0.0, 1000.0), &T);
        assert!(fast.total_time_ms < p.total_time_ms / 8.0, "{fast:?}");
    }

    #[test]
    fn dirtying_adds_passes_and_time_until_it_outpaces_the_link() {
        let c = T;
        let idle = predict(&guest(0.0, 100.0), &c);
        let busy = predict(&guest(5.0, 100.0), &c);
        assert!(busy.converges && busy.passes > idle.passes, "{busy:?}");
        assert!(busy.total_time_ms > idle.total_time_ms);
        assert!(busy.downtime_ms.unwrap() <= 300.0 + c.switchover_ms);
        let stuck = predict(&guest(20.0, 100.0), &c);
        assert!(!stuck.converges, "{stuck:?}");
        assert_eq!(stuck.total_time_ms, 300_000.0);
        let advice = to_converge(&guest(20.0, 100.0), &c).unwrap();
        assert!(
            advice.contains("downtime limit") && advice.contains("Mbit/s"),
            "{advice}"
        );
        assert!(to_converge(&guest(5.0, 100.0), &c).is_none());
    }

    #[test]
    fn a_bandwidth_cap_slows_and_a_looser_limit_shortens() {
        let c = T;
        let mut capped = guest(2.0, 1000.0);
        capped.max_bandwidth = Some(30.0 * MB);
        let free = predict(&guest(2.0, 1000.0), &c);
        let slow = predict(&capped, &c);
        assert!(
            slow.total_time_ms > 3.0 * free.total_time_ms,
            "{free:?} {slow:?}"
        );
        let mut loose = guest(8.0, 100.0);
        loose.downtime_limit_ms = 2000.0;
        let tight = predict(&guest(8.0, 100.0), &c);
        let l = predict(&loose, &c);
        assert!(
            l.passes <= tight.passes && l.downtime_ms >= tight.downtime_ms,
            "{tight:?} {l:?}"
        );
    }
}
