//! Migration and storage settings as scenario files spell them: string
//! choices ([`StorageMode`], [`Compression`], ...), `"off"`-or-value knobs
//! ([`Channels`], [`Xbzrle`], [`AutoConverge`], [`Postcopy`],
//! [`DirtyLimit`]), [`Announce`] timing and the [`BandwidthCap`].

use std::fmt;

use crate::scalar::{string_serde, ScalarField};
use crate::units::{ByteRate, Dur, Size};

/// A migration bandwidth cap: a byte rate or `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BandwidthCap {
    /// No cap from QEMU: the link decides.
    Unlimited,
    /// QEMU's `max-bandwidth` in bytes per second.
    Limit(ByteRate),
}

impl ScalarField for BandwidthCap {
    const EXPECTING: &'static str = "\"unlimited\" or a byte rate such as \"50MB/s\"";
    fn parse_str(s: &str) -> Result<Self, String> {
        if s.trim() == "unlimited" {
            return Ok(BandwidthCap::Unlimited);
        }
        let r = ByteRate::parse_str(s)?;
        if r.0 == 0 {
            return Err(
                "a bandwidth cap of 0 would never migrate: use \"unlimited\" or a positive rate"
                    .into(),
            );
        }
        Ok(BandwidthCap::Limit(r))
    }
}

impl fmt::Display for BandwidthCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BandwidthCap::Unlimited => write!(f, "unlimited"),
            BandwidthCap::Limit(r) => write!(f, "{r}"),
        }
    }
}
string_serde!(BandwidthCap);

/// Define a string enum usable as a (list-able) scenario field.
macro_rules! choice {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            /// Every choice, in the order written.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }

        impl ScalarField for $name {
            const EXPECTING: &'static str = concat!("one of:", $(" \"", $text, "\""),+);
            fn parse_str(s: &str) -> Result<Self, String> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("`{other}` is not {}", Self::EXPECTING)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($name::$variant => $text),+ })
            }
        }
        string_serde!($name);
    };
}

// `[backend]`'s choices: what drives the migration and how libvirt carries
// it (declared here, after `choice!`, which the module uses).
mod backend;
pub use backend::{Backend, Transport};

choice!(
    /// Where the guest's disk lives and how it moves.
    StorageMode {
        /// No disk: RAM-only migration.
        None = "none",
        /// One image opened by both hosts (NFS/SAN-like): only RAM moves.
        Shared = "shared",
        /// One image served over NBD by qemu-storage-daemon from a storage
        /// host on its own link: storage I/O crosses a network.
        SharedNbd = "shared-nbd",
        /// The destination gets its own image; the disk is mirrored over NBD
        /// before switchover (libvirt --copy-storage-all).
        Block = "block",
        /// qcow2 overlays on a backing image both hosts have; only the
        /// overlay is mirrored (libvirt --copy-storage-inc).
        BlockIncremental = "block-incremental",
    }
);

choice!(
    /// Disk image format.
    DiskFormat {
        /// qcow2.
        Qcow2 = "qcow2",
        /// raw.
        Raw = "raw",
    }
);

choice!(
    /// Order of the guest's disk writes.
    DiskPattern {
        /// Block after block, wrapping at the end of the disk.
        Sequential = "sequential",
        /// Uniformly random blocks.
        Random = "random",
    }
);

choice!(
    /// How multifd channels compress pages.
    Compression {
        /// Pages go as they are.
        None = "none",
        /// zlib (QEMU 5.0+).
        Zlib = "zlib",
        /// Zstandard (QEMU 5.0+, if built with it).
        Zstd = "zstd",
        /// Intel QPL (QEMU 9.0+, if built with it).
        Qpl = "qpl",
        /// UADK (QEMU 9.0+, if built with it).
        Uadk = "uadk",
    }
);

choice!(
    /// What the completion-timeout policy does when it fires.
    CompletionAction {
        /// Cancel the migration; the guest keeps running on the source.
        Abort = "abort",
        /// Finish now: switch to post-copy where `postcopy` allows it, else
        /// pause the guest so the last pass can complete (Nova's
        /// `live_migration_timeout_action = force_complete`).
        ForceComplete = "force-complete",
    }
);

/// Strip a leading `off`: `None` means the value was `off`.
fn unless_off(s: &str) -> Option<&str> {
    let t = s.trim();
    (t != "off").then_some(t)
}

macro_rules! off_or {
    // `"off"` or a `$inner` value that passes `$ok`, parsed and printed.
    ($t:ident, $off:ident, $on:ident($inner:ty), $ok:expr, $expecting:literal) => {
        impl ScalarField for $t {
            const EXPECTING: &'static str = $expecting;
            fn parse_str(s: &str) -> Result<Self, String> {
                let Some(t) = unless_off(s) else {
                    return Ok($t::$off);
                };
                let v = <$inner>::parse_str(t)?;
                let ok: fn(&$inner) -> bool = $ok;
                if !ok(&v) {
                    return Err(format!("`{s}` is not {}", Self::EXPECTING));
                }
                Ok($t::$on(v))
            }
        }
        off_or!($t, $off, $on);
    };
    // `"off"` or the one value of `$on`, printed as that value.
    ($t:ident, $off:ident, $on:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $t::$off => f.write_str("off"),
                    $t::$on(v) => write!(f, "{v}"),
                }
            }
        }
        off_or!($t, $t::$off);
    };
    ($t:ty, $off:path) => {
        impl Default for $t {
            fn default() -> Self {
                $off
            }
        }
        string_serde!($t);
    };
}

/// Multifd: `"off"` (one migration stream) or a channel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channels {
    /// Single-stream migration.
    Off,
    /// This many parallel multifd channels (QEMU 1–255).
    On(u32),
}

impl ScalarField for Channels {
    const EXPECTING: &'static str = "\"off\" or a channel count 1 – 255";
    fn parse_str(s: &str) -> Result<Self, String> {
        match unless_off(s) {
            None => Ok(Channels::Off),
            Some(n) => n
                .parse::<i64>()
                .map_err(|_| format!("`{s}` is not {}", Self::EXPECTING))
                .and_then(Self::parse_int),
        }
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        if !(1..=255).contains(&i) {
            return Err(format!("{i} is not {}", Self::EXPECTING));
        }
        Ok(Channels::On(i as u32))
    }
}

off_or!(Channels, Off, On);

/// The XBZRLE page cache: `"off"` or its size (a power of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Xbzrle {
    /// No delta compression.
    Off,
    /// Delta-compress re-sent pages against a cache of this size.
    Cache(Size),
}

off_or!(
    Xbzrle,
    Off,
    Cache(Size),
    |size| size.0 >= 4096 && size.0.is_power_of_two(),
    "\"off\" or a cache size that is a power of two, at least 4KiB (e.g. \"32MiB\")"
);

/// Auto-converge: `"off"`, `"on"` (QEMU's 20/10/99) or
/// `"initial/increment/max"` throttle percentages, e.g. `"30/20/90"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoConverge {
    /// No throttling.
    Off,
    /// Throttle the vCPUs when the dirty rate outpaces the link.
    On {
        /// First throttle, %.
        initial: u32,
        /// Added each time it is not enough, %.
        increment: u32,
        /// Ceiling, %.
        max: u32,
    },
}

impl ScalarField for AutoConverge {
    const EXPECTING: &'static str =
        "\"off\", \"on\" (20/10/99) or \"initial/increment/max\" percentages such as \"30/20/90\" (each 1 – 99, initial ≤ max)";
    fn parse_str(s: &str) -> Result<Self, String> {
        let Some(t) = unless_off(s) else {
            return Ok(AutoConverge::Off);
        };
        if t == "on" {
            return Ok(AutoConverge::On {
                initial: 20,
                increment: 10,
                max: 99,
            });
        }
        let bad = || format!("`{s}` is not {}", Self::EXPECTING);
        let v: Vec<u32> = t
            .split('/')
            .map(|p| p.trim().trim_end_matches('%').parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match v[..] {
            [initial, increment, max]
                if [initial, increment, max]
                    .iter()
                    .all(|p| (1..=99).contains(p))
                    && initial <= max =>
            {
                Ok(AutoConverge::On {
                    initial,
                    increment,
                    max,
                })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for AutoConverge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutoConverge::Off => f.write_str("off"),
            AutoConverge::On {
                initial,
                increment,
                max,
            } => write!(f, "{initial}/{increment}/{max}"),
        }
    }
}
off_or!(AutoConverge, AutoConverge::Off);

/// Post-copy: `"off"`; `"allowed"` (enabled, used only by a
/// force-complete policy); `"after N passes"`; `"after 30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Postcopy {
    /// Pre-copy only.
    Off,
    /// `postcopy-ram` on, but only a force-complete policy switches.
    Allowed,
    /// Switch once QEMU has finished this many dirty-sync passes.
    AfterPasses(u32),
    /// Switch this long after `migrate`.
    AfterTime(Dur),
}

impl ScalarField for Postcopy {
    const EXPECTING: &'static str =
        "\"off\", \"allowed\", \"after N passes\" (N ≥ 1) or \"after <duration>\" (e.g. \"after 20s\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        match t {
            "off" => return Ok(Postcopy::Off),
            "allowed" => return Ok(Postcopy::Allowed),
            _ => {}
        }
        let bad = || format!("`{s}` is not {}", Self::EXPECTING);
        let rest = t.strip_prefix("after").ok_or_else(bad)?.trim();
        if let Some(n) = rest
            .strip_suffix("passes")
            .or_else(|| rest.strip_suffix("pass"))
        {
            let n: u32 = n.trim().parse().map_err(|_| bad())?;
            return if n >= 1 {
                Ok(Postcopy::AfterPasses(n))
            } else {
                Err(bad())
            };
        }
        Dur::parse_str(rest)
            .map(Postcopy::AfterTime)
            .map_err(|e| format!("{}: {e}", bad()))
    }
}

impl Postcopy {
    /// Whether the `postcopy-ram` capability is needed.
    pub fn enabled(self) -> bool {
        self != Postcopy::Off
    }
}

impl fmt::Display for Postcopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Postcopy::Off => f.write_str("off"),
            Postcopy::Allowed => f.write_str("allowed"),
            Postcopy::AfterPasses(1) => f.write_str("after 1 pass"),
            Postcopy::AfterPasses(n) => write!(f, "after {n} passes"),
            Postcopy::AfterTime(d) => write!(f, "after {d}"),
        }
    }
}
off_or!(Postcopy, Postcopy::Off);

/// Self-announce timing of the destination after switchover (the RARP/GARP
/// bursts that teach switches the guest's new port): `"default"` or any of
/// `initial=50ms,max=550ms,rounds=5,step=100ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Announce {
    /// Delay before the first announcement.
    pub initial: Option<Dur>,
    /// Longest delay between announcements.
    pub max: Option<Dur>,
    /// Number of announcements.
    pub rounds: Option<u32>,
    /// Delay increase per round.
    pub step: Option<Dur>,
}

impl Announce {
    /// QEMU's own timing (nothing set).
    pub const DEFAULT: Announce = Announce {
        initial: None,
        max: None,
        rounds: None,
        step: None,
    };
}

impl ScalarField for Announce {
    const EXPECTING: &'static str =
        "\"default\" or comma-separated initial=<duration>, max=<duration>, rounds=<N>, step=<duration> (e.g. \"initial=10ms,rounds=3\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let mut a = Announce::default();
        if t == "default" {
            return Ok(a);
        }
        for part in t.split(',') {
            let bad =
                |why: String| format!("`{part}` in `{s}`: {why}; expected {}", Self::EXPECTING);
            let (k, v) = part.split_once('=').ok_or_else(|| bad("no `=`".into()))?;
            let dur = || {
                Dur::parse_str(v)
                    .map_err(bad)
                    .and_then(|d| match d.0.as_millis() {
                        1..=100_000 => Ok(d),
                        _ => Err(format!("`{part}`: use 1ms – 100s")),
                    })
            };
            match k.trim() {
                "initial" => a.initial = Some(dur()?),
                "max" => a.max = Some(dur()?),
                "step" => a.step = Some(dur()?),
                "rounds" => {
                    let n: u32 = v.trim().parse().map_err(|_| bad("not a number".into()))?;
                    if !(1..=1000).contains(&n) {
                        return Err(bad("rounds must be 1 – 1000".into()));
                    }
                    a.rounds = Some(n);
                }
                other => return Err(bad(format!("unknown key `{other}`"))),
            }
        }
        Ok(a)
    }
}

impl fmt::Display for Announce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.initial {
            parts.push(format!("initial={d}"));
        }
        if let Some(d) = self.max {
            parts.push(format!("max={d}"));
        }
        if let Some(n) = self.rounds {
            parts.push(format!("rounds={n}"));
        }
        if let Some(d) = self.step {
            parts.push(format!("step={d}"));
        }
        if parts.is_empty() {
            f.write_str("default")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}
string_serde!(Announce);

/// QEMU's dirty-limit convergence (8.1+, needs the KVM dirty ring):
/// `"off"` or a per-vCPU dirty-rate ceiling such as `"10MB/s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirtyLimit {
    /// Not used.
    Off,
    /// Limit each vCPU's dirty rate to this (QEMU takes whole MB/s).
    Rate(ByteRate),
}

off_or!(
    DirtyLimit,
    Off,
    Rate(ByteRate),
    |r| r.0 >= 1_000_000,
    "\"off\" or a per-vCPU rate of at least 1MB/s (e.g. \"10MB/s\")"
);

pub use crate::service::Services;
