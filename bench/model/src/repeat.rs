//! How many times each combination runs: a fixed count, or `"auto"` —
//! repeat each cell until the 95 % interval of its key metrics' means is
//! within a precision (or a maximum is reached), cells interleaved so a
//! slow drift of the host spreads over all of them. Pure: the scheduler
//! asks [`Repetitions::order`] and [`Adaptive::enough`], the report
//! [`relative_half_width`].

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

pub use crate::stats::relative_half_width;
use crate::{Outcome, RunParams, RunRecord};

/// Adaptive repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Adaptive {
    /// Stop once every key metric's 95 % interval half-width is within
    /// this share of its mean (0.05: ±5 %).
    pub precision: f64,
    /// Runs each cell has at least.
    pub min: u32,
    /// Runs each cell has at most.
    pub max: u32,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive {
            precision: 0.05,
            min: 3,
            max: 20,
        }
    }
}

/// `repetitions = 3`, `"auto"` or `{ precision = "5%", min = 3, max = 20 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Repetitions {
    /// This many runs per combination.
    Fixed(u32),
    /// Until precise enough.
    Auto(Adaptive),
}

impl Default for Repetitions {
    fn default() -> Self {
        Repetitions::Fixed(1)
    }
}

/// The key metrics a cell must pin down: total time and the probe's
/// downtime (of completed runs).
pub fn key_values(r: &RunRecord) -> [Option<f64>; 2] {
    if r.outcome != Outcome::Completed {
        return [None, None];
    }
    [r.total_time_ms, r.downtime_probe_ms]
}

impl Adaptive {
    /// Whether a cell with these runs needs no more: at least `min` runs,
    /// and either none completed (nothing to refine) or every key metric
    /// within the precision.
    pub fn enough(&self, runs: &[&RunRecord]) -> bool {
        if runs.len() < self.min as usize {
            return false;
        }
        if runs.len() >= self.max as usize {
            return true;
        }
        self.reached(runs).unwrap_or(true)
    }

    /// Whether the key metrics are within the precision (`None` when no
    /// run completed).
    pub fn reached(&self, runs: &[&RunRecord]) -> Option<bool> {
        let values: Vec<[Option<f64>; 2]> = runs.iter().map(|r| key_values(r)).collect();
        let mut any = false;
        for k in 0..2 {
            let v: Vec<f64> = values.iter().filter_map(|x| x[k]).collect();
            if v.is_empty() {
                continue;
            }
            any = true;
            match relative_half_width(&v) {
                Some(w) if w <= self.precision => {}
                _ => return Some(false),
            }
        }
        any.then_some(true)
    }
}

impl Repetitions {
    /// Runs per combination at most (the matrix expands to this many).
    pub fn max(&self) -> u32 {
        match self {
            Repetitions::Fixed(n) => *n,
            Repetitions::Auto(a) => a.max,
        }
    }

    /// The order to run `matrix` in: as expanded for a fixed count; for
    /// `auto`, round-robin (every cell's first run, then every cell's
    /// second, ...).
    pub fn order<'a>(&self, matrix: &'a [RunParams]) -> Vec<&'a RunParams> {
        let mut v: Vec<&RunParams> = matrix.iter().collect();
        if let Repetitions::Auto(_) = self {
            v.sort_by_key(|p| (p.repetition, p.index));
        }
        v
    }

    /// Check the numbers: `Err` says what is wrong and what is allowed.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Repetitions::Fixed(0) => Err("0 is not a positive whole number".into()),
            Repetitions::Fixed(_) => Ok(()),
            Repetitions::Auto(a) if !(a.precision > 0.0 && a.precision < 1.0) => Err(format!(
                "precision {:.1}% is not between 0% and 100% (e.g. \"5%\")",
                a.precision * 100.0
            )),
            Repetitions::Auto(a) if a.min < 2 => Err(format!(
                "min = {}: an interval needs at least 2 runs per cell",
                a.min
            )),
            Repetitions::Auto(a) if a.min > a.max => {
                Err(format!("min = {} is more than max = {}", a.min, a.max))
            }
            Repetitions::Auto(_) => Ok(()),
        }
    }
}

impl std::fmt::Display for Repetitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repetitions::Fixed(n) => write!(f, "{n}"),
            Repetitions::Auto(a) => write!(
                f,
                "auto (±{}% at 95 %, {}–{} runs per cell)",
                a.precision * 100.0,
                a.min,
                a.max
            ),
        }
    }
}

const EXPECTING: &str =
    "a positive whole number, \"auto\", or { precision = \"5%\", min = 3, max = 20 }";

impl<'de> Deserialize<'de> for Repetitions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Repetitions;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Repetitions, E> {
                match u32::try_from(i) {
                    Ok(n) if n > 0 => Ok(Repetitions::Fixed(n)),
                    _ => Err(E::custom(format!("{i} is not {EXPECTING}"))),
                }
            }
            fn visit_u64<E: de::Error>(self, i: u64) -> Result<Repetitions, E> {
                self.visit_i64(i64::try_from(i).unwrap_or(-1))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Repetitions, E> {
                match s.trim() {
                    "auto" => Ok(Repetitions::Auto(Adaptive::default())),
                    other => Err(E::custom(format!("`{other}` is not {EXPECTING}"))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Repetitions, A::Error> {
                let mut a = Adaptive::default();
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "precision" => {
                            let p: crate::scalar::OneValue<crate::units::Percent> =
                                m.next_value()?;
                            a.precision = p.0 .0 / 100.0;
                        }
                        "min" => a.min = m.next_value()?,
                        "max" => a.max = m.next_value()?,
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}` (precision, min, max)"
                            )))
                        }
                    }
                }
                Ok(Repetitions::Auto(a))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Repetitions, String> {
        #[derive(Deserialize)]
        struct S {
            repetitions: Repetitions,
        }
        toml::from_str::<S>(text)
            .map(|s| s.repetitions)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn counts_auto_and_a_table() {
        assert_eq!(parse("repetitions = 3"), Ok(Repetitions::Fixed(3)));
        assert_eq!(
            parse("repetitions = \"auto\""),
            Ok(Repetitions::Auto(Adaptive::default()))
        );
        let t = parse("repetitions = { precision = \"10%\", min = 2, max = 6 }").unwrap();
        assert_eq!(
            t,
            Repetitions::Auto(Adaptive {
                precision: 0.1,
                min: 2,
                max: 6
            })
        );
        assert!(parse("repetitions = 0").unwrap_err().contains("\"auto\""));
        assert!(parse("repetitions = \"often\"")
            .unwrap_err()
            .contains("`often` is not"));
        assert!(parse("repetitions = { precison = \"5%\" }")
            .unwrap_err()
            .contains("unknown key `precison`"));
        let bad = |min, max, precision| {
            Repetitions::Auto(Adaptive {
                precision,
                min,
                max,
            })
            .check()
        };
        assert!(bad(1, 5, 0.05).unwrap_err().contains("at least 2"));
        assert!(bad(6, 5, 0.05).unwrap_err().contains("more than max"));
        assert!(bad(3, 5, 0.0).unwrap_err().contains("precision"));
    }
}
