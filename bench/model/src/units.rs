//! Quantities with explicit units as scenario files spell them: sizes
//! (`"512MiB"`), byte rates (`"50MB/s"`), link bit rates (`"100mbit"`),
//! durations (`"300ms"`) and percentages (`"0.1%"`).
//!
//! Every type parses from a string (and from a bare integer where that is
//! unambiguous), prints back in the same notation, and serialises as that
//! string so records stay human-readable.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that a scenario field can hold: parsed from a TOML string or
/// integer, with a description of what is allowed for error messages.
pub trait ScalarField: Sized + Clone {
    /// What the field accepts, e.g. `a size such as "512MiB"`.
    const EXPECTING: &'static str;
    /// Parse the string notation.
    fn parse_str(s: &str) -> Result<Self, String>;
    /// Parse a bare TOML integer; most units refuse this to keep units explicit.
    fn parse_int(i: i64) -> Result<Self, String> {
        Err(format!(
            "bare number {i} has no unit: expected {}",
            Self::EXPECTING
        ))
    }
}

fn split_number(s: &str) -> Result<(f64, &str), String> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    // `e` may begin a unit (none of ours do), keep it simple: digits, dot, sign.
    let (num, unit) = s.split_at(end);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    if !value.is_finite() {
        return Err(format!("`{s}` is not a finite number"));
    }
    if value < 0.0 {
        return Err(format!("`{s}` is negative"));
    }
    Ok((value, unit.trim()))
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::scenario::OneValue::<$t>::deserialize(d).map(|v| v.0)
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as ScalarField>::parse_str(s)
            }
        }
    };
}

/// A size in bytes (`"512MiB"`, `"1GiB"`, `"100MB"`, `"4096B"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

impl ScalarField for Size {
    const EXPECTING: &'static str =
        "a size with a unit: B, KiB, MiB, GiB, TiB, kB, MB, GB (e.g. \"512MiB\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        let (v, unit) = split_number(s)?;
        let mult = SIZE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("unknown size unit `{unit}` in `{s}`"))?;
        Ok(Size((v * mult as f64).round() as u64))
    }
}

impl Size {
    /// Mebibytes, rounded down.
    pub fn mib(self) -> u64 {
        self.0 >> 20
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, mult) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if self.0 >= mult && self.0.is_multiple_of(mult) {
                return write!(f, "{}{unit}", self.0 / mult);
            }
        }
        for (unit, mult) in [("GB", 1_000_000_000u64), ("MB", 1_000_000), ("kB", 1_000)] {
            if self.0 >= mult && self.0.is_multiple_of(mult) {
                return write!(f, "{}{unit}", self.0 / mult);
            }
        }
        write!(f, "{}B", self.0)
    }
}
string_serde!(Size);

/// A data rate in bytes per second (`"50MB/s"`, `"20MiB/s"`, `"0"` for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRate(pub u64);

impl ScalarField for ByteRate {
    const EXPECTING: &'static str =
        "a byte rate such as \"50MB/s\" or \"20MiB/s\" (units B, KiB, MiB, GiB, kB, MB, GB per s), or 0";
    fn parse_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t == "0" {
            return Ok(ByteRate(0));
        }
        let Some(size) = t.strip_suffix("/s") else {
            return Err(format!("`{s}` lacks `/s`: expected {}", Self::EXPECTING));
        };
        Size::parse_str(size).map(|b| ByteRate(b.0))
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        if i == 0 {
            Ok(ByteRate(0))
        } else {
            Err(format!(
                "bare number {i} has no unit: expected {}",
                Self::EXPECTING
            ))
        }
    }
}

impl fmt::Display for ByteRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return write!(f, "0");
        }
        write!(f, "{}/s", Size(self.0))
    }
}
string_serde!(ByteRate);

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

/// A link rate in bits per second, in `tc` notation (`"100mbit"`, `"1gbit"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BitRate(pub u64);

const BIT_UNITS: &[(&str, u64)] = &[
    ("bit", 1),
    ("kbit", 1_000),
    ("mbit", 1_000_000),
    ("gbit", 1_000_000_000),
    ("tbit", 1_000_000_000_000),
];

impl ScalarField for BitRate {
    const EXPECTING: &'static str =
        "a link rate in tc notation: kbit, mbit, gbit (e.g. \"100mbit\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        let (v, unit) = split_number(s)?;
        let lower = unit.to_ascii_lowercase();
        let mult = BIT_UNITS
            .iter()
            .find(|(u, _)| *u == lower || format!("{u}ps") == lower)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("unknown rate unit `{unit}` in `{s}`"))?;
        let bits = (v * mult as f64).round() as u64;
        if bits == 0 {
            return Err(format!("`{s}`: a link rate must be above zero"));
        }
        Ok(BitRate(bits))
    }
}

impl BitRate {
    /// Megabits per second.
    pub fn mbps(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl fmt::Display for BitRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, mult) in [
            ("tbit", 1_000_000_000_000u64),
            ("gbit", 1_000_000_000),
            ("mbit", 1_000_000),
            ("kbit", 1_000),
        ] {
            if self.0 >= mult && self.0.is_multiple_of(mult) {
                return write!(f, "{}{unit}", self.0 / mult);
            }
        }
        write!(f, "{}bit", self.0)
    }
}
string_serde!(BitRate);

/// A duration with explicit unit (`"300ms"`, `"1s"`, `"0.5ms"`, `"100us"`, `"2min"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub std::time::Duration);

impl ScalarField for Dur {
    const EXPECTING: &'static str = "a duration with a unit: us, ms, s, min (e.g. \"300ms\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        let (v, unit) = split_number(s)?;
        let ns_per = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "min" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("unknown duration unit `{unit}` in `{s}`")),
        };
        Ok(Dur(std::time::Duration::from_nanos(
            (v * ns_per).round() as u64
        )))
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        if i == 0 {
            Ok(Dur(std::time::Duration::ZERO))
        } else {
            Err(format!(
                "bare number {i} has no unit: expected {}",
                Self::EXPECTING
            ))
        }
    }
}

impl Dur {
    /// Milliseconds as a float.
    pub fn ms(self) -> f64 {
        self.0.as_secs_f64() * 1e3
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns == 0 {
            return write!(f, "0ms");
        }
        for (unit, mult) in [
            ("min", 60_000_000_000u128),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if ns >= mult && ns.is_multiple_of(mult) {
                return write!(f, "{}{unit}", ns / mult);
            }
        }
        if ns.is_multiple_of(1000) {
            return write!(f, "{}ms", ns as f64 / 1e6);
        }
        write!(f, "{ns}ns")
    }
}
string_serde!(Dur);

/// A percentage (`"0.1%"`), used for packet loss.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl ScalarField for Percent {
    const EXPECTING: &'static str = "a percentage between 0% and 100% (e.g. \"0.1%\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        let Some(num) = s.trim().strip_suffix('%') else {
            return Err(format!("`{s}` lacks `%`: expected {}", Self::EXPECTING));
        };
        let (v, rest) = split_number(num)?;
        if !rest.is_empty() || v > 100.0 {
            return Err(format!("`{s}` is not {}", Self::EXPECTING));
        }
        Ok(Percent(v))
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        if i == 0 {
            Ok(Percent(0.0))
        } else {
            Err(format!(
                "bare number {i} has no unit: expected {}",
                Self::EXPECTING
            ))
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}
string_serde!(Percent);

/// A plain count (vCPUs, repetitions): a positive TOML integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Count(pub u32);

impl ScalarField for Count {
    const EXPECTING: &'static str = "a positive whole number";
    fn parse_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{s}` is not {}", Self::EXPECTING))
            .and_then(|v| Self::parse_int(v as i64))
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        if i <= 0 || i > u32::MAX as i64 {
            return Err(format!("{i} is not {}", Self::EXPECTING));
        }
        Ok(Count(i as u32))
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::scenario::OneValue::<Count>::deserialize(d).map(|v| v.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_binary_and_decimal_units() {
        assert_eq!(Size::parse_str("512MiB").unwrap().0, 512 << 20);
        assert_eq!(Size::parse_str("1GiB").unwrap().0, 1 << 30);
        assert_eq!(Size::parse_str("100MB").unwrap().0, 100_000_000);
        assert_eq!(Size::parse_str("1.5KiB").unwrap().0, 1536);
        assert!(Size::parse_str("-1MiB").unwrap_err().contains("negative"));
        assert!(Size::parse_str("12parsecs")
            .unwrap_err()
            .contains("unknown size unit"));
    }

    #[test]
    fn rates_parse_tc_notation() {
        assert_eq!(BitRate::parse_str("100mbit").unwrap().0, 100_000_000);
        assert_eq!(BitRate::parse_str("1gbit").unwrap().0, 1_000_000_000);
        assert_eq!(BitRate::parse_str("1Gbit").unwrap().0, 1_000_000_000);
        assert!(BitRate::parse_str("0mbit").is_err());
        assert_eq!(ByteRate::parse_str("50MB/s").unwrap().0, 50_000_000);
        assert_eq!(ByteRate::parse_str("0").unwrap().0, 0);
        assert!(ByteRate::parse_str("50MB").is_err());
    }

    #[test]
    fn durations_parse_and_print_round_trip() {
        for s in ["300ms", "1s", "100us", "2min", "0.5ms"] {
            let d = Dur::parse_str(s).unwrap();
            assert_eq!(Dur::parse_str(&d.to_string()).unwrap(), d, "{s}");
        }
        assert_eq!(Dur::parse_str("0.5ms").unwrap().0.as_micros(), 500);
    }

    #[test]
    fn percent_rejects_over_100() {
        assert!(Percent::parse_str("101%").is_err());
        assert_eq!(Percent::parse_str("0.1%").unwrap().0, 0.1);
    }

    proptest::proptest! {
        #[test]
        fn size_display_round_trips(b in 0u64..(1u64 << 50)) {
            let s = Size(b);
            proptest::prop_assert_eq!(Size::parse_str(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn bitrate_display_round_trips(b in 1u64..(1u64 << 44)) {
            let r = BitRate(b);
            proptest::prop_assert_eq!(BitRate::parse_str(&r.to_string()).unwrap(), r);
        }
    }
}

/// Define a string enum usable as a (list-able) scenario field.
macro_rules! choice {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant),+
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

impl fmt::Display for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channels::Off => f.write_str("off"),
            Channels::On(n) => write!(f, "{n}"),
        }
    }
}
off_or!(Channels, Channels::Off);

/// The XBZRLE page cache: `"off"` or its size (a power of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Xbzrle {
    /// No delta compression.
    Off,
    /// Delta-compress re-sent pages against a cache of this size.
    Cache(Size),
}

impl ScalarField for Xbzrle {
    const EXPECTING: &'static str =
        "\"off\" or a cache size that is a power of two, at least 4KiB (e.g. \"32MiB\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        let Some(t) = unless_off(s) else {
            return Ok(Xbzrle::Off);
        };
        let size = Size::parse_str(t)?;
        if size.0 < 4096 || !size.0.is_power_of_two() {
            return Err(format!("`{s}` is not {}", Self::EXPECTING));
        }
        Ok(Xbzrle::Cache(size))
    }
}

impl fmt::Display for Xbzrle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Xbzrle::Off => f.write_str("off"),
            Xbzrle::Cache(s) => write!(f, "{s}"),
        }
    }
}
off_or!(Xbzrle, Xbzrle::Off);

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

impl ScalarField for DirtyLimit {
    const EXPECTING: &'static str =
        "\"off\" or a per-vCPU rate of at least 1MB/s (e.g. \"10MB/s\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        let Some(t) = unless_off(s) else {
            return Ok(DirtyLimit::Off);
        };
        let r = ByteRate::parse_str(t)?;
        if r.0 < 1_000_000 {
            return Err(format!("`{s}` is not {}", Self::EXPECTING));
        }
        Ok(DirtyLimit::Rate(r))
    }
}

impl fmt::Display for DirtyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirtyLimit::Off => f.write_str("off"),
            DirtyLimit::Rate(r) => write!(f, "{r}"),
        }
    }
}
off_or!(DirtyLimit, DirtyLimit::Off);

#[cfg(test)]
mod knob_tests {
    use super::*;

    #[test]
    fn knobs_parse_and_print_round_trip() {
        for s in ["off", "4"] {
            assert_eq!(Channels::parse_str(s).unwrap().to_string(), s);
        }
        assert!(Channels::parse_str("0").is_err());
        assert_eq!(Channels::parse_int(8).unwrap(), Channels::On(8));
        for s in ["off", "32MiB"] {
            assert_eq!(Xbzrle::parse_str(s).unwrap().to_string(), s);
        }
        assert!(Xbzrle::parse_str("3MiB")
            .unwrap_err()
            .contains("power of two"));
        assert_eq!(
            AutoConverge::parse_str("on").unwrap().to_string(),
            "20/10/99"
        );
        assert_eq!(
            AutoConverge::parse_str("30%/20%/90%").unwrap(),
            AutoConverge::On {
                initial: 30,
                increment: 20,
                max: 90
            }
        );
        assert!(AutoConverge::parse_str("50/10/40").is_err());
        assert!(AutoConverge::parse_str("0/10/99").is_err());
        for s in [
            "off",
            "allowed",
            "after 1 pass",
            "after 3 passes",
            "after 20s",
        ] {
            assert_eq!(Postcopy::parse_str(s).unwrap().to_string(), s);
        }
        assert!(Postcopy::parse_str("after 0 passes").is_err());
        assert!(Postcopy::parse_str("soon").is_err());
        let a = Announce::parse_str("initial=10ms,rounds=3").unwrap();
        assert_eq!(a.rounds, Some(3));
        assert_eq!(Announce::parse_str(&a.to_string()).unwrap(), a);
        assert_eq!(
            Announce::parse_str("default").unwrap().to_string(),
            "default"
        );
        assert!(Announce::parse_str("rounds=0").is_err());
        assert!(Announce::parse_str("often=1")
            .unwrap_err()
            .contains("unknown key"));
        assert_eq!(
            DirtyLimit::parse_str("10MB/s").unwrap().to_string(),
            "10MB/s"
        );
        assert!(DirtyLimit::parse_str("10kB/s").is_err());
        assert!(Compression::parse_str("lz4").is_err());
    }
}

/// A whole number including zero (policy step counts): a bare TOML integer.
impl ScalarField for u32 {
    const EXPECTING: &'static str = "a whole number (0 or more)";
    fn parse_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{s}` is not {}", Self::EXPECTING))
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        u32::try_from(i).map_err(|_| format!("{i} is not {}", Self::EXPECTING))
    }
}
