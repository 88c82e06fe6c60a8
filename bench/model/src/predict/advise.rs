//! Advice before any run: every combination of the settings a user can
//! turn (downtime limit, bandwidth cap, multifd and compression, XBZRLE,
//! auto-converge, post-copy) predicted for one guest on one link, those
//! that meet the targets ranked — least intrusive first, then fastest —
//! each with why; and, when none does, the link the guest would need.

use serde::Serialize;

use super::{predict, Constants, Inputs, Prediction, Switch};

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

/// Why a setting works, in words.
fn why(s: &Setting, p: &Prediction, q: &Question, c: &Constants) -> String {
    let rate = super::send_rate(&s.inputs(q), c);
    let mut parts = Vec::new();
    if s.postcopy {
        parts.push(format!(
            "post-copy after the first pass: a {:.0} ms pause, then {:.1} s of the guest running on the destination while its dirty pages follow (the guest is lost if the link fails then)",
            p.downtime_ms.unwrap_or(0.0),
            p.postcopy_ms.unwrap_or(0.0) / 1e3
        ));
    } else if s.auto_converge {
        parts.push(format!(
            "auto-converge throttles the guest up to {:.0} % until its dirtying fits",
            p.max_throttle_pct
        ));
    } else if q.dirty_rate * 1.0 < rate {
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
    parts.join("; ")
}

/// The settings that meet `q`'s targets, best first: the least intrusive,
/// then the shortest total time, then the shortest downtime; a setting
/// is left out when one less intrusive does as well.
pub fn advise(q: &Question, c: &Constants) -> Vec<Advice> {
    let mut ok: Vec<(Setting, Prediction)> = grid(q)
        .into_iter()
        .filter(Setting::valid)
        .map(|s| (s, predict(&s.inputs(q), c)))
        .filter(|(_, p)| meets(p, q))
        .collect();
    ok.sort_by(|(a, pa), (b, pb)| {
        a.intrusion()
            .cmp(&b.intrusion())
            .then(pa.total_time_ms.total_cmp(&pb.total_time_ms))
            .then(
                pa.downtime_ms
                    .unwrap_or(f64::MAX)
                    .total_cmp(&pb.downtime_ms.unwrap_or(f64::MAX)),
            )
            // An uncapped link and a smaller limit when all else ties.
            .then(pb.total_time_ms.total_cmp(&pa.total_time_ms))
            .then(b.bandwidth_share.total_cmp(&a.bandwidth_share))
            .then(a.downtime_limit_ms.total_cmp(&b.downtime_limit_ms))
    });
    // Keep a setting only when nothing less intrusive already kept does
    // as well (more multifd channels on a link one stream fills, say).
    let mut kept: Vec<(Setting, Prediction)> = Vec::new();
    for (s, p) in ok {
        let down = p.downtime_ms.unwrap_or(f64::MAX);
        let dominated = kept.iter().any(|(k, kp)| {
            k.intrusion() <= s.intrusion()
                && kp.total_time_ms <= p.total_time_ms * 1.001
                && kp.downtime_ms.unwrap_or(f64::MAX) <= down * 1.001
        });
        if !dominated {
            kept.push((s, p));
        }
    }
    kept.into_iter()
        .map(|(s, p)| Advice {
            why: why(&s, &p, q, c),
            intrusion: s.intrusion(),
            setting: s,
            predicted: p,
        })
        .collect()
}

/// When nothing meets the targets: the setting that comes closest (the
/// shortest downtime among those that complete in time), or `None` when
/// none completes.
pub fn closest(q: &Question, c: &Constants) -> Option<Advice> {
    let relaxed = Question {
        max_downtime_ms: f64::MAX,
        ..*q
    };
    grid(q)
        .into_iter()
        .filter(Setting::valid)
        .map(|s| (s, predict(&s.inputs(q), c)))
        .filter(|(_, p)| meets(p, &relaxed))
        .min_by(|(a, pa), (b, pb)| {
            pa.downtime_ms
                .unwrap_or(f64::MAX)
                .total_cmp(&pb.downtime_ms.unwrap_or(f64::MAX))
                .then(a.intrusion().cmp(&b.intrusion()))
                .then(pa.total_time_ms.total_cmp(&pb.total_time_ms))
        })
        .map(|(s, p)| Advice {
            why: why(&s, &p, q, c),
            intrusion: s.intrusion(),
            setting: s,
            predicted: p,
        })
}

/// The slowest link over which plain pre-copy (with the downtime limit
/// that fits the target) meets the targets, bits/s, or `None` when even
/// 400 Gbit/s does not.
pub fn link_needed(q: &Question, c: &Constants) -> Option<f64> {
    let works = |bps: f64| {
        let r = Question {
            link_bps: bps,
            ..*q
        };
        LIMITS_MS.iter().any(|&l| {
            let s = Setting {
                downtime_limit_ms: l,
                bandwidth_share: 1.0,
                multifd_channels: 0,
                compression: false,
                xbzrle_cache: 0.0,
                auto_converge: false,
                postcopy: false,
            };
            meets(&predict(&s.inputs(&r), c), &r)
        })
    };
    let (mut lo, mut hi) = (1e6_f64, 400e9_f64);
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

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1073741824.0;

    fn q(dirty_mbs: f64, link_gbit: f64) -> Question {
        Question {
            ram: 2.0 * GIB,
            working_set: 0.5 * GIB,
            dirty_rate: dirty_mbs * 1e6,
            compressibility: 0.0,
            link_bps: link_gbit * 1e9,
            max_downtime_ms: 300.0,
            max_time_ms: None,
            timeout_ms: 3_600_000.0,
        }
    }

    #[test]
    fn the_grid_holds_ten_thousand_settings() {
        assert_eq!(grid(&q(50.0, 1.0)).len(), 10_240);
    }

    #[test]
    fn a_quiet_guest_needs_nothing_but_a_limit() {
        let a = advise(&q(10.0, 1.0), &Constants::LAB);
        assert!(!a.is_empty());
        assert_eq!(a[0].intrusion, 0, "{:?}", a[0]);
        assert!(a[0].predicted.downtime_ms.unwrap() <= 300.0);
        assert!(a[0].why.contains("outpaces"), "{}", a[0].why);
        // Ranked: intrusion never falls down the list.
        assert!(a.windows(2).all(|w| w[0].intrusion <= w[1].intrusion));
    }

    #[test]
    fn a_guest_that_outpaces_the_link_gets_a_stronger_remedy_and_a_link() {
        let hard = q(200.0, 1.0);
        let a = advise(&hard, &Constants::LAB);
        assert!(!a.is_empty());
        assert!(a[0].intrusion > 0, "{:?}", a[0]);
        assert!(a.iter().all(|x| x.setting.auto_converge
            || x.setting.postcopy
            || x.setting.xbzrle_cache > 0.0
            || x.setting.compression));
        // Plain pre-copy would need a faster link than 1 Gbit.
        let need = link_needed(&hard, &Constants::LAB).unwrap();
        assert!(need > 1.6e9 && need < 40e9, "{need}");
        // A 10-minute cap: a 10 Gbit link meets it plainly.
        let fast = Question {
            link_bps: 10e9,
            max_time_ms: Some(600_000.0),
            ..hard
        };
        assert_eq!(advise(&fast, &Constants::LAB)[0].intrusion, 0);
    }

    #[test]
    fn an_impossible_target_has_no_advice() {
        let mut x = q(10.0, 1.0);
        x.max_downtime_ms = 1.0;
        assert!(advise(&x, &Constants::LAB).is_empty());
        assert_eq!(link_needed(&x, &Constants::LAB), None);
        // The closest: the shortest pause there is, above the target.
        let near = closest(&x, &Constants::LAB).unwrap();
        assert!(near.predicted.downtime_ms.unwrap() > 1.0);
    }

    #[test]
    fn settings_that_add_nothing_are_left_out() {
        let a = advise(&q(10.0, 1.0), &Constants::LAB);
        // On a link one stream fills, more multifd channels add nothing.
        assert!(
            a.iter()
                .all(|x| x.setting.multifd_channels == 0 || x.setting.compression),
            "{a:?}"
        );
    }
}
