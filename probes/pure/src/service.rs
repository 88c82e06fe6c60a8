//! Pure analysis of what a service's client saw: a TCP stream played out
//! with a buffer ([`playout`], [`stream_summary`]) and request latencies
//! per migration phase ([`rr_summary`]).
//!
//! The playout is a function of when the stream's bytes arrived, so every
//! buffer size is evaluated on the same received stream: one run answers
//! "what would a 0 s / 1 s / 3 s buffer have done".

use hdrhistogram::Histogram;
use migbench_model::record::{Latency, Playout, RrSummary, StreamSummary};
use migbench_model::{ProbeEvent, StreamChunk};

use crate::outage::gap_before;

/// A stall shorter than one frame at 50 fps is not seen by a viewer.
pub const VISIBLE_STALL_MS: f64 = 20.0;

/// Play `chunks` (in arrival order) out at `bitrate_bps` with a buffer of
/// `buffer_ms` of media: playback starts once the buffer holds
/// `buffer_ms` (or at the first chunk with no buffer) and, when it runs
/// dry, stalls until it holds `buffer_ms` again.
pub fn playout(chunks: &[StreamChunk], bitrate_bps: f64, buffer_ms: f64) -> Playout {
    let mut out = Playout {
        buffer_ms,
        ..Playout::default()
    };
    let Some(first) = chunks.first() else {
        return out;
    };
    let media_ms = |bytes: u64| bytes as f64 * 8.0 / bitrate_bps * 1e3;
    // Media received so far, and the playback position, ms of media.
    let mut received = 0.0;
    let mut position = 0.0;
    // Playing since (wall ms, position then); None while (re)buffering.
    let mut playing: Option<(f64, f64)> = None;
    let mut stalled_since: Option<f64> = None;
    let mut started = false;
    for c in chunks {
        if let Some((since, at)) = playing {
            let dry_at = since + (received - at);
            if dry_at < c.recv_ms {
                playing = None;
                position = received;
                stalled_since = Some(dry_at);
            }
        }
        received += media_ms(c.bytes);
        if playing.is_none() && received - position >= buffer_ms.max(1e-9) {
            playing = Some((c.recv_ms, position));
            match stalled_since.take() {
                Some(s) => {
                    let stall = c.recv_ms - s;
                    if stall >= VISIBLE_STALL_MS {
                        out.stalls += 1;
                        out.stall_ms += stall;
                        out.longest_stall_ms = out.longest_stall_ms.max(stall);
                    }
                }
                None if !started => out.startup_ms = c.recv_ms - first.recv_ms,
                None => {}
            }
            started = true;
        }
    }
    out
}

/// Summarise a received stream: gaps (and the switchover's, when the
/// migration was seen complete at `completed_ms`), losses, the sender's
/// retransmits and backoff, and its playout with each buffer.
pub fn stream_summary(
    chunks: &[StreamChunk],
    bitrate_bps: f64,
    buffers_ms: &[f64],
    completed_ms: Option<f64>,
) -> StreamSummary {
    let arrivals: Vec<f64> = chunks.iter().map(|c| c.recv_ms).collect();
    let max_gap = |f: fn(&StreamChunk) -> f64| {
        chunks
            .windows(2)
            .map(|w| f(&w[1]) - f(&w[0]))
            .fold(0.0, f64::max)
    };
    // Sequence holes: chunks the guest sent that never arrived.
    let missing: u64 = chunks
        .windows(2)
        .map(|w| w[1].seq.saturating_sub(w[0].seq + 1))
        .sum();
    let mean_chunk = if chunks.is_empty() {
        0
    } else {
        chunks.iter().map(|c| c.bytes).sum::<u64>() / chunks.len() as u64
    };
    let retrans = match (chunks.first(), chunks.last()) {
        (Some(a), Some(b)) => u64::from(b.retrans.saturating_sub(a.retrans)),
        _ => 0,
    };
    StreamSummary {
        chunks: chunks.len() as u64,
        bytes: chunks.iter().map(|c| c.bytes).sum(),
        lost_bytes: missing * mean_chunk,
        longest_gap_ms: max_gap(|c| c.recv_ms),
        switchover_gap_ms: completed_ms
            .and_then(|at| gap_before(&arrivals, VISIBLE_STALL_MS, at))
            .map(|w| w.gap_ms()),
        longest_send_gap_ms: max_gap(|c| c.sent_guest_ms),
        retransmits: retrans,
        max_backoff: chunks
            .iter()
            .map(|c| u32::from(c.backoff))
            .max()
            .unwrap_or(0),
        playout: buffers_ms
            .iter()
            .map(|&b| playout(chunks, bitrate_bps, b))
            .collect(),
        error: None,
    }
}

/// Latency percentiles (ms) of the requests sent in `[from_ms, to_ms)`
/// that were answered.
fn latency(events: &[ProbeEvent], from_ms: f64, to_ms: f64) -> Option<Latency> {
    // Microseconds, up to an hour, 3 significant digits.
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok()?;
    for e in events
        .iter()
        .filter(|e| e.sent_ms >= from_ms && e.sent_ms < to_ms)
    {
        if let Some(r) = e.recv_ms {
            h.saturating_record(((r - e.sent_ms) * 1e3).round().max(1.0) as u64);
        }
    }
    let ms = |us: u64| us as f64 / 1e3;
    (!h.is_empty()).then(|| Latency {
        n: h.len(),
        p50: ms(h.value_at_quantile(0.5)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    })
}

/// Summarise request/response events (`sent_ms` is when the request was
/// due, so a request queued behind a stalled one counts its wait):
/// latency before / during / after the migration `[from_ms, to_ms]`
/// (seen complete at `to_ms` when `switched`), the switchover's gap
/// between responses, failures and requests over `deadline_ms`.
pub fn rr_summary(
    events: &[ProbeEvent],
    (from_ms, to_ms, switched): (f64, f64, bool),
    interval_ms: f64,
    deadline_ms: f64,
) -> RrSummary {
    let answered = events.iter().filter(|e| e.recv_ms.is_some()).count() as u64;
    let mut arrivals: Vec<f64> = events.iter().filter_map(|e| e.recv_ms).collect();
    arrivals.sort_by(f64::total_cmp);
    let threshold = (2.0 * interval_ms).max(10.0);
    RrSummary {
        sent: events.len() as u64,
        answered,
        failed: events.len() as u64 - answered,
        over_deadline: events
            .iter()
            .filter(|e| e.recv_ms.is_none_or(|r| r - e.sent_ms > deadline_ms))
            .count() as u64,
        switchover_gap_ms: switched
            .then(|| gap_before(&arrivals, threshold, to_ms))
            .flatten()
            .map(|w| w.gap_ms()),
        before: latency(events, f64::NEG_INFINITY, from_ms),
        during: latency(events, from_ms, to_ms),
        after: latency(events, to_ms, f64::INFINITY),
        ..RrSummary::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 Mbit/s stream in 1250-byte chunks (10 ms of media each) arriving
    /// on time every 10 ms for `secs`, except that nothing arrives during
    /// [gap_at, gap_at + gap): those chunks arrive at its end in a burst.
    fn stream(secs: f64, gap_at: f64, gap: f64) -> Vec<StreamChunk> {
        let n = (secs * 100.0) as u64;
        (0..n)
            .map(|seq| {
                let t = seq as f64 * 10.0;
                let recv = if t >= gap_at && t < gap_at + gap {
                    gap_at + gap
                } else {
                    t
                };
                StreamChunk {
                    seq,
                    bytes: 1250,
                    sent_guest_ms: t,
                    recv_ms: recv,
                    retrans: if t > gap_at { 3 } else { 0 },
                    backoff: if recv > t { 2 } else { 0 },
                }
            })
            .collect()
    }

    #[test]
    fn no_buffer_stalls_for_the_gap_and_a_buffer_longer_than_it_hides_it() {
        let s = stream(10.0, 4000.0, 500.0);
        let p0 = playout(&s, 1e6, 0.0);
        assert_eq!(p0.startup_ms, 0.0);
        assert_eq!(p0.stalls, 1, "{p0:?}");
        // Dry when the last on-time chunk's media ends (4000 ms), back at the gap's end.
        assert!((p0.stall_ms - 500.0).abs() < 1e-6, "{p0:?}");
        let p1 = playout(&s, 1e6, 1000.0);
        assert!((p1.startup_ms - 990.0).abs() < 1e-6, "{p1:?}");
        assert_eq!(p1.stalls, 0, "{p1:?}");
        assert_eq!(p1.stall_ms, 0.0);
    }

    #[test]
    fn a_gap_longer_than_the_buffer_stalls_until_the_buffer_refills() {
        // 2 s gap, 1 s buffer: dry after ~1 s of the gap; the backlog then
        // arrives at once and refills the buffer immediately.
        let s = stream(10.0, 4000.0, 2000.0);
        let p = playout(&s, 1e6, 1000.0);
        assert_eq!(p.stalls, 1, "{p:?}");
        assert!((p.stall_ms - 1000.0).abs() < 20.0, "{p:?}");
        assert_eq!(p.longest_stall_ms, p.stall_ms);
    }

    #[test]
    fn jitter_below_a_frame_is_not_a_stall() {
        let mut s = stream(2.0, 1e9, 0.0);
        for c in s.iter_mut().skip(1).step_by(7) {
            c.recv_ms += 5.0;
        }
        let p = playout(&s, 1e6, 0.0);
        assert_eq!((p.stalls, p.stall_ms), (0, 0.0), "{p:?}");
    }

    #[test]
    fn stream_summary_finds_gaps_holes_retransmits_and_backoff() {
        let mut s = stream(10.0, 4000.0, 500.0);
        s.remove(700);
        let sum = stream_summary(&s, 1e6, &[0.0, 1000.0], Some(4100.0));
        assert_eq!(sum.switchover_gap_ms, Some(510.0));
        assert_eq!(sum.chunks, 999);
        assert_eq!(sum.lost_bytes, 1250);
        assert!((sum.longest_gap_ms - 510.0).abs() < 1e-6, "{sum:?}");
        assert!((sum.longest_send_gap_ms - 20.0).abs() < 1e-6, "{sum:?}");
        assert_eq!((sum.retransmits, sum.max_backoff), (3, 2));
        assert_eq!(sum.playout.len(), 2);
        assert_eq!(sum.tightest().unwrap().buffer_ms, 0.0);
    }

    #[test]
    fn rr_latency_is_split_by_phase_and_counts_failures_and_late_answers() {
        let ev: Vec<ProbeEvent> = (0..300)
            .map(|i| {
                let sent = i as f64 * 5.0;
                let lat = if (500.0..800.0).contains(&sent) {
                    400.0
                } else {
                    1.0
                };
                ProbeEvent {
                    seq: i,
                    sent_ms: sent,
                    recv_ms: (i != 299).then_some(sent + lat),
                }
            })
            .collect();
        let r = rr_summary(&ev, (500.0, 1000.0, true), 5.0, 300.0);
        assert_eq!((r.sent, r.answered, r.failed), (300, 299, 1));
        assert_eq!(r.over_deadline, 60 + 1);
        assert_eq!(r.before.unwrap().n, 100);
        assert!((r.before.unwrap().max - 1.0).abs() < 0.01);
        let d = r.during.unwrap();
        assert_eq!(d.n, 100);
        assert!(
            (d.max - 400.0).abs() < 0.5 && (d.p50 - 400.0).abs() < 0.5,
            "{d:?}"
        );
        assert_eq!(r.after.unwrap().n, 99);
    }
}
