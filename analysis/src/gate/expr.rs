//! A `--fail-if` expression, `METRIC > THRESHOLD` or `METRIC <
//! THRESHOLD`, parsed into a [`Check`]: the metric by its name (times in
//! s or ms), the operator, and the threshold relative (`%`) or in a unit
//! that fits the metric.

use migbench_model::scalar::ScalarField;
use migbench_model::units::{BitRate, ByteRate, Size};

use crate::dims::{Metric, METRICS};

/// Which way a check fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The candidate higher than the baseline.
    Above,
    /// The candidate lower.
    Below,
}

impl Op {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Op::Above => ">",
            Op::Below => "<",
        }
    }
}

/// What a metric measures, for the units a threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Seconds,
    Millis,
    Mbps,
    Mib,
    Points,
    Plain,
}

impl Kind {
    fn of(name: &str) -> Kind {
        if name.ends_with("_ms") {
            Kind::Millis
        } else if name.ends_with("_s") {
            Kind::Seconds
        } else if name.ends_with("_mbps") {
            Kind::Mbps
        } else if name.ends_with("_mib") {
            Kind::Mib
        } else if name.ends_with("_pct") {
            Kind::Points
        } else {
            Kind::Plain
        }
    }

    /// Unit as printed after a value.
    fn unit(self) -> &'static str {
        match self {
            Kind::Seconds => "s",
            Kind::Millis => "ms",
            Kind::Mbps => "Mbit/s",
            Kind::Mib => "MiB",
            Kind::Points => "pp",
            Kind::Plain => "",
        }
    }

    /// What it is and which units fit, for errors.
    fn describe(self) -> &'static str {
        match self {
            Kind::Seconds | Kind::Millis => "a time: use us, ms, s or min",
            Kind::Mbps => "a bit rate: use kbit, mbit, gbit (or Mbit/s, Mbps), or a byte rate such as MB/s, MiB/s",
            Kind::Mib => "a size: use B, KiB, MiB, GiB, kB, MB, GB",
            Kind::Points => "a percentage: give the change in points, `pp` or a plain number",
            Kind::Plain => "a plain number: give no unit",
        }
    }

    /// The metric's units per one `unit`, or `None` if the unit does not fit.
    fn factor(self, unit: &str) -> Option<f64> {
        let time_ms = || -> Option<f64> {
            Some(match unit {
                "ns" => 1e-6,
                "us" | "µs" => 1e-3,
                "ms" => 1.0,
                "s" => 1e3,
                "min" => 60e3,
                "h" => 3600e3,
                _ => return None,
            })
        };
        match self {
            Kind::Millis => time_ms(),
            Kind::Seconds => time_ms().map(|f| f / 1e3),
            Kind::Mbps => {
                let one = format!("1{unit}");
                BitRate::parse_str(&one)
                    .map(|b| b.0 as f64 / 1e6)
                    .or_else(|_| ByteRate::parse_str(&one).map(|b| b.0 as f64 * 8.0 / 1e6))
                    .ok()
            }
            Kind::Mib => Size::parse_str(&format!("1{unit}"))
                .ok()
                .map(|b| b.0 as f64 / 1048576.0),
            Kind::Points => (unit == "pp").then_some(1.0),
            Kind::Plain => None,
        }
    }
}

/// A metric as the user named it.
#[derive(Clone)]
pub(super) struct Named {
    /// The name typed.
    pub(super) name: String,
    /// The metric.
    pub(super) metric: &'static Metric,
    /// Typed-unit values per metric value (1000 for `total_time_ms`).
    pub(super) scale: f64,
    pub(super) kind: Kind,
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Named")
            .field("name", &self.name)
            .field("metric", &self.metric.name)
            .field("scale", &self.scale)
            .finish()
    }
}

fn resolve(name: &str) -> Result<Named, String> {
    let named = |metric: &'static Metric, scale| Named {
        name: name.to_string(),
        metric,
        scale,
        kind: Kind::of(name),
    };
    if let Some(m) = crate::dims::metric(name) {
        return Ok(named(m, 1.0));
    }
    if let Some(m) = name
        .strip_suffix("_ms")
        .and_then(|stem| crate::dims::metric(&format!("{stem}_s")))
    {
        return Ok(named(m, 1e3));
    }
    if let Some(m) = name
        .strip_suffix("_s")
        .and_then(|stem| crate::dims::metric(&format!("{stem}_ms")))
    {
        return Ok(named(m, 1e-3));
    }
    let names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    Err(format!(
        "unknown metric `{name}`; metrics: {} (a time in s can be named in ms too, e.g. total_time_ms)",
        names.join(", ")
    ))
}

/// One parsed `--fail-if`.
#[derive(Debug, Clone)]
pub struct Check {
    /// The expression as given.
    pub expr: String,
    pub(super) metric: Named,
    /// Direction.
    pub op: Op,
    /// Signed threshold: percent when `relative`, else in the typed metric's unit.
    pub threshold: f64,
    /// A relative (`%`) threshold.
    pub relative: bool,
}

impl Check {
    /// Parse `METRIC > THRESHOLD` / `METRIC < THRESHOLD`.
    pub fn parse(expr: &str) -> Result<Check, String> {
        let Some(at) = expr.find(['<', '>']) else {
            return Err("no `>` or `<`: write METRIC > THRESHOLD or METRIC < THRESHOLD, e.g. \"total_time_ms > +5%\"".into());
        };
        let op = if expr[at..].starts_with('>') {
            Op::Above
        } else {
            Op::Below
        };
        let (name, rest) = (expr[..at].trim(), expr[at + 1..].trim());
        if rest.starts_with(['=', '<', '>']) {
            return Err(format!(
                "only `>` and `<` compare (a change exactly at the threshold passes), not `{}{}`",
                op.symbol(),
                &rest[..1]
            ));
        }
        if name.is_empty() {
            return Err("no metric before the operator".into());
        }
        let metric = resolve(name)?;
        let (threshold, relative) = parse_threshold(rest, op, &metric)?;
        Ok(Check {
            expr: expr.to_string(),
            metric,
            op,
            threshold,
            relative,
        })
    }

    /// The metric's name as typed.
    pub fn metric_name(&self) -> &str {
        &self.metric.name
    }

    /// Unit of changes and threshold: `%` or the metric's.
    pub(super) fn unit(&self) -> &'static str {
        if self.relative {
            "%"
        } else {
            self.metric.kind.unit()
        }
    }
}

fn parse_threshold(text: &str, op: Op, m: &Named) -> Result<(f64, bool), String> {
    if text.is_empty() {
        return Err("no threshold after the operator".into());
    }
    let (sign, body) = match text.as_bytes()[0] {
        b'+' => (Some(1.0), text[1..].trim_start()),
        b'-' => (Some(-1.0), text[1..].trim_start()),
        _ => (None, text),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (digits, unit) = (&body[..end], body[end..].trim());
    let mag: f64 = digits
        .parse()
        .map_err(|_| format!("threshold `{text}` does not start with a number"))?;
    let (value, relative) = match unit {
        "%" if m.kind == Kind::Points => {
            return Err(format!(
                "{} is itself a percentage, so `%` would be ambiguous: give the change in points, e.g. `{}{digits}pp` or `{}{digits}`",
                m.name,
                if op == Op::Above { "+" } else { "-" },
                if op == Op::Above { "+" } else { "-" },
            ))
        }
        "%" => (mag, true),
        "" => (mag, false),
        u => match m.kind.factor(u) {
            Some(f) => (mag * f, false),
            None => {
                return Err(format!(
                    "unit `{u}` does not fit {} ({})",
                    m.name,
                    m.kind.describe()
                ))
            }
        },
    };
    let want = if op == Op::Above { 1.0 } else { -1.0 };
    match sign {
        Some(s) if s != want && value != 0.0 => Err(format!(
            "`{}` fails when the candidate is {}; a threshold of `{text}` points the other way (write `{} {text}`{})",
            op.symbol(),
            if op == Op::Above { "higher" } else { "lower" },
            if op == Op::Above { "<" } else { ">" },
            if op == Op::Above {
                " to fail on a drop"
            } else {
                " to fail on a rise"
            }
        )),
        _ => Ok((want * value, relative)),
    }
}
