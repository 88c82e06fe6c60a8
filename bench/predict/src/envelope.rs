//! What a fitted model rests on: the ranges of RAM, link rate, dirty
//! rate and downtime limit of the runs it was fitted on, and which
//! settings those runs used, so a prediction outside them says so
//! instead of passing an extrapolation off as a measurement.

use serde::{Deserialize, Serialize};

use crate::{Constants, Inputs, Switch};
use migbench_model::{Outcome, RunRecord};

/// Which settings the fitted runs used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Seen {
    /// A `max-bandwidth` below the link.
    pub bandwidth_cap: bool,
    /// multifd channels.
    pub multifd: bool,
    /// multifd compression.
    pub compression: bool,
    /// XBZRLE.
    pub xbzrle: bool,
    /// Auto-converge.
    pub auto_converge: bool,
    /// Post-copy.
    pub postcopy: bool,
    /// Nova's downtime stepping.
    pub stepping: bool,
    /// A completion timeout.
    pub completion_timeout: bool,
    /// Block migration (the disk copied first).
    pub block: bool,
}

/// The ranges a model was fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Runs it was fitted on.
    pub runs: usize,
    /// Guest RAM, bytes (least, most).
    pub ram: (f64, f64),
    /// Link rate, bits/s.
    pub link_bps: (f64, f64),
    /// Workload dirty rate, bytes/s.
    pub dirty_rate: (f64, f64),
    /// Downtime limit, ms.
    pub downtime_limit_ms: (f64, f64),
    /// Settings among those runs.
    pub seen: Seen,
}

/// Fitted constants and what they rest on (`migbench predict --fit`
/// stores this).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The constants.
    pub constants: Constants,
    /// The runs' ranges.
    pub envelope: Envelope,
}

/// Where `migbench predict --fit` stores a model (in the results root).
pub const MODEL_FILE: &str = "results/model.json";

impl Model {
    /// This machine's model ([`Constants::LAB`], fixtures' ranges).
    pub const LAB: Model = Model {
        constants: Constants::LAB,
        envelope: Envelope::LAB,
    };

    /// The model to predict with: the file at `path` (it must exist), else
    /// [`MODEL_FILE`] if a fit stored one, else [`Model::LAB`]; with where
    /// it came from, in words. The error names the file.
    pub fn load(path: Option<&std::path::Path>) -> Result<(Model, String), String> {
        let (file, must) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (std::path::PathBuf::from(MODEL_FILE), false),
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let m: Model = serde_json::from_str(&text).map_err(|e| {
                    format!(
                        "{}: not a model stored by `migbench predict --fit`: {e}",
                        file.display()
                    )
                })?;
                m.constants
                    .out_of_range()
                    .map_or(Ok(()), |why| Err(format!("{}: {why}", file.display())))?;
                Ok((
                    m,
                    format!("fitted on {} runs, {}", m.envelope.runs, file.display()),
                ))
            }
            Err(e) if must => Err(format!("--model {}: {e}", file.display())),
            Err(_) => Ok((Model::LAB, "this lab's defaults, TCG on 2 cores".into())),
        }
    }
}

const MIB: f64 = 1048576.0;

fn widen(r: Option<(f64, f64)>, x: f64) -> Option<(f64, f64)> {
    Some(r.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))))
}

impl Envelope {
    /// The fixtures' ranges (`fixtures/model/*.jsonl`; the predict test
    /// compares them with the fixtures').
    pub const LAB: Envelope = Envelope {
        runs: 94,
        ram: (256.0 * MIB, 1024.0 * MIB),
        link_bps: (100e6, 1e9),
        dirty_rate: (0.0, 40e6),
        downtime_limit_ms: (30.0, 1000.0),
        seen: Seen {
            bandwidth_cap: true,
            multifd: false,
            compression: false,
            xbzrle: false,
            auto_converge: false,
            postcopy: false,
            stepping: false,
            completion_timeout: false,
            block: false,
        },
    };

    /// The ranges of the completed and timed-out runs among `records`.
    pub fn of(records: &[RunRecord]) -> Envelope {
        let mut e = Envelope {
            runs: 0,
            seen: Seen::default(),
            ..Envelope::LAB
        };
        let (mut ram, mut link, mut dirty, mut limit) = (None, None, None, None);
        for r in records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Completed | Outcome::TimedOut))
        {
            let i = Inputs::of(&r.params);
            e.runs += 1;
            ram = widen(ram, i.ram);
            link = widen(link, i.link_bps);
            dirty = widen(dirty, i.dirty_rate);
            limit = widen(limit, i.downtime_limit_ms);
            e.seen.merge(&seen(&i));
        }
        e.ram = ram.unwrap_or(e.ram);
        e.link_bps = link.unwrap_or(e.link_bps);
        e.dirty_rate = dirty.unwrap_or(e.dirty_rate);
        e.downtime_limit_ms = limit.unwrap_or(e.downtime_limit_ms);
        e
    }

    /// What about `i` lies outside these ranges, in words (empty when
    /// nothing does).
    pub fn outside(&self, i: &Inputs) -> Vec<String> {
        let mut out = Vec::new();
        let mut range = |what: &str, x: f64, (lo, hi): (f64, f64), show: &dyn Fn(f64) -> String| {
            // 10 % slack: a fitted range is not a cliff.
            if x < lo * 0.9 || x > hi * 1.1 {
                out.push(format!(
                    "{what} {} outside the fitted {}–{}",
                    show(x),
                    show(lo),
                    show(hi)
                ));
            }
        };
        range("RAM", i.ram, self.ram, &|b| format!("{:.0} MiB", b / MIB));
        range("link", i.link_bps, self.link_bps, &|b| {
            format!("{:.0} Mbit/s", b / 1e6)
        });
        range("dirty rate", i.dirty_rate, self.dirty_rate, &|b| {
            format!("{:.1} MB/s", b / 1e6)
        });
        range(
            "downtime limit",
            i.downtime_limit_ms,
            self.downtime_limit_ms,
            &|b| format!("{b:.0} ms"),
        );
        let s = seen(i);
        let unfitted = [
            (s.multifd && !self.seen.multifd, "multifd"),
            (s.compression && !self.seen.compression, "compression"),
            (s.xbzrle && !self.seen.xbzrle, "XBZRLE"),
            (s.auto_converge && !self.seen.auto_converge, "auto-converge"),
            (s.postcopy && !self.seen.postcopy, "post-copy"),
            (s.stepping && !self.seen.stepping, "downtime stepping"),
            (
                s.completion_timeout && !self.seen.completion_timeout,
                "completion timeout",
            ),
            (s.block && !self.seen.block, "block migration"),
        ];
        for (_, what) in unfitted.iter().filter(|(u, _)| *u) {
            out.push(format!("{what}: modelled by rule, not fitted on runs"));
        }
        out
    }
}

impl Seen {
    fn merge(&mut self, o: &Seen) {
        self.bandwidth_cap |= o.bandwidth_cap;
        self.multifd |= o.multifd;
        self.compression |= o.compression;
        self.xbzrle |= o.xbzrle;
        self.auto_converge |= o.auto_converge;
        self.postcopy |= o.postcopy;
        self.stepping |= o.stepping;
        self.completion_timeout |= o.completion_timeout;
        self.block |= o.block;
    }
}

/// The settings one run uses.
fn seen(i: &Inputs) -> Seen {
    Seen {
        bandwidth_cap: i.max_bandwidth.is_some(),
        multifd: i.multifd_channels > 0,
        compression: i.compression,
        xbzrle: i.xbzrle_cache > 0.0,
        auto_converge: i.auto_converge.is_some(),
        postcopy: !matches!(i.postcopy, Switch::Off | Switch::Allowed),
        stepping: i.downtime_steps > 0,
        completion_timeout: i.completion_timeout_ms > 0.0,
        block: i.disk_bytes > 0.0,
    }
}
