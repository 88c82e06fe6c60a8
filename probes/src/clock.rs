//! A run's clock origin: the monotonic instant every raw series counts
//! from, paired with the wall-clock time of that same instant, so a series
//! time `t_ms` happened at `origin_unix + t_ms / 1000` on the world's
//! clock (syslog, another program's log, a packet capture) — as long as
//! nobody steps the wall clock during the run.
//!
//! Series times are monotonic. Kernel receive stamps are wall-clock
//! (there is no monotonic socket timestamp), so a stamp is placed by its
//! age: the monotonic now less how long ago, on the wall clock, the
//! packet arrived ([`Origin::since_stamp_ns`]). A wall-clock step during a
//! run (CI once saw one of +335 ms in the middle of a calibration pause)
//! then moves nothing; counting stamps from `origin_unix` instead moved
//! every later reply by the step.
//!
//! The wall clock need not tick with the monotonic one: a host that slews
//! it (this project's sandbox, measured: +5,000 ppm for tens of seconds,
//! then 0 for minutes) moves `origin_unix + t_ms / 1000` off the wall time
//! by milliseconds a minute. [`WallLog`] reads both clocks every 100 ms
//! into the run's `clock.jsonl`; [`wall_at`] interpolates in it.
//!
//! Exports [`Origin`], [`WallLog`], [`WallSample`], [`wall_at`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The instant series count from and its wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The monotonic instant: series times are ms since it.
    pub at: Instant,
    /// CLOCK_REALTIME at `at`, whole µs since the Unix epoch (whole µs: an
    /// f64 of seconds holds it exactly, so `origin_unix` in the files is
    /// the very value the probers count kernel timestamps from).
    pub unix_us: u64,
}

impl Origin {
    /// Now: both clocks read back to back, the tightest of three tries (a
    /// preemption between the reads would shift every wall time by its
    /// length), the instant moved onto the whole µs of wall time.
    pub fn now() -> Origin {
        let (mid, wall) = both_clocks();
        let sub_us = Duration::from_nanos(wall % 1000);
        Origin {
            at: mid.checked_sub(sub_us).unwrap_or(mid),
            unix_us: wall / 1000,
        }
    }

    /// Wall-clock time of the origin, seconds since the Unix epoch.
    pub fn unix_secs(&self) -> f64 {
        self.unix_us as f64 / 1e6
    }

    /// Wall-clock time of the origin, ns since the Unix epoch.
    pub fn unix_ns(&self) -> u64 {
        self.unix_us * 1000
    }

    /// ns since the origin, on the monotonic clock.
    pub fn elapsed_ns(&self) -> u64 {
        self.at.elapsed().as_nanos() as u64
    }

    /// ns since the origin, on the monotonic clock, of a kernel receive
    /// stamp (realtime ns): see [`place_stamp`]. Called as the packet is
    /// read, so the stamp is fresh.
    pub fn since_stamp_ns(&self, stamp_ns: u64) -> u64 {
        let (mono, wall) = both_clocks();
        let mono = mono.saturating_duration_since(self.at).as_nanos() as u64;
        place_stamp(mono, wall, stamp_ns)
    }
}

/// The oldest a receive stamp is believed to be when read: a packet waits
/// in the socket for microseconds (the receivers are real-time threads),
/// so an age beyond this is a wall-clock step forward between the packet
/// and the read, not a wait, and counts as this much.
pub const MAX_STAMP_AGE_NS: u64 = 1_000_000_000;

/// A stamp's place on the monotonic series clock: `mono_now_ns` (series
/// ns now) less the stamp's age, `wall_now_ns - stamp_ns`, read at the
/// same moment. A step of the wall clock before the packet arrived moves
/// both wall readings alike and cancels; a step backwards between the
/// packet and the read (a negative age) places it now; one forward there
/// ages it at most [`MAX_STAMP_AGE_NS`].
pub fn place_stamp(mono_now_ns: u64, wall_now_ns: u64, stamp_ns: u64) -> u64 {
    let age = wall_now_ns.saturating_sub(stamp_ns).min(MAX_STAMP_AGE_NS);
    mono_now_ns.saturating_sub(age)
}

impl From<Instant> for Origin {
    /// An origin kept only as an instant: its wall time is read now, less
    /// the time since (off by however much the wall clock was slewed or
    /// stepped since; runs use [`Origin::now`]).
    fn from(at: Instant) -> Origin {
        let wall = realtime_ns().saturating_sub(at.elapsed().as_nanos() as u64);
        Origin {
            at,
            unix_us: wall / 1000,
        }
    }
}

/// Both clocks read back to back, the tightest of three tries (a
/// preemption between the reads would shift the pair by its length): the
/// instant between the two monotonic reads and the wall ns.
fn both_clocks() -> (Instant, u64) {
    let (_, mid, wall) = (0..3)
        .map(|_| {
            let a = Instant::now();
            let wall = realtime_ns();
            let b = Instant::now();
            (b - a, a + (b - a) / 2, wall)
        })
        .min_by_key(|(spread, _, _)| *spread)
        .expect("three tries");
    (mid, wall)
}

/// One reading of both clocks: a line of `clock.jsonl`. Both in ms from
/// the origin (the wall one from `origin_unix`): small numbers keep the
/// f64 to the ns, where seconds since 1970 keep only a quarter µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WallSample {
    /// Series ms (monotonic, since the origin).
    pub t_ms: f64,
    /// Wall-clock ms since `origin_unix` at that moment.
    pub wall_ms: f64,
}

/// How often [`WallLog`] reads the clocks. Between two readings the wall
/// time is interpolated; a change of slew rate inside the 100 ms puts it
/// off by at most a quarter of the interval times the change (125 µs at
/// a 5,000 ppm change), nothing when the rate holds.
pub const WALL_LOG_EVERY: Duration = Duration::from_millis(100);

/// Reads both clocks every [`WALL_LOG_EVERY`] on a thread of its own
/// until [`WallLog::finish`].
pub struct WallLog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<WallSample>>>,
    origin: Origin,
}

impl WallLog {
    /// Start logging against `origin` (its own pair is the first sample).
    pub fn start(origin: Origin) -> WallLog {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wall-log".into())
            .spawn(move || {
                let mut out = vec![WallSample {
                    t_ms: 0.0,
                    wall_ms: 0.0,
                }];
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(WALL_LOG_EVERY);
                    out.push(origin.sample());
                }
                out
            })
            .ok();
        WallLog {
            stop,
            thread,
            origin,
        }
    }

    /// Stop; the samples, the last one read now.
    pub fn finish(mut self) -> Vec<WallSample> {
        self.stop.store(true, Ordering::Relaxed);
        let mut out = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        out.push(self.origin.sample());
        out
    }
}

impl Drop for WallLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Origin {
    /// Both clocks now, as a [`WallSample`] on this origin's series.
    pub fn sample(&self) -> WallSample {
        let (mono, wall) = both_clocks();
        WallSample {
            t_ms: mono.saturating_duration_since(self.at).as_secs_f64() * 1e3,
            wall_ms: (wall as i128 - i128::from(self.unix_ns())) as f64 / 1e6,
        }
    }
}

/// The wall time of series time `t_ms`, in ms since `origin_unix`,
/// interpolated between the samples around it (`samples` in time order);
/// outside them, the nearest sample's offset. `None` without samples.
pub fn wall_at(samples: &[WallSample], t_ms: f64) -> Option<f64> {
    let offset = |s: &WallSample| s.wall_ms - s.t_ms;
    let i = samples.partition_point(|s| s.t_ms <= t_ms);
    let off = match (i.checked_sub(1).map(|j| &samples[j]), samples.get(i)) {
        (Some(a), Some(b)) if b.t_ms > a.t_ms => {
            let f = (t_ms - a.t_ms) / (b.t_ms - a.t_ms);
            offset(a) + f * (offset(b) - offset(a))
        }
        (Some(a), _) => offset(a),
        (None, Some(b)) => offset(b),
        (None, None) => return None,
    };
    Some(t_ms + off)
}

/// CLOCK_REALTIME in ns.
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_time_of_the_origin_is_the_wall_clock_less_the_time_since() {
        let o = Origin::now();
        std::thread::sleep(Duration::from_millis(20));
        let (wall, since) = (realtime_ns(), o.elapsed_ns());
        // Both clocks tick alike over 20 ms within 200 µs (slews measured
        // here reach 5,000 ppm: 100 µs over 20 ms).
        let off = wall as i64 - (o.unix_ns() + since) as i64;
        assert!(off.abs() < 200_000, "{off} ns");
    }

    #[test]
    fn a_stamp_is_placed_by_its_age_so_a_wall_clock_step_moves_nothing() {
        // 10 s into the series, a packet stamped 40 µs ago.
        let (mono, wall) = (10_000_000_000, 1_800_000_000_000_000_000);
        assert_eq!(place_stamp(mono, wall, wall - 40_000), mono - 40_000);
        // The wall clock stepped +335 ms (or −2 s) before the packet: the
        // same place.
        for step in [335_000_000i64, -2_000_000_000] {
            let w = wall.checked_add_signed(step).unwrap();
            assert_eq!(place_stamp(mono, w, w - 40_000), mono - 40_000);
        }
        // Stepped back between the packet and the read: placed now.
        assert_eq!(place_stamp(mono, wall - 5_000_000, wall), mono);
        // Stepped 1 h forward there: aged at most MAX_STAMP_AGE_NS.
        let late = place_stamp(mono, wall + 3_600_000_000_000, wall);
        assert_eq!(late, mono - MAX_STAMP_AGE_NS);
        // Never before the origin.
        assert_eq!(place_stamp(5, wall, wall - 40_000), 0);
    }

    #[test]
    fn wall_time_is_interpolated_between_samples_and_held_outside() {
        let s = |t_ms: f64, wall_ms: f64| WallSample { t_ms, wall_ms };
        // 5 ms ahead after the first second (a 5,000 ppm slew), then steady.
        let log = [s(0.0, 0.0), s(1000.0, 1005.0), s(2000.0, 2005.0)];
        let at = |t| wall_at(&log, t).unwrap();
        assert!((at(500.0) - 502.5).abs() < 1e-9);
        assert!((at(1500.0) - 1505.0).abs() < 1e-9);
        assert!(
            (at(-100.0) + 100.0).abs() < 1e-9,
            "before: the first offset"
        );
        assert!((at(3000.0) - 3005.0).abs() < 1e-9, "after: the last offset");
        assert_eq!(wall_at(&[], 1.0), None);
        // Two samples at one time do not divide by zero.
        let twice = [s(0.0, 10.0), s(0.0, 10.0)];
        assert!((wall_at(&twice, 0.0).unwrap() - 10.0).abs() < 1e-12);
    }

    #[test]
    fn the_wall_log_starts_at_the_origin_and_samples_every_100ms() {
        let o = Origin::now();
        let log = WallLog::start(o);
        std::thread::sleep(Duration::from_millis(350));
        let s = log.finish();
        assert_eq!((s[0].t_ms, s[0].wall_ms), (0.0, 0.0));
        assert!((4..=6).contains(&s.len()), "{} samples", s.len());
        assert!(s.windows(2).all(|w| w[1].t_ms > w[0].t_ms));
        // Each sample is within 0.5 s of what the origin alone predicts
        // (the clocks drift apart by ms a minute at most).
        for x in &s {
            assert!((x.wall_ms - x.t_ms).abs() < 500.0, "{x:?}");
        }
    }

    #[test]
    fn a_fresh_stamp_lands_within_a_millisecond_of_now() {
        let o = Origin::now();
        std::thread::sleep(Duration::from_millis(5));
        let t = o.since_stamp_ns(realtime_ns());
        let now = o.elapsed_ns();
        assert!(t <= now && now - t < 1_000_000, "{t} vs {now}");
    }

    #[test]
    fn origin_unix_in_seconds_round_trips_to_the_microsecond() {
        let o = Origin::now();
        let back = (o.unix_secs() * 1e6).round() as u64;
        assert_eq!(back, o.unix_us);
        let text = serde_json::to_string(&o.unix_secs()).unwrap();
        let parsed: f64 = serde_json::from_str(&text).unwrap();
        assert_eq!((parsed * 1e6).round() as u64, o.unix_us, "{text}");
    }
}
