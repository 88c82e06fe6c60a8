//! `migbench advise`: which migration settings meet a downtime (and time)
//! target for a guest on a link, ranked by the model
//! (`migbench_predict::advise`), and the link it would need when
//! none does. The dirty rate is given or measured on a running guest with
//! QEMU's `calc-dirty-rate` (over its QMP socket, or through libvirt).

use std::path::PathBuf;

use anyhow::Result;
use migbench_model::capability::Capability;
use migbench_model::scalar::ScalarField;
use migbench_model::settings::Backend;
use migbench_model::units::{BitRate, ByteRate, Dur, Percent, Size};
use migbench_predict::advise::{
    advise, closest, link_needed, shown, why_none, why_not_plain, Advice, Binding, Question,
    FASTEST_LINK_BPS,
};
use migbench_predict::Inputs;

use crate::usage::UsageError;

/// Parse a flag's value with the scenario files' own notation.
fn parse<T: ScalarField + Send + Sync + 'static>(s: &str) -> Result<T, String> {
    T::parse_str(s)
}

/// The most RAM a guest is asked about (16 TiB: more than any host has).
pub const MAX_RAM: u64 = 16 << 40;
/// The fastest link asked about, bits/s (1 Tbit/s).
pub const MAX_LINK_BPS: u64 = 1_000_000_000_000;
/// The fastest dirty rate asked about, bytes/s (100 GB/s: a host's
/// memory bandwidth).
pub const MAX_DIRTY_RATE: u64 = 100_000_000_000;
/// The longest duration asked about (30 days).
const MAX_DUR: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// A size within physical sense: a value that overflowed (saturated at
/// 2^64 − 1 by the parser) or lies above 16 TiB is refused.
fn parse_size(s: &str) -> Result<Size, String> {
    let v = Size::parse_str(s)?;
    if v.0 > MAX_RAM {
        return Err(format!(
            "`{s}` is more than 16 TiB (no host has that much memory)"
        ));
    }
    Ok(v)
}

/// A link rate within physical sense (at most 1 Tbit/s).
fn parse_link(s: &str) -> Result<BitRate, String> {
    let v = BitRate::parse_str(s)?;
    if v.0 > MAX_LINK_BPS {
        return Err(format!("`{s}` is faster than 1 Tbit/s (no such link)"));
    }
    Ok(v)
}

/// A duration within sense (at most 30 days).
fn parse_dur(s: &str) -> Result<Dur, String> {
    let v = Dur::parse_str(s)?;
    if v.0 > MAX_DUR {
        return Err(format!("`{s}` is longer than 30 days"));
    }
    Ok(v)
}

/// How many settings to show: at least one.
fn parse_top(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0 shows nothing: give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{s}`: {e}")),
    }
}

/// `migbench advise` flags.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  migbench advise --ram 8GiB --dirty-rate 50MB/s --working-set 2GiB --link 1gbit --max-downtime 300ms --max-time 120s\n  migbench advise --ram 1GiB --dirty-rate measure --qmp /run/vm.qmp --link 100mbit --max-downtime 500ms"
)]
pub struct AdviseArgs {
    /// Guest RAM ("8GiB").
    #[arg(long, value_parser = parse_size)]
    pub ram: Size,
    /// What the guest dirties ("50MB/s"), or `measure` to read it from a
    /// running guest (--qmp, or --connect and --domain).
    #[arg(long, allow_hyphen_values = true)]
    pub dirty_rate: String,
    /// Memory the guest keeps rewriting (default: a quarter of its RAM).
    #[arg(long, value_parser = parse_size)]
    pub working_set: Option<Size>,
    /// Share of each page that compresses ("0%" for random data).
    #[arg(long, value_parser = parse::<Percent>, default_value = "0%")]
    pub compressibility: Percent,
    /// The migration link ("1gbit", "100mbit").
    #[arg(long, value_parser = parse_link)]
    pub link: BitRate,
    /// The longest pause the guest may see ("300ms").
    #[arg(long, value_parser = parse_dur)]
    pub max_downtime: Dur,
    /// The longest the migration may take ("120s"; default: any up to --timeout).
    #[arg(long, value_parser = parse_dur)]
    pub max_time: Option<Dur>,
    /// When a migration is given up.
    #[arg(long, value_parser = parse_dur, default_value = "1h")]
    pub timeout: Dur,
    /// How many settings to show (at least 1; the best post-copy and
    /// pre-copy settings are shown whenever both meet the target).
    #[arg(long, default_value = "5", value_parser = parse_top)]
    pub top: usize,
    /// Output: a table, or JSON.
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::predict::Format,
    /// The stored model to use (default: results/model.json if a fit
    /// stored one, else this lab's constants).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// --dirty-rate measure: the guest's QMP socket.
    #[arg(long, value_name = "SOCKET")]
    pub qmp: Option<PathBuf>,
    /// --dirty-rate measure: a libvirt URI ("qemu:///system").
    #[arg(long, value_name = "URI", requires = "domain")]
    pub connect: Option<String>,
    /// --dirty-rate measure: the libvirt domain.
    #[arg(long, value_name = "NAME", requires = "connect")]
    pub domain: Option<String>,
    /// --dirty-rate measure: how long QEMU samples.
    #[arg(long, value_parser = parse_dur, default_value = "1s")]
    pub measure_for: Dur,
}

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// The question the flags ask, checked: bad values name their flag.
fn question(a: &AdviseArgs, dirty_rate: f64) -> Result<Question> {
    let ram = a.ram.0 as f64;
    if a.ram.0 < 1 << 20 {
        return Err(usage(format!(
            "--ram {}: a guest has at least 1 MiB",
            a.ram
        )));
    }
    let ws = a.working_set.map_or(ram / 4.0, |w| w.0 as f64);
    if ws > ram {
        return Err(usage(format!(
            "--working-set {}: more than --ram {} (a guest rewrites at most its RAM)",
            a.working_set.map(|w| w.to_string()).unwrap_or_default(),
            a.ram
        )));
    }
    if a.link.0 == 0 {
        return Err(usage(
            "--link 0: a link rate must be above 0 (e.g. 1gbit)".into(),
        ));
    }
    if a.max_downtime.ms() <= 0.0 {
        return Err(usage("--max-downtime 0: the guest always pauses for a moment; give the longest pause it may see (e.g. 300ms)".into()));
    }
    if a.max_time.is_some_and(|t| t.ms() <= 0.0) {
        return Err(usage("--max-time must be above 0 (e.g. 120s)".into()));
    }
    if a.timeout.ms() <= 0.0 {
        return Err(usage("--timeout must be above 0 (e.g. 1h)".into()));
    }
    Ok(Question {
        ram,
        working_set: ws,
        dirty_rate,
        compressibility: a.compressibility.0 / 100.0,
        link_bps: a.link.0 as f64,
        max_downtime_ms: a.max_downtime.ms(),
        max_time_ms: a.max_time.map(|t| t.ms()),
        timeout_ms: a.timeout.ms(),
    })
}

/// The dirty rate the flags give or measure, bytes/s.
fn dirty_rate(rt: &tokio::runtime::Runtime, a: &AdviseArgs) -> Result<(f64, String)> {
    if a.dirty_rate.trim() != "measure" {
        let r = ByteRate::parse_str(&a.dirty_rate)
            .map_err(|e| usage(format!("--dirty-rate {}: {e}, or `measure`", a.dirty_rate)))?;
        if r.0 > MAX_DIRTY_RATE {
            return Err(usage(format!(
                "--dirty-rate {}: more than 100 GB/s (a host's memory bandwidth)",
                a.dirty_rate
            )));
        }
        return Ok((r.0 as f64, "given".into()));
    }
    let secs = a.measure_for.0.as_secs().max(1);
    // The backend the flags reach the guest through must declare it.
    let backend = if a.qmp.is_some() {
        Backend::Qmp
    } else {
        Backend::Libvirt
    };
    if !backend.can(Capability::DirtyRateMeasurement) {
        return Err(usage(format!(
            "--dirty-rate measure: backend {backend} lacks the capability `{}`",
            Capability::DirtyRateMeasurement.name()
        )));
    }
    match (&a.qmp, &a.connect, &a.domain) {
        (Some(sock), None, _) => {
            let mbs = rt.block_on(crate::backend::qmp::dirty_rate::measure(sock, secs))?;
            Ok((
                mbs * 1048576.0,
                format!("measured by QEMU's calc-dirty-rate over {}", sock.display()),
            ))
        }
        #[cfg(feature = "libvirt")]
        (None, Some(uri), Some(dom)) => {
            let mbs = crate::backend::libvirt::calls::measure_dirty_rate(uri, dom, secs)?;
            Ok((
                mbs * 1048576.0,
                format!("measured by libvirt's dirty-rate calculation of {dom} on {uri}"),
            ))
        }
        _ => Err(usage(
            "--dirty-rate measure needs the guest: --qmp SOCKET, or --connect URI --domain NAME"
                .into(),
        )),
    }
}

/// Run `migbench advise`.
pub fn command(rt: &tokio::runtime::Runtime, a: AdviseArgs) -> Result<i32> {
    crate::commands::quiet_on_broken_pipe(print(rt, &a))
}

#[derive(serde::Serialize)]
struct Answer<'a> {
    dirty_rate_bytes_per_s: f64,
    dirty_rate_source: &'a str,
    model: &'a str,
    outside: Vec<String>,
    advice: Vec<&'a Advice>,
    /// When no setting meets the targets: why, and the one that comes closest.
    why_none: Option<Binding>,
    closest: Option<Advice>,
    /// When plain pre-copy does not meet them: why (on this link, or on
    /// the fastest link tried when none would do), and the link it needs.
    why_not_plain: Option<Binding>,
    link_needed_bps: Option<f64>,
}

fn print(rt: &tokio::runtime::Runtime, a: &AdviseArgs) -> Result<i32> {
    use std::io::Write;
    // Check the flags before measuring anything.
    question(a, 0.0)?;
    let (rate, source) = dirty_rate(rt, a)?;
    let q = question(a, rate)?;
    let (m, model) = crate::predict::load_model(a.model.as_deref())?;
    let c = m.constants;
    let all = advise(&q, &c);
    let rows = shown(&all, a.top);
    let why = all.is_empty().then(|| why_none(&q, &c)).flatten();
    let near = if all.is_empty() {
        closest(&q, &c)
    } else {
        None
    };
    // Plain pre-copy: why not on this link, and the link it would need
    // (or why not even on the fastest).
    let plain_here = why_not_plain(&q, &c);
    let needed = plain_here.and_then(|_| link_needed(&q, &c));
    let plain_why = match (plain_here, needed) {
        (Some(_), None) => why_not_plain(
            &Question {
                link_bps: FASTEST_LINK_BPS,
                ..q
            },
            &c,
        ),
        (w, _) => w,
    };
    let outside = m.envelope.outside(&Inputs {
        ram: q.ram,
        working_set: q.working_set,
        dirty_rate: q.dirty_rate,
        link_bps: q.link_bps,
        downtime_limit_ms: q.max_downtime_ms,
        ..Inputs::default()
    });
    let mut out = std::io::stdout().lock();
    if a.format == crate::predict::Format::Json {
        let answer = Answer {
            dirty_rate_bytes_per_s: rate,
            dirty_rate_source: &source,
            model: &model,
            outside,
            advice: rows,
            why_none: why,
            closest: near,
            why_not_plain: plain_why,
            link_needed_bps: needed,
        };
        // One object on one line, as --help says (JSON Lines).
        writeln!(out, "{}", serde_json::to_string(&answer)?)?;
        return Ok(0);
    }
    writeln!(
        out,
        "guest {} RAM, {:.0} MiB working set dirtied at {:.1} MB/s ({source}), {:.0} Mbit/s link; target: downtime ≤ {:.0} ms{}",
        a.ram,
        q.working_set / 1048576.0,
        rate / 1e6,
        q.link_bps / 1e6,
        q.max_downtime_ms,
        q.max_time_ms
            .map(|t| format!(", total ≤ {} s", t / 1e3))
            .unwrap_or_default()
    )?;
    writeln!(out, "model: {model}")?;
    for o in &outside {
        writeln!(out, "note: {o}: the answer is an extrapolation")?;
    }
    if rows.is_empty() {
        match why {
            Some(w) => writeln!(
                out,
                "no setting meets the target on this link: {}",
                w.explain(&q)
            )?,
            None => writeln!(out, "no setting meets the target on this link")?,
        }
        match &near {
            Some(x) => writeln!(
                out,
                "closest: {} — {:.1} s, downtime {:.0} ms ({})",
                describe(x),
                x.predicted.total_time_ms / 1e3,
                x.predicted.downtime_ms.unwrap_or(f64::NAN),
                x.why
            )?,
            None => writeln!(out, "closest: none (no setting completes within --timeout)")?,
        }
    } else {
        writeln!(
            out,
            "{:<3} {:<15} {:<50} {:>8} {:>8} {:>6}  why",
            "#", "kind", "settings", "total s", "down ms", "passes"
        )?;
        for (k, x) in rows.iter().enumerate() {
            writeln!(
                out,
                "{:<3} {:<15} {:<50} {:>8.1} {:>8.0} {:>6}  {}",
                k + 1,
                x.family.to_string(),
                describe(x),
                x.predicted.total_time_ms / 1e3,
                x.predicted.downtime_ms.unwrap_or(f64::NAN),
                x.predicted.passes,
                x.why
            )?;
        }
    }
    match (plain_here, needed, plain_why) {
        (None, _, _) => {}
        (Some(here), Some(bps), _) => writeln!(
            out,
            "plain pre-copy would need a link of at least {} (on this one, {})",
            human_bps(bps),
            here.explain(&q)
        )?,
        (Some(_), None, Some(w)) => writeln!(
            out,
            "plain pre-copy meets this target on no link up to {}: {}",
            human_bps(FASTEST_LINK_BPS),
            w.explain(&q)
        )?,
        (Some(here), None, None) => writeln!(
            out,
            "plain pre-copy meets this target on no link up to {} ({} here)",
            human_bps(FASTEST_LINK_BPS),
            here.explain(&q)
        )?,
    }
    Ok(0)
}

/// A setting as scenario fields.
fn describe(x: &Advice) -> String {
    let s = &x.setting;
    let mut v = vec![format!("downtime_limit {:.0}ms", s.downtime_limit_ms)];
    if s.bandwidth_share < 1.0 {
        v.push(format!(
            "max_bandwidth {:.0}% of link",
            s.bandwidth_share * 100.0
        ));
    }
    if s.multifd_channels > 0 {
        v.push(format!("multifd {}", s.multifd_channels));
    }
    if s.compression {
        v.push("zstd".into());
    }
    if s.xbzrle_cache > 0.0 {
        v.push(format!("xbzrle {:.0}MiB", s.xbzrle_cache / 1048576.0));
    }
    if s.auto_converge {
        v.push("auto_converge on".into());
    }
    if s.postcopy {
        v.push("postcopy after 2 passes".into());
    }
    v.join(", ")
}

fn human_bps(bps: f64) -> String {
    if bps >= 1e11 {
        format!("{:.0} Gbit/s", bps / 1e9)
    } else if bps >= 1e9 {
        format!("{:.1} Gbit/s", bps / 1e9)
    } else {
        format!("{:.0} Mbit/s", bps / 1e6)
    }
}
