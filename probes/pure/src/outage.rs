//! Pure analysis of probe events: outage windows (gaps between consecutive
//! reply arrivals), the service downtime around a switchover, and RTT
//! percentiles per phase (hdrhistogram).
//!
//! Why reply gaps: while a VM is paused its tap queues probes and answers
//! them late in a burst on resume, and after switchover probes still sent to
//! the old port are lost. Either way the client sees *no reply arrive* for
//! the outage, so the longest gap between reply arrivals is what it saw.
//! A pause of P at probe interval I gives a gap in [P, P+I); we report the
//! midpoint estimate gap − I/2.

use hdrhistogram::Histogram;
use migbench_model::record::Percentiles;
use migbench_model::ProbeEvent;

/// A stretch with no reply arriving, longer than the outage threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageWindow {
    /// Arrival of the last reply before the gap, ms.
    pub start_ms: f64,
    /// Arrival of the first reply after the gap, ms.
    pub end_ms: f64,
}

impl OutageWindow {
    /// Raw gap length, ms.
    pub fn gap_ms(&self) -> f64 {
        self.end_ms - self.start_ms
    }
}

/// The smallest reply gap counted as an outage for a probe interval:
/// ten intervals, at least 10 ms (a TCG guest has a few ms of jitter).
pub fn outage_threshold_ms(interval_ms: f64) -> f64 {
    (10.0 * interval_ms).max(10.0)
}

/// Reply arrival times in order.
fn arrivals(events: &[ProbeEvent]) -> Vec<f64> {
    let mut r: Vec<f64> = events.iter().filter_map(|e| e.recv_ms).collect();
    r.sort_by(f64::total_cmp);
    r
}

/// All gaps between reply arrivals longer than `threshold_ms`.
pub fn outage_windows(events: &[ProbeEvent], threshold_ms: f64) -> Vec<OutageWindow> {
    arrivals(events)
        .windows(2)
        .filter(|w| w[1] - w[0] > threshold_ms)
        .map(|w| OutageWindow {
            start_ms: w[0],
            end_ms: w[1],
        })
        .collect()
}

/// The longest reply gap that overlaps `[from_ms, to_ms]`, as a downtime
/// estimate (gap − interval/2, never below 0). `None` if no reply arrived
/// on one side of the window, i.e. the service never came back.
pub fn service_downtime_ms(
    events: &[ProbeEvent],
    interval_ms: f64,
    from_ms: f64,
    to_ms: f64,
) -> Option<f64> {
    let r = arrivals(events);
    if !r.iter().any(|&t| t >= to_ms) || !r.iter().any(|&t| t <= from_ms) {
        return None;
    }
    r.windows(2)
        .filter(|w| w[1] >= from_ms && w[0] <= to_ms)
        .map(|w| w[1] - w[0])
        .max_by(f64::total_cmp)
        .map(|gap| (gap - interval_ms / 2.0).max(0.0))
}

/// The last gap between sorted arrival times `arrivals` longer than
/// `threshold_ms` that began at or before `at_ms`: with `at_ms` the moment
/// the hypervisor saw the migration complete, the switchover's outage
/// (the guest pauses before that moment; a setup stall, earlier, is
/// passed over).
pub fn gap_before(arrivals: &[f64], threshold_ms: f64, at_ms: f64) -> Option<OutageWindow> {
    arrivals
        .windows(2)
        .rev()
        .find(|w| w[1] - w[0] > threshold_ms && w[0] <= at_ms)
        .map(|w| OutageWindow {
            start_ms: w[0],
            end_ms: w[1],
        })
}

/// The switchover's outage seen by probe `events` ([`gap_before`] the
/// completion at `at_ms`), less half an interval as
/// [`service_downtime_ms`]; `None` if no reply gap began before it.
pub fn switchover_outage_ms(events: &[ProbeEvent], interval_ms: f64, at_ms: f64) -> Option<f64> {
    gap_before(&arrivals(events), outage_threshold_ms(interval_ms), at_ms)
        .map(|w| (w.gap_ms() - interval_ms / 2.0).max(0.0))
}

/// RTT percentiles (ms) of probes sent in `[from_ms, to_ms)`.
pub fn rtt_percentiles(events: &[ProbeEvent], from_ms: f64, to_ms: f64) -> Option<Percentiles> {
    // Microsecond resolution, up to an hour, 3 significant digits.
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok()?;
    for e in events
        .iter()
        .filter(|e| e.sent_ms >= from_ms && e.sent_ms < to_ms)
    {
        if let Some(r) = e.recv_ms {
            let us = ((r - e.sent_ms) * 1e3).round().max(1.0) as u64;
            h.saturating_record(us);
        }
    }
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| us as f64 / 1e3;
    Some(Percentiles {
        n: h.len(),
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probes every `interval` ms for `n` probes, rtt 0.2 ms, with the
    /// service paused during [pause_at, pause_at + pause): probes arriving
    /// then are answered at the end of the pause.
    fn synth(n: u64, interval: f64, pause_at: f64, pause: f64) -> Vec<ProbeEvent> {
        (0..n)
            .map(|seq| {
                let sent = seq as f64 * interval;
                let arrive = sent + 0.1;
                let answered = if arrive >= pause_at && arrive < pause_at + pause {
                    pause_at + pause
                } else {
                    arrive
                };
                ProbeEvent {
                    seq,
                    sent_ms: sent,
                    recv_ms: Some(answered + 0.1),
                }
            })
            .collect()
    }

    #[test]
    fn the_switchover_outage_is_the_last_gap_begun_before_completion_not_a_longer_earlier_one() {
        // A 300 ms setup stall at 1 s, then a 150 ms switchover at 3 s
        // completing (as the hypervisor sees it) 100 ms into the pause.
        let mut ev = synth(5000, 1.0, 1000.0, 300.0);
        let later = synth(5000, 1.0, 3000.0, 150.0);
        for (e, l) in ev.iter_mut().zip(later) {
            if e.sent_ms >= 2000.0 {
                *e = l;
            }
        }
        assert!(service_downtime_ms(&ev, 1.0, 10.0, 4000.0).unwrap() > 290.0);
        let s = switchover_outage_ms(&ev, 1.0, 3100.0).unwrap();
        assert!((s - 150.0).abs() < 1.0, "{s}");
        assert_eq!(switchover_outage_ms(&ev, 1.0, 500.0), None);
    }

    #[test]
    fn a_200ms_pause_at_1ms_interval_is_measured_within_half_a_millisecond() {
        let ev = synth(1000, 1.0, 400.3, 200.0);
        let d = service_downtime_ms(&ev, 1.0, 300.0, 700.0).unwrap();
        assert!((d - 200.0).abs() <= 0.5, "{d}");
        let w = outage_windows(&ev, outage_threshold_ms(1.0));
        assert_eq!(w.len(), 1);
        assert!(w[0].start_ms < 400.5 && w[0].end_ms > 600.0);
    }

    #[test]
    fn lost_probes_count_as_outage_too() {
        let mut ev = synth(1000, 1.0, 0.0, 0.0);
        for e in &mut ev[500..650] {
            e.recv_ms = None;
        }
        let d = service_downtime_ms(&ev, 1.0, 400.0, 800.0).unwrap();
        assert!((d - 150.0).abs() <= 1.0, "{d}");
    }

    #[test]
    fn no_reply_after_the_window_means_no_estimate() {
        let mut ev = synth(100, 1.0, 0.0, 0.0);
        for e in &mut ev[50..] {
            e.recv_ms = None;
        }
        assert_eq!(service_downtime_ms(&ev, 1.0, 40.0, 60.0), None);
    }

    #[test]
    fn rtt_percentiles_split_by_phase() {
        let ev = synth(1000, 1.0, 500.0, 50.0);
        let before = rtt_percentiles(&ev, 0.0, 400.0).unwrap();
        assert!((before.p50 - 0.2).abs() < 0.01, "{before:?}");
        let during = rtt_percentiles(&ev, 450.0, 600.0).unwrap();
        assert!(during.max > 40.0, "{during:?}");
        assert!(rtt_percentiles(&ev, 2000.0, 3000.0).is_none());
    }

    proptest::proptest! {
        #[test]
        fn measured_downtime_brackets_the_pause(pause in 20.0f64..2000.0, phase in 0.0f64..1.0, interval in 0.1f64..20.0) {
            let n = ((4000.0 + pause) / interval) as u64;
            let ev = synth(n, interval, 1000.0 + phase * interval, pause);
            let d = service_downtime_ms(&ev, interval, 900.0, 1100.0 + pause).unwrap();
            proptest::prop_assert!((d - pause).abs() <= interval / 2.0 + 1e-6, "pause {} measured {}", pause, d);
        }
    }
}
