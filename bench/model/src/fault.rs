//! Faults injected into a migration (`[fault] inject`): what breaks
//! ([`FaultKind`]), when it strikes ([`FaultAt`]), for how long, spelled
//! as one phrase — `"link-down for 3s at 5s"`, `"link-degrade to 10mbit
//! at pass 2"`, `"dst-kill at postcopy"` — and what the run saw
//! ([`FaultRecord`]: where the guest ended, whether it answers, how long
//! until the migration recovered or the failure was noticed).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::scalar::{string_serde, ScalarField};
use crate::units::{BitRate, Dur};

/// What breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Nothing: the control run.
    None,
    /// The migration link goes down (both ends' interfaces) for a while.
    LinkDown,
    /// The migration link goes down and up every [`FLAP_PERIOD`] for a while.
    LinkFlap,
    /// The migration link's rate drops to `to` (for a while, or to the end).
    LinkDegrade,
    /// The destination QEMU is killed (SIGKILL).
    DstKill,
    /// The source QEMU is killed (SIGKILL): a pre-copy guest is lost.
    SrcKill,
    /// The shared-nbd storage host is unreachable for a while.
    StorageDown,
    /// The guest's application hangs for a while (its echo and workload
    /// stop): a guest-side stall to tell apart from the migration's.
    AgentStall,
}

/// Half-period of a link flap: down this long, up this long, and again.
pub const FLAP_PERIOD: std::time::Duration = std::time::Duration::from_millis(500);

const KINDS: [(FaultKind, &str); 8] = [
    (FaultKind::None, "none"),
    (FaultKind::LinkDown, "link-down"),
    (FaultKind::LinkFlap, "link-flap"),
    (FaultKind::LinkDegrade, "link-degrade"),
    (FaultKind::DstKill, "dst-kill"),
    (FaultKind::SrcKill, "src-kill"),
    (FaultKind::StorageDown, "storage-down"),
    (FaultKind::AgentStall, "agent-stall"),
];

impl FaultKind {
    /// The scenario's name of the kind.
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("none", |k| k.1)
    }

    /// Whether the fault lasts a while (and ends by itself).
    pub fn lasts(self) -> bool {
        matches!(
            self,
            FaultKind::LinkDown
                | FaultKind::LinkFlap
                | FaultKind::LinkDegrade
                | FaultKind::StorageDown
                | FaultKind::AgentStall
        )
    }
}

/// When a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultAt {
    /// This long after `migrate`.
    After(Dur),
    /// When pre-copy pass N begins (QEMU's dirty-sync count reaches N).
    Pass(u32),
    /// At switchover: the source paused before it (pause-before-switchover),
    /// the guest not yet stopped.
    Switchover,
    /// As soon as post-copy runs (the guest on the destination, pages still
    /// on the source).
    Postcopy,
}

impl fmt::Display for FaultAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultAt::After(d) => write!(f, "{d}"),
            FaultAt::Pass(n) => write!(f, "pass {n}"),
            FaultAt::Switchover => f.write_str("switchover"),
            FaultAt::Postcopy => f.write_str("postcopy"),
        }
    }
}

impl FaultAt {
    fn parse(s: &str) -> Result<FaultAt, String> {
        let t = s.trim();
        match t {
            "switchover" => return Ok(FaultAt::Switchover),
            "postcopy" | "post-copy" => return Ok(FaultAt::Postcopy),
            _ => {}
        }
        if let Some(n) = t.strip_prefix("pass") {
            return match n.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Ok(FaultAt::Pass(n)),
                _ => Err(format!(
                    "`at {t}`: a pass is a number from 1, e.g. \"at pass 2\""
                )),
            };
        }
        Dur::parse_str(t).map(FaultAt::After).map_err(|e| {
            format!("`at {t}` is not a time after migrate (\"5s\"), \"pass N\", \"switchover\" or \"postcopy\": {e}")
        })
    }
}

/// One fault: what, when, how long, and for a degrade the rate it drops to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fault {
    /// What breaks.
    pub kind: FaultKind,
    /// When.
    pub at: FaultAt,
    /// How long (faults that last; a degrade without it lasts to the end).
    pub duration: Option<Dur>,
    /// The rate a degraded link drops to.
    pub rate: Option<BitRate>,
}

/// How long a lasting fault lasts unless the scenario says.
pub const DEFAULT_DURATION: Dur = Dur(std::time::Duration::from_secs(3));
/// When a fault strikes unless the scenario says.
pub const DEFAULT_AT: FaultAt = FaultAt::After(Dur(std::time::Duration::from_secs(5)));

impl Fault {
    /// No fault.
    pub const NONE: Fault = Fault {
        kind: FaultKind::None,
        at: DEFAULT_AT,
        duration: None,
        rate: None,
    };

    /// Whether there is a fault at all.
    pub fn is_some(&self) -> bool {
        self.kind != FaultKind::None
    }
}

impl Default for Fault {
    fn default() -> Self {
        Fault::NONE
    }
}

impl ScalarField for Fault {
    const EXPECTING: &'static str = "\"none\" or \"KIND [to RATE] [for DURATION] [at WHEN]\": KIND is link-down, link-flap, link-degrade (needs \"to RATE\"), dst-kill, src-kill, storage-down or agent-stall; WHEN is a time after migrate (\"5s\", the default), \"pass N\", \"switchover\" or \"postcopy\"; DURATION defaults to 3s (a degrade lasts to the end without one), e.g. \"link-down for 3s at pass 2\"";

    fn parse_str(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let Some((&first, rest)) = words.split_first() else {
            return Err(format!("an empty fault: expected {}", Self::EXPECTING));
        };
        let kind = KINDS
            .iter()
            .find(|(_, n)| *n == first)
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = KINDS.iter().map(|k| k.1).collect();
                format!(
                    "`{first}` is not a fault; the faults are {}",
                    names.join(", ")
                )
            })?;
        let mut fault = Fault {
            kind,
            ..Fault::NONE
        };
        if kind == FaultKind::None {
            return match rest.is_empty() {
                true => Ok(fault),
                false => Err(format!("`{s}`: \"none\" takes nothing after it")),
            };
        }
        // Split the rest at the keywords: to, for, at.
        let mut i = 0;
        let mut seen = Vec::new();
        while i < rest.len() {
            let key = rest[i];
            let end = rest[i + 1..]
                .iter()
                .position(|w| matches!(*w, "to" | "for" | "at"))
                .map_or(rest.len(), |p| i + 1 + p);
            let value = rest[i + 1..end].join(" ");
            if value.is_empty() {
                return Err(format!("`{s}`: `{key}` needs a value"));
            }
            if seen.contains(&key) {
                return Err(format!("`{s}`: `{key}` is written twice"));
            }
            seen.push(key);
            match key {
                "to" if kind == FaultKind::LinkDegrade => {
                    let r = BitRate::parse_str(&value).map_err(|e| format!("`to {value}`: {e}"))?;
                    if r.0 < 8_000 {
                        return Err(format!(
                            "`to {value}`: a degraded link needs at least 8kbit"
                        ));
                    }
                    fault.rate = Some(r);
                }
                "to" => return Err(format!("`{s}`: only link-degrade takes `to RATE`")),
                "for" if kind.lasts() => {
                    let d = Dur::parse_str(&value).map_err(|e| format!("`for {value}`: {e}"))?;
                    if d.0.is_zero() || d.0 > std::time::Duration::from_secs(600) {
                        return Err(format!("`for {value}`: a fault lasts from 1ms to 10min"));
                    }
                    fault.duration = Some(d);
                }
                "for" => {
                    return Err(format!(
                        "`{s}`: {} strikes once, it takes no `for DURATION`",
                        kind.name()
                    ))
                }
                "at" => fault.at = FaultAt::parse(&value)?,
                other => {
                    return Err(format!(
                        "`{s}`: `{other}` is not `to`, `for` or `at`; expected {}",
                        Self::EXPECTING
                    ))
                }
            }
            i = end;
        }
        if kind == FaultKind::LinkDegrade && fault.rate.is_none() {
            return Err(format!(
                "`{s}`: link-degrade needs the rate it drops to, e.g. \"link-degrade to 10mbit\""
            ));
        }
        if kind.lasts() && kind != FaultKind::LinkDegrade && fault.duration.is_none() {
            fault.duration = Some(DEFAULT_DURATION);
        }
        Ok(fault)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        if self.kind == FaultKind::None {
            return Ok(());
        }
        if let Some(r) = self.rate {
            write!(f, " to {r}")?;
        }
        if let Some(d) = self.duration {
            write!(f, " for {d}")?;
        }
        write!(f, " at {}", self.at)
    }
}
string_serde!(Fault);

/// Where the guest ended after a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestLocation {
    /// Running on the source host.
    Source,
    /// Running on the destination host.
    Destination,
    /// Running nowhere (its QEMU is gone, or its state is split between hosts).
    Lost,
}

impl fmt::Display for GuestLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuestLocation::Source => "source",
            GuestLocation::Destination => "destination",
            GuestLocation::Lost => "lost",
        })
    }
}

/// What a run with a fault saw (`fault` in `runs.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// The fault, as written.
    pub fault: Fault,
    /// Whether it struck (a migration can end before its moment).
    pub struck: bool,
    /// When it struck, ms after `migrate`.
    pub struck_ms: Option<f64>,
    /// The migration's state when it struck (QEMU's name).
    pub phase: Option<String>,
    /// When it was lifted, ms after `migrate` (faults that last).
    pub cleared_ms: Option<f64>,
    /// Where the guest ended.
    pub guest: GuestLocation,
    /// Whether the guest answered there after the run.
    pub answers: bool,
    /// From the strike to the migration's end (completed, or the failure
    /// noticed), ms.
    pub to_end_ms: Option<f64>,
    /// From the strike to the post-copy migration running again after a
    /// recovery, ms.
    pub to_recovery_ms: Option<f64>,
    /// Post-copy recovery attempts (`migrate-recover` + resume).
    pub recover_attempts: u32,
    /// The longest gap in the probe's replies that overlapped the fault, ms.
    pub probe_gap_ms: Option<f64>,
    /// Processes, namespaces, taps or directories the run left behind
    /// (counted after teardown).
    pub leftovers: Option<u32>,
    /// What went wrong injecting or lifting the fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Fault, String> {
        Fault::parse_str(s)
    }

    #[test]
    fn phrases_parse_with_defaults_and_round_trip() {
        let f = parse("link-down").unwrap();
        assert_eq!(f.at, DEFAULT_AT);
        assert_eq!(f.duration, Some(DEFAULT_DURATION));
        let f = parse("link-degrade to 10mbit at pass 2").unwrap();
        assert_eq!(f.rate, Some(BitRate(10_000_000)));
        assert_eq!(f.duration, None, "a degrade lasts to the end");
        assert_eq!(f.at, FaultAt::Pass(2));
        for s in [
            "none",
            "link-down for 3s at 5s",
            "link-flap for 4s at pass 2",
            "link-degrade to 10mbit for 2s at 1s",
            "dst-kill at switchover",
            "src-kill at postcopy",
            "storage-down for 2s at 3s",
            "agent-stall for 1500ms at 2s",
        ] {
            let f = parse(s).unwrap();
            assert_eq!(f.to_string(), s);
            assert_eq!(parse(&f.to_string()).unwrap(), f);
        }
    }

    #[test]
    fn refusals_say_what_is_allowed() {
        let e = parse("link-dwn").unwrap_err();
        assert!(e.contains("link-down, link-flap"), "{e}");
        assert!(parse("dst-kill for 3s")
            .unwrap_err()
            .contains("strikes once"));
        assert!(parse("link-degrade")
            .unwrap_err()
            .contains("needs the rate"));
        assert!(parse("link-down to 1mbit")
            .unwrap_err()
            .contains("only link-degrade"));
        assert!(parse("link-down at pass 0").unwrap_err().contains("from 1"));
        assert!(parse("link-down at soon")
            .unwrap_err()
            .contains("switchover"));
        assert!(parse("link-down at 1s at 2s")
            .unwrap_err()
            .contains("twice"));
        assert!(parse("link-down for")
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse("none at 5s").unwrap_err().contains("nothing after"));
        assert!(parse("").is_err());
    }
}
