//! A run's clock origin: the monotonic instant every raw series counts
//! from, paired with the wall-clock time of that same instant, so a series
//! time `t_ms` happened at `origin_unix + t_ms / 1000` on the world's
//! clock (syslog, another program's log, a packet capture).
//!
//! Exports [`Origin`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
        let (_, mid, wall) = (0..3)
            .map(|_| {
                let a = Instant::now();
                let wall = realtime_ns();
                let b = Instant::now();
                (b - a, a + (b - a) / 2, wall)
            })
            .min_by_key(|(spread, _, _)| *spread)
            .expect("three tries");
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

    /// ns since the origin of a wall-clock stamp (a kernel receive
    /// timestamp, realtime ns); 0 for a stamp before it.
    pub fn since_unix_ns(&self, stamp_ns: u64) -> u64 {
        stamp_ns.saturating_sub(self.unix_ns())
    }
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
        // Both clocks tick alike over 20 ms (a slew is at most 500 ppm).
        let off = wall as i64 - (o.unix_ns() + since) as i64;
        assert!(off.abs() < 200_000, "{off} ns");
        assert_eq!(o.since_unix_ns(o.unix_ns() + 1_500), 1_500);
        assert_eq!(o.since_unix_ns(o.unix_ns() - 1), 0);
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
