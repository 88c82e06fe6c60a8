//! Why no setting (or no plain pre-copy) meets a target, named by its
//! cause: the link's time for the guest's memory, QEMU's setup, the
//! switchover, dirtying against the send rate, the time or downtime
//! limit; and the link a plain pre-copy would need.

use super::*;

/// What keeps a target out of reach, named by its cause.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "constraint", rename_all = "kebab-case")]
pub enum Binding {
    /// QEMU's setup alone, before any page moves, is longer than the time
    /// target.
    Setup {
        /// The setup, ms.
        setup_ms: f64,
    },
    /// Moving the guest's memory over the link once takes longer than the
    /// time target, at the fastest the settings send.
    LinkTime {
        /// The guest's non-zero memory, bytes.
        bytes: f64,
        /// The fastest it moves, bytes/s.
        rate: f64,
        /// Setup, the first pass and the switchover, ms.
        floor_ms: f64,
    },
    /// The switchover alone (post-copy's whole pause) is longer than the
    /// downtime target.
    Switchover {
        /// The shortest pause any setting has, ms.
        floor_ms: f64,
    },
    /// The guest dirties memory at least as fast as the link sends it:
    /// pre-copy's passes never shrink.
    Dirtying {
        /// Dirty rate, bytes/s.
        dirty: f64,
        /// Send rate, bytes/s.
        send: f64,
    },
    /// It completes, but only after the time target.
    MaxTime {
        /// The shortest total time of a setting that meets the downtime
        /// target, ms.
        total_ms: f64,
    },
    /// It completes, but only with a pause longer than the target.
    Downtime {
        /// The shortest pause of a setting that completes, ms.
        down_ms: f64,
    },
    /// Nothing completes within the timeout.
    Timeout,
}

impl Binding {
    /// In words, for a person.
    pub fn explain(&self, q: &Question) -> String {
        match *self {
            Binding::Setup { setup_ms } => format!(
                "QEMU's setup alone takes {:.1} s for this RAM, more than --max-time {}",
                setup_ms / 1e3,
                secs(q.max_time_ms.unwrap_or(0.0))
            ),
            Binding::LinkTime {
                bytes,
                rate,
                floor_ms,
            } => format!(
                "moving the guest's {:.0} MB of memory once takes at least {:.1} s at {:.0} MB/s (with setup and switchover), more than --max-time {}",
                bytes / 1e6,
                floor_ms / 1e3,
                rate / 1e6,
                secs(q.max_time_ms.unwrap_or(0.0))
            ),
            Binding::Switchover { floor_ms } => format!(
                "the switchover alone pauses the guest {floor_ms:.0} ms, more than --max-downtime {:.0} ms",
                q.max_downtime_ms
            ),
            Binding::Dirtying { dirty, send } => format!(
                "the guest dirties {:.1} MB/s, at least the {:.1} MB/s the link sends",
                dirty / 1e6,
                send / 1e6
            ),
            Binding::MaxTime { total_ms } => format!(
                "the fastest setting that keeps the pause under --max-downtime takes {:.1} s, more than --max-time {}",
                total_ms / 1e3,
                secs(q.max_time_ms.unwrap_or(0.0))
            ),
            Binding::Downtime { down_ms } => format!(
                "the shortest pause of a setting that completes is {down_ms:.0} ms, more than --max-downtime {:.0} ms",
                q.max_downtime_ms
            ),
            Binding::Timeout => format!(
                "no setting completes within --timeout {}",
                secs(q.timeout_ms)
            ),
        }
    }
}

/// A duration as the flags take it: ms under a second, else s to 0.1 s.
fn secs(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", ms.round())
    } else {
        format!("{} s", (ms / 1e3 * 10.0).round() / 10.0)
    }
}

/// The plain pre-copy settings (each downtime limit, the whole link).
fn plain_settings() -> impl Iterator<Item = Setting> {
    LIMITS_MS.iter().map(|&l| Setting {
        downtime_limit_ms: l,
        bandwidth_share: 1.0,
        multifd_channels: 0,
        compression: false,
        xbzrle_cache: 0.0,
        auto_converge: false,
        postcopy: false,
    })
}

/// Why no setting of `settings` meets `q`'s targets: the first that
/// binds of the setup, the link time for the RAM, the switchover, the
/// dirtying against the send rate, the time target and the downtime
/// target. `None` when one does meet them.
fn binding(q: &Question, c: &Constants, settings: &[(Setting, Prediction)]) -> Option<Binding> {
    if settings.iter().any(|(_, p)| meets(p, q)) {
        return None;
    }
    let gib = q.ram / (1u64 << 30) as f64;
    let setup_ms = (c.setup_ms + c.setup_ms_per_gib * gib).max(0.0);
    // The fastest any of these settings moves memory, and the floor of
    // one pass of the guest's memory at that rate.
    let rate = settings
        .iter()
        .map(|(s, _)| crate::data_rate(&s.inputs(q), c))
        .fold(0.0, f64::max);
    let bytes = (c.base_bytes + c.base_bytes_per_gib * gib + q.working_set.min(q.ram)).min(q.ram);
    let switchover = c.switchover_ms + c.switchover_ms_per_gib * gib;
    // Every setting pauses for the switchover at least (post-copy for
    // it alone).
    let pause_floor = switchover;
    let send_ms = bytes / rate.max(1.0) * 1e3;
    let floor_ms = setup_ms + send_ms + pause_floor;
    if let Some(m) = q.max_time_ms.filter(|m| floor_ms > *m) {
        // The link time for the RAM when it alone is too long, else QEMU's
        // setup when it alone is, else the two together.
        if setup_ms > m && send_ms <= m {
            return Some(Binding::Setup { setup_ms });
        }
        return Some(Binding::LinkTime {
            bytes,
            rate,
            floor_ms,
        });
    }
    if pause_floor > q.max_downtime_ms {
        return Some(Binding::Switchover {
            floor_ms: pause_floor,
        });
    }
    let send = settings
        .iter()
        .map(|(s, _)| crate::data_rate(&s.inputs(q), c))
        .fold(0.0, f64::max);
    let only_plain = settings.iter().all(|(s, _)| s.family() == Family::Plain);
    if only_plain && q.dirty_rate * c.dirty_scale >= send {
        return Some(Binding::Dirtying {
            dirty: q.dirty_rate * c.dirty_scale,
            send,
        });
    }
    let in_down = settings
        .iter()
        .filter(|(_, p)| p.converges && p.downtime_ms.is_some_and(|d| d <= q.max_downtime_ms))
        .map(|(_, p)| p.total_time_ms)
        .fold(f64::INFINITY, f64::min);
    if in_down.is_finite() {
        return Some(Binding::MaxTime { total_ms: in_down });
    }
    let down = settings
        .iter()
        .filter(|(_, p)| p.converges)
        .filter_map(|(_, p)| p.downtime_ms)
        .fold(f64::INFINITY, f64::min);
    if down.is_finite() {
        return Some(Binding::Downtime { down_ms: down });
    }
    if !only_plain && q.dirty_rate * c.dirty_scale >= send {
        return Some(Binding::Dirtying {
            dirty: q.dirty_rate * c.dirty_scale,
            send,
        });
    }
    Some(Binding::Timeout)
}

/// Why no setting at all meets `q`'s targets on its link (`None` when one
/// does).
pub fn why_none(q: &Question, c: &Constants) -> Option<Binding> {
    binding(q, c, &predicted(q, c))
}

/// Why plain pre-copy does not meet `q`'s targets on its link (`None`
/// when it does).
pub fn why_not_plain(q: &Question, c: &Constants) -> Option<Binding> {
    let plain: Vec<(Setting, Prediction)> = plain_settings()
        .map(|s| (s, predict(&s.inputs(q), c)))
        .collect();
    binding(q, c, &plain)
}

/// The slowest link over which plain pre-copy (with the downtime limit
/// that fits the target) meets the targets, bits/s, or `None` when even
/// [`FASTEST_LINK_BPS`] does not (then [`why_not_plain`] on that link
/// says why).
pub fn link_needed(q: &Question, c: &Constants) -> Option<f64> {
    let works = |bps: f64| {
        let r = Question {
            link_bps: bps,
            ..*q
        };
        plain_settings().any(|s| meets(&predict(&s.inputs(&r), c), &r))
    };
    let (mut lo, mut hi) = (1e6_f64, FASTEST_LINK_BPS);
    if !works(hi) {
        return None;
    }
    if works(lo) {
        return Some(lo);
    }
    // Bisect on a log scale to 1 %.
    while hi / lo > 1.01 {
        let mid = (lo * hi).sqrt();
        if works(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// The fastest link [`link_needed`] tries, bits/s (400 Gbit/s).
pub const FASTEST_LINK_BPS: f64 = 400e9;
