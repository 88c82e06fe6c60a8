//! Advice before any run: every combination of the settings a user can
//! turn (downtime limit, bandwidth cap, multifd and compression, XBZRLE,
//! auto-converge, post-copy) predicted for one guest on one link; of
//! those that meet the targets, each kind of remedy's best (settings
//! alike within the model's noise are one), least intrusive first, each
//! with why; when none meets them, what binds ([`Binding`]) and the
//! closest; when plain pre-copy does not, the link it would need.

use serde::Serialize;

use crate::{predict, Constants, Inputs, Prediction, Switch};

mod binding;
pub use binding::*;

/// The guest, link and targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Question {
    /// Guest RAM, bytes.
    pub ram: f64,
    /// Memory the workload rewrites, bytes.
    pub working_set: f64,
    /// Its dirty rate, bytes/s.
    pub dirty_rate: f64,
    /// Share of each page that compresses away (0–1).
    pub compressibility: f64,
    /// Link rate, bits/s.
    pub link_bps: f64,
    /// Longest acceptable pause, ms.
    pub max_downtime_ms: f64,
    /// Longest acceptable migration, ms (`None`: any within the timeout).
    pub max_time_ms: Option<f64>,
    /// Give up after this long, ms.
    pub timeout_ms: f64,
}

/// One combination of settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Setting {
    /// `downtime_limit`, ms.
    pub downtime_limit_ms: f64,
    /// `max_bandwidth` as a share of the link (1: unlimited).
    pub bandwidth_share: f64,
    /// multifd channels (0: off).
    pub multifd_channels: u32,
    /// multifd zstd compression.
    pub compression: bool,
    /// XBZRLE cache, bytes (0: off).
    pub xbzrle_cache: f64,
    /// Auto-converge at QEMU's 20/10/99.
    pub auto_converge: bool,
    /// Post-copy after the first pass.
    pub postcopy: bool,
}

/// A setting that meets the targets, with its prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// The settings.
    pub setting: Setting,
    /// What the model predicts with them.
    pub predicted: Prediction,
    /// How intrusive (0: plain pre-copy; higher costs the guest or the
    /// host more: CPU for compression, memory for XBZRLE, a throttled
    /// guest, a guest split across hosts).
    pub intrusion: u32,
    /// The kind of remedy.
    pub family: Family,
    /// Why it works, in words.
    pub why: String,
}

/// The downtime limits tried, ms.
pub const LIMITS_MS: [f64; 20] = [
    20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 1500.0,
    2000.0, 3000.0, 5000.0, 7500.0, 10000.0, 20000.0,
];
const SHARES: [f64; 4] = [0.25, 0.5, 0.75, 1.0];
const CHANNELS: [u32; 4] = [0, 2, 4, 8];
const XBZRLE: [f64; 4] = [0.0, 0.25, 0.5, 1.0];

/// Every combination of settings (10 240).
pub fn grid(q: &Question) -> Vec<Setting> {
    let mut out = Vec::with_capacity(10_240);
    for &downtime_limit_ms in &LIMITS_MS {
        for &bandwidth_share in &SHARES {
            for &multifd_channels in &CHANNELS {
                for compression in [false, true] {
                    for &x in &XBZRLE {
                        for auto_converge in [false, true] {
                            for postcopy in [false, true] {
                                out.push(Setting {
                                    downtime_limit_ms,
                                    bandwidth_share,
                                    multifd_channels,
                                    compression,
                                    xbzrle_cache: (x * q.working_set)
                                        .max(4096.0)
                                        .log2()
                                        .ceil()
                                        .exp2()
                                        * f64::from(u8::from(x > 0.0)),
                                    auto_converge,
                                    postcopy,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

impl Setting {
    /// The model's inputs for `q` with these settings.
    pub fn inputs(&self, q: &Question) -> Inputs {
        Inputs {
            ram: q.ram,
            working_set: q.working_set.min(q.ram),
            dirty_rate: q.dirty_rate,
            compressibility: q.compressibility,
            link_bps: q.link_bps,
            max_bandwidth: (self.bandwidth_share < 1.0)
                .then(|| q.link_bps / 8.0 * self.bandwidth_share),
            downtime_limit_ms: self.downtime_limit_ms,
            timeout_ms: q.timeout_ms,
            multifd_channels: self.multifd_channels,
            compression: self.compression && self.multifd_channels > 0,
            xbzrle_cache: self.xbzrle_cache,
            auto_converge: self.auto_converge.then_some((0.2, 0.1, 0.99)),
            postcopy: if self.postcopy {
                Switch::AfterPasses(2)
            } else {
                Switch::Off
            },
            ..Inputs::default()
        }
    }

    /// How intrusive these settings are (see [`Advice::intrusion`]).
    pub fn intrusion(&self) -> u32 {
        u32::from(self.multifd_channels > 0)
            + 2 * u32::from(self.compression)
            + 3 * u32::from(self.xbzrle_cache > 0.0)
            + 5 * u32::from(self.auto_converge)
            + 8 * u32::from(self.postcopy)
    }

    /// Combinations that cannot be set together (compression without
    /// multifd, XBZRLE beside multifd compression, post-copy beside
    /// multifd in QEMU 7.2's lab) are left out.
    fn valid(&self) -> bool {
        let conflict = (self.compression
            && (self.multifd_channels == 0 || self.xbzrle_cache > 0.0))
            || (self.postcopy && self.multifd_channels > 0);
        !conflict
    }
}

/// Whether a prediction meets the targets.
fn meets(p: &Prediction, q: &Question) -> bool {
    p.converges
        && p.downtime_ms.is_some_and(|d| d <= q.max_downtime_ms)
        && q.max_time_ms.is_none_or(|m| p.total_time_ms <= m)
}

/// Total times within this share of each other are the same outcome (the
/// model's own median error on configurations it has not seen is about
/// this; see `bench/predict/tests/predict.rs`).
pub const TIME_NOISE: f64 = 0.05;
/// Downtimes within this many ms, or [`DOWN_NOISE_SHARE`] of the smaller,
/// are the same outcome (identical runs differ by tens of ms).
pub const DOWN_NOISE_MS: f64 = 20.0;
/// See [`DOWN_NOISE_MS`].
pub const DOWN_NOISE_SHARE: f64 = 0.15;

/// Whether `a` does at least as well as `b` within the model's noise:
/// no slower and no longer a pause, beyond what tells runs apart.
fn as_good(a: &Prediction, b: &Prediction) -> bool {
    let (da, db) = (
        a.downtime_ms.unwrap_or(f64::MAX),
        b.downtime_ms.unwrap_or(f64::MAX),
    );
    a.total_time_ms <= b.total_time_ms * (1.0 + TIME_NOISE)
        && da <= db + (DOWN_NOISE_SHARE * db).max(DOWN_NOISE_MS)
}

/// The kinds of remedy, least intrusive first; a setting belongs to the
/// most intrusive it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Pre-copy with a downtime limit (and perhaps a bandwidth cap).
    Plain,
    /// multifd channels, with or without compression.
    Multifd,
    /// XBZRLE's cache.
    Xbzrle,
    /// Auto-converge's throttle.
    AutoConverge,
    /// Post-copy.
    Postcopy,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Plain => "plain pre-copy",
            Family::Multifd => "multifd",
            Family::Xbzrle => "XBZRLE",
            Family::AutoConverge => "auto-converge",
            Family::Postcopy => "post-copy",
        })
    }
}

impl Setting {
    /// The remedy this setting is (see [`Family`]).
    pub fn family(&self) -> Family {
        if self.postcopy {
            Family::Postcopy
        } else if self.auto_converge {
            Family::AutoConverge
        } else if self.xbzrle_cache > 0.0 {
            Family::Xbzrle
        } else if self.multifd_channels > 0 || self.compression {
            Family::Multifd
        } else {
            Family::Plain
        }
    }
}

/// Why a setting works, in words.
fn why(s: &Setting, p: &Prediction, q: &Question, c: &Constants) -> String {
    let rate = crate::send_rate(&s.inputs(q), c);
    let mut parts = Vec::new();
    if s.postcopy {
        parts.push(format!(
            "post-copy after the first pass: the guest pauses {:.0} ms, then runs {:.1} s on the destination while its dirty pages follow (the guest is lost if the link fails then)",
            p.downtime_ms.unwrap_or(0.0),
            p.postcopy_ms.unwrap_or(0.0) / 1e3
        ));
    } else if s.auto_converge {
        parts.push(format!(
            "auto-converge throttles the guest up to {:.0} % until its dirtying fits",
            p.max_throttle_pct
        ));
    } else if q.dirty_rate < rate {
        parts.push(format!(
            "the link ({:.0} MB/s) outpaces the dirty rate ({:.1} MB/s): {} passes",
            rate / 1e6,
            q.dirty_rate / 1e6,
            p.passes
        ));
    } else {
        parts.push(format!(
            "the {:.0} ms limit holds what a pass dirties: {} passes",
            s.downtime_limit_ms, p.passes
        ));
    }
    if s.compression {
        parts.push(format!(
            "zstd over {} channels sends {:.0} % compressible pages smaller",
            s.multifd_channels,
            q.compressibility * 100.0
        ));
    }
    if s.xbzrle_cache > 0.0 {
        parts.push(format!(
            "XBZRLE ({:.0} MiB cache) re-sends changed bytes only",
            s.xbzrle_cache / 1048576.0
        ));
    }
    if s.bandwidth_share < 1.0 {
        parts.push(format!(
            "leaves {:.0} % of the link to other traffic",
            (1.0 - s.bandwidth_share) * 100.0
        ));
    }
    if s.auto_converge || s.compression || s.xbzrle_cache > 0.0 {
        // The remainder is fitted on plain pre-copy runs only.
        parts.push("its pause is outside the model (fitted on plain pre-copy)".into());
    }
    parts.join("; ")
}

fn advice(s: Setting, p: Prediction, q: &Question, c: &Constants) -> Advice {
    Advice {
        why: why(&s, &p, q, c),
        intrusion: s.intrusion(),
        family: s.family(),
        setting: s,
        predicted: p,
    }
}

/// Every valid setting with its prediction.
fn predicted(q: &Question, c: &Constants) -> Vec<(Setting, Prediction)> {
    grid(q)
        .into_iter()
        .filter(Setting::valid)
        .map(|s| (s, predict(&s.inputs(q), c)))
        .collect()
}

/// The best of one family's settings that meet the target: the fastest,
/// then (among those as fast within noise) the shortest pause, then
/// (among those alike within noise) the least intrusive, uncapped and
/// with the fewest channels and smallest cache.
fn family_best(mut ok: Vec<(Setting, Prediction)>) -> Option<(Setting, Prediction)> {
    let fastest = ok
        .iter()
        .map(|(_, p)| p.total_time_ms)
        .fold(f64::INFINITY, f64::min);
    ok.retain(|(_, p)| p.total_time_ms <= fastest * (1.0 + TIME_NOISE));
    let shortest = ok
        .iter()
        .filter_map(|(_, p)| p.downtime_ms)
        .fold(f64::INFINITY, f64::min);
    ok.retain(|(_, p)| {
        p.downtime_ms.unwrap_or(f64::MAX)
            <= shortest + (DOWN_NOISE_SHARE * shortest).max(DOWN_NOISE_MS)
    });
    ok.into_iter().min_by(|(a, pa), (b, pb)| {
        a.intrusion()
            .cmp(&b.intrusion())
            .then(b.bandwidth_share.total_cmp(&a.bandwidth_share))
            .then(a.multifd_channels.cmp(&b.multifd_channels))
            .then(a.xbzrle_cache.total_cmp(&b.xbzrle_cache))
            .then(pa.total_time_ms.total_cmp(&pb.total_time_ms))
            .then(
                pa.downtime_ms
                    .unwrap_or(f64::MAX)
                    .total_cmp(&pb.downtime_ms.unwrap_or(f64::MAX)),
            )
            .then(a.downtime_limit_ms.total_cmp(&b.downtime_limit_ms))
    })
}

/// The settings that meet `q`'s targets: one per [`Family`] (its best:
/// the fastest, then the shortest pause, then the least intrusive;
/// settings that differ only in what does not change the outcome beyond
/// the model's noise are one), least intrusive
/// first. A family is left out when a less intrusive one shown does as
/// well within noise — except post-copy's best, which is always there
/// when it meets the target, beside the best pre-copy setting.
pub fn advise(q: &Question, c: &Constants) -> Vec<Advice> {
    let ok: Vec<(Setting, Prediction)> = predicted(q, c)
        .into_iter()
        .filter(|(_, p)| meets(p, q))
        .collect();
    let mut kept: Vec<(Setting, Prediction)> = Vec::new();
    for family in [
        Family::Plain,
        Family::Multifd,
        Family::Xbzrle,
        Family::AutoConverge,
        Family::Postcopy,
    ] {
        let Some((s, p)) = family_best(
            ok.iter()
                .filter(|(s, _)| s.family() == family)
                .copied()
                .collect(),
        ) else {
            continue;
        };
        let dominated = kept.iter().any(|(_, kp)| as_good(kp, &p));
        if !dominated || family == Family::Postcopy {
            kept.push((s, p));
        }
    }
    kept.into_iter().map(|(s, p)| advice(s, p, q, c)).collect()
}

/// The rows to show of `all` (as [`advise`] ranks them) when `top` are
/// asked for: the first `top`, and the best post-copy and the best
/// pre-copy setting beside them when both meet the target, whatever
/// `top` says.
pub fn shown(all: &[Advice], top: usize) -> Vec<&Advice> {
    let mut out: Vec<&Advice> = all.iter().take(top).collect();
    for postcopy in [false, true] {
        let has = out.iter().any(|a| a.setting.postcopy == postcopy);
        if let Some(best) = all.iter().find(|a| a.setting.postcopy == postcopy) {
            if !has {
                out.push(best);
            }
        }
    }
    out
}

/// When nothing meets the targets: the setting that comes closest (the
/// least excess over the worse of the two targets, downtime and total
/// time, each as a multiple of its target; of those within
/// [`TIME_NOISE`] of it, the best as a family's best is chosen: the
/// fastest, the shortest pause, the least intrusive), or `None` when
/// none completes within the timeout. Where the downtime binds, that
/// tolerance is 5 % of the excess pause (15 ms over a 300 ms target,
/// within the model's [`DOWN_NOISE_MS`]), and the fastest of those wins.
pub fn closest(q: &Question, c: &Constants) -> Option<Advice> {
    let excess = |p: &Prediction| {
        let down = p.downtime_ms.unwrap_or(f64::MAX) / q.max_downtime_ms;
        let time = q.max_time_ms.map_or(0.0, |m| p.total_time_ms / m);
        down.max(time)
    };
    let done: Vec<(Setting, Prediction)> = predicted(q, c)
        .into_iter()
        .filter(|(_, p)| p.converges)
        .collect();
    let least = done
        .iter()
        .map(|(_, p)| excess(p))
        .fold(f64::INFINITY, f64::min);
    let near: Vec<(Setting, Prediction)> = done
        .into_iter()
        .filter(|(_, p)| excess(p) <= least * (1.0 + TIME_NOISE))
        .collect();
    family_best(near).map(|(s, p)| advice(s, p, q, c))
}

#[cfg(test)]
mod advise_tests;
