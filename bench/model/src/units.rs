//! Physical quantities with explicit units as scenario files spell them:
//! sizes (`"512MiB"`), byte rates (`"50MB/s"`), link bit rates
//! (`"100mbit"`), durations (`"300ms"`), percentages (`"0.1%"`) and counts.
//!
//! Every type parses from a string (and from a bare integer where that is
//! unambiguous), prints back in the same notation, and serialises as that
//! string so records stay human-readable. Migration settings that are not
//! quantities live in [`crate::settings`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::scalar::{
    scale, split_number, split_quantity, string_serde, zero_or_unit, OneValue, ScalarField,
};

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
    // QEMU's and libvirt's `-m 1G`: binary.
    ("K", 1 << 10),
    ("k", 1 << 10),
    ("M", 1 << 20),
    ("m", 1 << 20),
    ("G", 1 << 30),
    ("g", 1 << 30),
    ("T", 1 << 40),
    ("t", 1 << 40),
];

/// Units above the largest a size knows, with their size in it.
const SIZE_BEYOND: &[(&str, &str, u64)] = &[
    ("PiB", "TiB", 1 << 10),
    ("EiB", "TiB", 1 << 20),
    ("PB", "TB", 1_000),
    ("EB", "TB", 1_000_000),
    ("P", "T", 1 << 10),
    ("E", "T", 1 << 20),
];

/// The largest unit when `unit` is beyond it: "the largest is TiB (`1PiB`
/// is `1024TiB`)".
fn beyond(num: f64, unit: &str, per: &str, table: &[(&str, &str, u64)]) -> Option<String> {
    table
        .iter()
        .find(|(u, _, _)| *u == unit)
        .map(|(u, largest, n)| {
            format!(
                "the largest is {largest}{per} (`{num}{u}{per}` is `{}{largest}{per}`)",
                num * *n as f64
            )
        })
}

/// The first character of `unit` that is not ASCII (the micro sign
/// aside), named with its script and the ASCII letter it looks like:
/// "`М` is Cyrillic (U+041C); type the Latin `M`".
pub(crate) fn lookalike(unit: &str) -> Option<String> {
    let c = unit.chars().find(|c| !c.is_ascii() && *c != 'µ')?;
    let script = match c as u32 {
        0x0370..=0x03FF => "Greek",
        0x0400..=0x052F => "Cyrillic",
        0xFF01..=0xFF5E => "a full-width character",
        _ => "not ASCII",
    };
    const CYRILLIC: &str = "АAВBЕEКKМMНHОOРPСCТTХXаaеeкkмmоoрpсcуyхxіi";
    const GREEK: &str = "ΑAΒBΕEΚKΜMΝNΟOΡPΤTΧXΥYΖZΙIκkνvοoρpτtχx";
    let pairs: Vec<char> = CYRILLIC.chars().chain(GREEK.chars()).collect();
    let ascii = pairs
        .chunks(2)
        .find(|p| p[0] == c)
        .map(|p| p[1])
        .or_else(|| {
            (0xFF01..=0xFF5E)
                .contains(&(c as u32))
                .then(|| char::from_u32(c as u32 - 0xFEE0))
                .flatten()
        });
    let u = format!("{:04X}", c as u32);
    Some(match (script, ascii) {
        ("not ASCII", _) | (_, None) => {
            format!("`{c}` is not ASCII (U+{u}): units are ASCII letters")
        }
        ("a full-width character", Some(a)) => {
            format!("`{c}` is a full-width character (U+{u}); type the ASCII `{a}`")
        }
        (script, Some(a)) => format!("`{c}` is {script} (U+{u}); type the Latin `{a}`"),
    })
}

impl ScalarField for Size {
    const EXPECTING: &'static str =
        "a size with a unit: B, KiB, MiB, GiB, TiB, kB, MB, GB, or QEMU's K, M, G, T (binary: \"1G\" is 1GiB) (e.g. \"512MiB\" or \"1 GB\")";
    fn parse_str(s: &str) -> Result<Self, String> {
        Size::parse_as(s, s, "a size", "")
    }
}

impl Size {
    /// Parse `size`, the size part of `s` (all of it, or a rate without
    /// its `per` suffix), as `what` for range errors.
    fn parse_as(s: &str, size: &str, what: &str, per: &str) -> Result<Size, String> {
        let (v, num, unit) = split_quantity(size)?;
        let mult = SIZE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                if let Some(hint) = lookalike(unit).or_else(|| beyond(v, unit, per, SIZE_BEYOND)) {
                    return format!("unknown size unit `{unit}{per}` in `{s}`: {hint}");
                }
                let names: Vec<&'static str> = SIZE_UNITS.iter().map(|(u, _)| *u).collect();
                match suggest(unit, &names) {
                    Some(close) => {
                        format!("unknown size unit `{unit}` in `{s}`: did you mean `{num}{close}{per}`?")
                    }
                    None => format!(
                        "unknown size unit `{unit}` in `{s}`: expected {}",
                        Self::EXPECTING
                    ),
                }
            })?;
        scale(s, (v, num, &format!("{unit}{per}")), mult, what).map(Size)
    }

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
        Size::parse_as(s, size, "a byte rate", "/s").map(|b| ByteRate(b.0))
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        zero_or_unit(i, ByteRate(0))
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

/// A link rate in bits per second, in `tc` notation (`"100mbit"`, `"1gbit"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BitRate(pub u64);

impl ScalarField for BitRate {
    const EXPECTING: &'static str = "a link rate in bits per second: kbit, mbit, gbit (e.g. \"100mbit\"; \"100Mbps\", \"100 Mbit/s\" and \"1 GBit\" also work)";
    fn parse_str(s: &str) -> Result<Self, String> {
        let q = split_quantity(s)?;
        let (v, num, unit) = q;
        if let Some(hint) = lookalike(unit).or_else(|| bits_beyond(v, unit)) {
            return Err(format!("unknown rate unit `{unit}` in `{s}`: {hint}"));
        }
        let mult = bit_unit(unit).map_err(|bytes| match (bytes, suggest(unit, BIT_SPELLINGS)) {
            (Some(per), _) => match scale(s, q, per * 8, "") {
                Ok(bits) => format!(
                    "`{s}` is in bytes; a link rate is in bits: did you mean `{}`?",
                    BitRate(bits)
                ),
                Err(_) => format!("`{s}` is in bytes; a link rate is in bits (kbit, mbit, gbit)"),
            },
            (None, Some(close)) => {
                format!("unknown rate unit `{unit}` in `{s}`: did you mean `{num}{close}`?")
            }
            (None, None) => format!(
                "unknown rate unit `{unit}` in `{s}`: expected {}",
                Self::EXPECTING
            ),
        })?;
        let bits = scale(s, q, mult, "a link rate")?;
        if bits == 0 {
            return Err(format!("`{s}`: a link rate must be above zero"));
        }
        Ok(BitRate(bits))
    }
}

/// `1pbit`: "the largest is tbit (`1pbit` is `1000tbit`)".
fn bits_beyond(num: f64, unit: &str) -> Option<String> {
    let mut c = unit.chars();
    let n = match c.next()?.to_ascii_lowercase() {
        'p' => 1e3,
        'e' => 1e6,
        _ => return None,
    };
    let rest = c.as_str();
    let rest = rest
        .strip_suffix("/s")
        .or_else(|| rest.strip_suffix("ps"))
        .unwrap_or(rest);
    (rest.eq_ignore_ascii_case("bit") || rest == "b")
        .then(|| format!("the largest is tbit (`{num}{unit}` is `{}tbit`)", num * n))
}

/// Spellings of link-rate units that suggestions are drawn from.
const BIT_SPELLINGS: &[&str] = &[
    "kbit", "mbit", "gbit", "tbit", "Mbps", "Gbps", "Mbit/s", "Gbit/s",
];

/// Bits per unit of a link-rate unit as people write it: `mbit` (tc),
/// `Mbps`, `Mbit/s`, `MBit`, `mbps`, `Gb/s`... A lone `B` means bytes:
/// `Err(Some(bytes per unit))`; anything else unknown is `Err(None)`.
fn bit_unit(unit: &str) -> Result<u64, Option<u64>> {
    let u: String = unit.chars().filter(|c| !c.is_whitespace()).collect();
    let u = u
        .strip_suffix("/s")
        .or_else(|| u.strip_suffix("ps"))
        .unwrap_or(&u);
    let (prefix, rest) = match u.chars().next() {
        Some(c) if "kKmMgGtT".contains(c) && u.len() > 1 => (Some(c), &u[1..]),
        _ => (None, u),
    };
    let mult = match prefix.map(|c| c.to_ascii_lowercase()) {
        None => 1,
        Some('k') => 1_000,
        Some('m') => 1_000_000,
        Some('g') => 1_000_000_000,
        _ => 1_000_000_000_000,
    };
    if rest.eq_ignore_ascii_case("bit") || rest == "b" {
        Ok(mult)
    } else if rest == "B" || rest.eq_ignore_ascii_case("byte") {
        Err(Some(mult))
    } else {
        Err(None)
    }
}

/// The closest of `spellings` to `unit` (edit distance at most 2).
pub(crate) fn suggest(unit: &str, spellings: &[&'static str]) -> Option<&'static str> {
    spellings
        .iter()
        .map(|s| {
            (
                edit_distance(&unit.to_ascii_lowercase(), &s.to_ascii_lowercase()),
                *s,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
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
        let q = split_quantity(s)?;
        let ns_per: u64 = match q.2 {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("`{}` has no unit: add a unit: {}ms", s.trim(), q.1)),
            unit => {
                let hint = lookalike(unit)
                    .or_else(|| {
                        suggest(unit, DUR_SPELLINGS).map(|c| format!("did you mean `{}{c}`?", q.1))
                    })
                    .unwrap_or_else(|| format!("expected {}", Self::EXPECTING));
                return Err(format!("unknown duration unit `{unit}` in `{s}`: {hint}"));
            }
        };
        let ns = scale(s, q, ns_per, "a duration")?;
        Ok(Dur(std::time::Duration::from_nanos(ns)))
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        if i == 0 {
            Ok(Dur(std::time::Duration::ZERO))
        } else {
            Err(format!(
                "bare number {i} has no unit: add a unit: \"{i}ms\""
            ))
        }
    }
}

/// Spellings of duration units that suggestions are drawn from.
const DUR_SPELLINGS: &[&str] = &["ns", "us", "ms", "s", "min", "h"];

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
        zero_or_unit(i, Percent(0.0))
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
        let n = u32::parse_str(s).map_err(|_| format!("`{s}` is not {}", Self::EXPECTING))?;
        Self::parse_int(n.into())
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        match u32::parse_int(i) {
            Ok(n) if n > 0 => Ok(Count(n)),
            _ => Err(format!("{i} is not {}", Self::EXPECTING)),
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OneValue::<Count>::deserialize(d).map(|v| v.0)
    }
}

#[cfg(test)]
mod unit_tests;
