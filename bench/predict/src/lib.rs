//! The migration predictor (issue 13): pure arithmetic from guest RAM, the
//! working set and its dirty rate, the link and the migration's settings
//! to the predicted total time, downtime, passes and bytes, and how the
//! migration ends. QEMU's pre-copy loop, pass by pass: the first pass
//! sends every page that is not zero, each later pass the pages dirtied
//! during the one before (a page dirtied twice is sent once, so they
//! saturate at the working set); QEMU completes when what remains fits
//! the downtime limit at the rate it measures, and sends the rest in the
//! pause at the link's rate whatever the cap. Settings act on that loop:
//! a bandwidth cap and compression on the rate, XBZRLE on re-sent pages,
//! auto-converge on the dirty rate, Nova's stepping on the limit over
//! time, post-copy and the completion timeout end it early. The
//! constants are fitted from a lab's runs ([`fit`]); [`Constants::LAB`]
//! are this machine's. [`Envelope`] says what the constants rest on, so a
//! prediction outside it says so.

pub mod accuracy;
pub mod advise;
mod constants;
mod envelope;
mod fit;
mod inputs;
pub mod plan;

pub use constants::Constants;
pub use envelope::{Envelope, Model, Seen, MODEL_FILE};
pub use fit::{fit, fit_report, Fitted};
pub use inputs::{Inputs, Switch};

use serde::{Deserialize, Serialize};

use migbench_model::record::OutcomeDetail;
use migbench_model::Outcome;

/// The guest's own dirtying saturates here (the memory its kernel rewrites).
const BACKGROUND_SET: f64 = 64.0 * 1048576.0;
/// Bytes per page beyond the compressed data (headers, a page that does
/// not compress at all), as a share of the page.
const COMPRESSED_OVERHEAD: f64 = 0.03;
/// QEMU raises auto-converge's throttle when a period dirtied more than
/// this share of what it sent (`throttle-trigger-threshold`, 50 %).
const THROTTLE_TRIGGER: f64 = 0.5;

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Whether the migration completes (pre-copy, stepped, post-copy or
    /// forced) within the timeout.
    pub converges: bool,
    /// How the run ends: completed, timed out or aborted.
    pub outcome: Outcome,
    /// What finished it.
    pub finished_by: OutcomeDetail,
    /// From `migrate` to completion (or to the timeout or abort), ms.
    pub total_time_ms: f64,
    /// The guest paused at switchover, ms (`None` when it does not complete).
    pub downtime_ms: Option<f64>,
    /// Dirty-bitmap syncs (QEMU's `dirty-sync-count`).
    pub passes: u32,
    /// Memory sent, bytes (before compression).
    pub bytes: f64,
    /// Time in post-copy, ms.
    pub postcopy_ms: Option<f64>,
    /// Highest auto-converge throttle, %.
    pub max_throttle_pct: f64,
    /// The downtime limit in force at the end, ms.
    pub downtime_limit_final_ms: f64,
}

/// The rate the migration stream leaves at, bytes/s on the wire.
pub fn send_rate(i: &Inputs, c: &Constants) -> f64 {
    let link = i.link_bps / 8.0 * c.goodput;
    i.max_bandwidth.map_or(link, |b| b.min(link))
}

/// Memory moved per second (before compression), bytes/s: the wire rate,
/// or with multifd compression what the channels compress that fits it.
fn data_rate(i: &Inputs, c: &Constants) -> f64 {
    let wire = send_rate(i, c).max(1.0);
    if !i.compression {
        return wire;
    }
    let per_byte = ((1.0 - i.compressibility).max(0.0) + COMPRESSED_OVERHEAD).min(1.0);
    (wire / per_byte).min(c.compress_rate * i.multifd_channels.max(1) as f64)
}

/// What ended a simulated migration, and when.
struct End {
    outcome: Outcome,
    by: OutcomeDetail,
    at_s: f64,
    downtime_ms: Option<f64>,
    postcopy_ms: Option<f64>,
    extra_bytes: f64,
}

/// Predict one migration.
pub fn predict(i: &Inputs, c: &Constants) -> Prediction {
    let rate = data_rate(i, c);
    // XBZRLE sends a cached page again as its changes only.
    let resend_cost = if i.xbzrle_cache > 0.0 && i.working_set > 0.0 {
        let hit = (i.xbzrle_cache / i.working_set).min(1.0);
        let delta = ((1.0 - i.compressibility) + 0.02).min(1.0);
        hit * delta + (1.0 - hit)
    } else {
        1.0
    };
    let ws = i.working_set.min(i.ram);
    let gib = i.ram / (1u64 << 30) as f64;
    let switchover_ms = c.switchover_ms + c.switchover_ms_per_gib * gib;
    let wire = send_rate(i, c).max(1.0);
    let mut throttle: f64 = 0.0;
    let mut max_throttle: f64 = 0.0;
    let mut high = 0;
    let dirtied = |secs: f64, throttle: f64| {
        let rate = (i.dirty_rate * c.dirty_scale).min((1.0 - throttle) * c.dirty_capacity);
        (rate * secs).min(ws) + (c.background_rate * secs).min(BACKGROUND_SET)
    };
    // Block migration copies the disk first, at the wire rate.
    let mut t =
        ((c.setup_ms + c.setup_ms_per_gib * gib).max(0.0) + i.disk_bytes / wire * 1e3) / 1e3;
    let mut bytes = i.disk_bytes;
    let mut remaining = (c.base_bytes + c.base_bytes_per_gib * gib + ws).min(i.ram);
    let mut passes = 0u32;
    let mut stepped = false;
    let timeout_s = i.timeout_ms / 1e3;
    let postcopy_on = i.postcopy != Switch::Off;
    let end = 'run: loop {
        passes += 1;
        // Re-sent pages are cheaper with XBZRLE (not the bulk pass).
        let pass_rate = if passes > 1 { rate / resend_cost } else { rate };
        let start = t;
        let dur = remaining / pass_rate + c.pass_ms / 1e3;
        // Events inside this pass, in time order.
        let mut events: Vec<(f64, u8)> = Vec::with_capacity(4);
        let mut s = start * 1e3;
        while let Some(n) = i.next_step_after(s).filter(|n| *n < (start + dur) * 1e3) {
            events.push((n / 1e3, 0));
            s = n;
        }
        if let Switch::AfterMs(ms) = i.postcopy {
            events.push(((ms / 1e3).max(start), 1));
        }
        if i.completion_timeout_ms > 0.0 {
            events.push(((i.completion_timeout_ms / 1e3).max(start), 2));
        }
        events.push((timeout_s.max(start), 3));
        events.retain(|(e, _)| *e >= start && *e < start + dur);
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (at, kind) in events {
            let elapsed = at - start;
            let dirty_now = ((remaining - elapsed * pass_rate).max(0.0)
                + dirtied(elapsed, throttle))
            .min(i.ram);
            let sent = (elapsed * pass_rate).min(remaining);
            match kind {
                // Nova raised the limit: QEMU completes at its next check if
                // what is dirty now fits the new limit.
                0 => {
                    stepped = true;
                    if dirty_now / rate * 1e3 <= i.limit_at(at * 1e3) {
                        bytes += sent;
                        break 'run End {
                            outcome: Outcome::Completed,
                            by: OutcomeDetail::Stepped,
                            at_s: at,
                            downtime_ms: Some(last_pages_ms(i, c, dirty_now) + switchover_ms),
                            postcopy_ms: None,
                            extra_bytes: dirty_now,
                        };
                    }
                }
                // A scheduled switch, or the completion timeout forcing
                // one where post-copy is allowed.
                1 | 2 if kind == 1 || (i.completion_force && postcopy_on) => {
                    bytes += sent;
                    break 'run postcopy_end(
                        at,
                        dirty_now,
                        uncapped_rate(i, c),
                        switchover_ms,
                        if kind == 1 {
                            OutcomeDetail::Postcopy
                        } else {
                            OutcomeDetail::Forced
                        },
                    );
                }
                2 if i.completion_force => {
                    // The guest paused so the last pages can go.
                    bytes += sent;
                    let down = dirty_now / rate * 1e3 + switchover_ms;
                    break 'run End {
                        outcome: Outcome::Completed,
                        by: OutcomeDetail::Forced,
                        at_s: at,
                        downtime_ms: Some(down),
                        postcopy_ms: None,
                        extra_bytes: dirty_now,
                    };
                }
                2 | 3 => {
                    bytes += sent;
                    break 'run End {
                        outcome: if kind == 2 {
                            Outcome::Aborted
                        } else {
                            Outcome::TimedOut
                        },
                        by: OutcomeDetail::Aborted,
                        at_s: at,
                        downtime_ms: None,
                        postcopy_ms: None,
                        extra_bytes: 0.0,
                    };
                }
                _ => unreachable!("event kinds are 0-3"),
            }
        }
        t += dur;
        bytes += remaining;
        let prev = remaining;
        remaining = dirtied(dur, throttle).min(i.ram);
        // QEMU's test after the sync: what remains fits the limit.
        let limit_ms = i.limit_at(t * 1e3);
        if remaining / rate * 1e3 <= limit_ms {
            // What is left at the switchover: part of the pass QEMU was
            // sending when its check fitted, and part of what the guest
            // dirtied since the last sync, never more than the limit's
            // worth. QEMU checks only between iterations (each sends up
            // to 50 ms, and the socket takes more without waiting), so
            // its first check below the limit's worth finds the pass
            // anywhere in a span below it ([`first_checks`]); the first
            // pass ends in the guest's free (zero) pages and then the top
            // of its RAM, so there the check fires before the top when the
            // limit's worth holds it. Where a check's sync does not fit,
            // QEMU sent on past it and the next check below the limit's
            // worth fitted. A throttled guest
            // completes with a share of the limit's worth. The pass's part
            // was sent in the pause, not before it: the pause starts that
            // sooner.
            let dirtied_ms = remaining / rate * 1e3;
            let synced_ms = c.sync_share * dirtied_ms;
            let top = c.tail_bytes + c.tail_bytes_per_gib * gib;
            let top_ms = top.min(prev) / rate * 1e3;
            let span_ms = c.check_ms + c.check_bytes / rate * 1e3;
            // The pause's pages, ms, for what is left (ms at the rate).
            let pages = |left_ms: f64| last_pages_ms(i, c, left_ms / 1e3 * rate);
            let (tail_ms, left_ms, pages_ms) = if stepped {
                (0.0, dirtied_ms, pages(dirtied_ms))
            } else if throttle == 0.0 && passes == 1 && top > 0.0 && top_ms + synced_ms <= limit_ms
            {
                // The check fired in the first pass' zero pages.
                (top_ms, top_ms + synced_ms, pages(top_ms + synced_ms))
            } else if throttle == 0.0 && c.has_check_span() {
                let per_ms = (dirtied_ms / (dur * 1e3)).min(1.0);
                first_checks(
                    limit_ms.min(dur * 1e3),
                    span_ms,
                    (synced_ms, per_ms),
                    limit_ms,
                    &pages,
                )
            } else {
                let tail = (c.remainder_share * limit_ms).clamp(0.0, (dur * 1e3).min(limit_ms));
                let left = (tail + c.sync_share * dirtied_ms).min(limit_ms);
                // A throttled guest dirties little: no more than its pass did.
                let (tail, left) = if throttle > 0.0 {
                    (tail.min(dirtied_ms), left.min(dirtied_ms))
                } else {
                    (tail, left)
                };
                (tail, left, pages(left))
            };
            break End {
                outcome: Outcome::Completed,
                by: if stepped {
                    OutcomeDetail::Stepped
                } else {
                    OutcomeDetail::Converged
                },
                at_s: t - tail_ms / 1e3,
                downtime_ms: Some(pages_ms + switchover_ms),
                postcopy_ms: None,
                extra_bytes: ((left_ms - tail_ms) / 1e3 * rate).max(0.0),
            };
        }
        if let Switch::AfterPasses(n) = i.postcopy {
            if passes + 1 >= n {
                break postcopy_end(
                    t,
                    remaining,
                    uncapped_rate(i, c),
                    switchover_ms,
                    OutcomeDetail::Postcopy,
                );
            }
        }
        // Auto-converge: a period that dirtied more than half of what it
        // sent, twice, raises the throttle.
        let throttle_before = throttle;
        if let Some((initial, step, max)) = i.auto_converge {
            if dirtied(dur, throttle) > THROTTLE_TRIGGER * prev {
                high += 1;
                if high >= 2 {
                    high = 0;
                    throttle = if throttle == 0.0 {
                        initial
                    } else {
                        (throttle + step).min(max)
                    };
                    max_throttle = max_throttle.max(throttle);
                }
            }
        }
        // A steady state (nothing changes pass to pass): skip to the pass
        // before the next event.
        let settled = (remaining - prev).abs() <= 1e-9 * prev.max(1.0)
            && throttle == throttle_before
            && i.auto_converge.is_none_or(|(_, _, max)| throttle >= max)
            && !matches!(i.postcopy, Switch::AfterPasses(_));
        if settled {
            let next = [
                i.next_step_after(t * 1e3).map(|s| s / 1e3),
                match i.postcopy {
                    Switch::AfterMs(ms) => Some(ms / 1e3),
                    _ => None,
                },
                (i.completion_timeout_ms > 0.0).then_some(i.completion_timeout_ms / 1e3),
                Some(timeout_s),
            ]
            .into_iter()
            .flatten()
            .filter(|e| *e > t)
            .fold(f64::INFINITY, f64::min);
            let skip = ((next - t) / dur).floor() - 1.0;
            if skip >= 1.0 && skip.is_finite() {
                t += skip * dur;
                bytes += skip * remaining;
                passes += skip as u32;
            }
        }
        if passes >= 1_000_000 {
            break End {
                outcome: Outcome::TimedOut,
                by: OutcomeDetail::Aborted,
                at_s: timeout_s,
                downtime_ms: None,
                postcopy_ms: None,
                extra_bytes: 0.0,
            };
        }
    };
    let total_ms = end.at_s * 1e3 + end.downtime_ms.unwrap_or(0.0) + end.postcopy_ms.unwrap_or(0.0);
    let completed = end.outcome == Outcome::Completed && total_ms <= i.timeout_ms;
    Prediction {
        converges: completed,
        outcome: if end.outcome == Outcome::Completed && !completed {
            Outcome::TimedOut
        } else {
            end.outcome
        },
        finished_by: end.by,
        total_time_ms: total_ms.min(i.timeout_ms),
        downtime_ms: if completed { end.downtime_ms } else { None },
        // The sync that ends the last pass, and QEMU's final one.
        passes: passes + u32::from(completed),
        bytes: bytes + end.extra_bytes,
        postcopy_ms: end.postcopy_ms,
        max_throttle_pct: max_throttle * 100.0,
        downtime_limit_final_ms: i.limit_at(end.at_s * 1e3),
    }
}

/// Where QEMU's first check below the limit's worth finds the pass:
/// anywhere in the span before it (`hi` − `span_ms` to `hi`, evenly, 32
/// places). Where that check's sync (`synced_ms`) fits the limit, the
/// pause takes it and the pass' part left at the check; where not, QEMU
/// sent on past it (its part is negative: the pause starts that much
/// later) and its next check synced only what the guest dirtied since
/// (`per_ms` of each ms sent). The means over the places of (the pass'
/// part, what is left, and `pages` of what is left: the pause's pages,
/// ms, which need not be linear in it).
fn first_checks(
    hi: f64,
    span_ms: f64,
    (synced_ms, per_ms): (f64, f64),
    limit_ms: f64,
    pages: &dyn Fn(f64) -> f64,
) -> (f64, f64, f64) {
    const POINTS: usize = 32;
    let (mut tail, mut left, mut paused) = (0.0, 0.0, 0.0);
    for k in 0..POINTS {
        let at = (hi - span_ms * (k as f64 + 0.5) / POINTS as f64).max(0.0);
        let (t, l) = if at + synced_ms <= limit_ms {
            (at, at + synced_ms)
        } else {
            (at - synced_ms, (at + synced_ms * per_ms).min(limit_ms))
        };
        tail += t;
        left += l;
        paused += pages(l);
    }
    let n = POINTS as f64;
    (tail / n, left / n, paused / n)
}

/// Memory moved per second with no bandwidth cap (the link's rate, or
/// what compression fits on it): QEMU lifts its cap to send the last
/// pages, and post-copy has its own (`max-postcopy-bandwidth`, none here).
fn uncapped_rate(i: &Inputs, c: &Constants) -> f64 {
    data_rate(
        &Inputs {
            max_bandwidth: None,
            ..*i
        },
        c,
    )
}

/// The pause's share of sending the last `bytes` (before compression),
/// ms: QEMU sends them regardless of the bandwidth cap, at the link's
/// rate, and without a return path (no post-copy) its downtime ends once
/// they are in the socket. A cap sends each 100 ms window's share in a
/// burst and then waits for the window's end, where QEMU checks: at half
/// the link or less the burst has drained by then, and
/// [`Constants::socket_bytes`] of the last pages cost nothing. Above half
/// the link an iteration stops at 50 ms mid-burst and some checks find
/// the socket full: the drained share falls to none at the link. A
/// link-bound stream keeps it full; compression, not modelled here,
/// takes none.
fn last_pages_ms(i: &Inputs, c: &Constants, bytes: f64) -> f64 {
    let (capped, full) = (data_rate(i, c), uncapped_rate(i, c));
    let drained = if i.compression || i.postcopy != Switch::Off {
        0.0
    } else {
        (2.0 * (1.0 - capped / full)).clamp(0.0, 1.0)
    };
    (bytes - drained * c.socket_bytes).max(0.0) / full * 1e3
}

/// Post-copy takes over at `at` with `dirty` bytes still on the source:
/// the guest pauses for the last bitmap sync and the device state only
/// (the switchover without pages), then the rest
/// follows at the link rate (each page once, requested or pushed).
fn postcopy_end(at: f64, dirty: f64, rate: f64, pause_ms: f64, by: OutcomeDetail) -> End {
    End {
        outcome: Outcome::Completed,
        by,
        at_s: at,
        downtime_ms: Some(pause_ms),
        postcopy_ms: Some(dirty / rate * 1e3),
        extra_bytes: dirty,
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
    relaxed.downtime_steps = 0;
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
mod tests;
