//! What a run record cannot hold: [`check_record`] finds the first value
//! that no measurement can have (not finite, negative, a time above
//! [`MAX_MS`], a downtime longer than the whole migration), so the loader
//! sets the record aside instead of feeding it to the statistics and the
//! charts (where one 1e200 ms overflowed a variance and hung an axis).

use migbench_model::RunRecord;

use super::show;

/// Longest time a run can take: 1e9 ms, over 11 days.
pub const MAX_MS: f64 = 1e9;
/// Fastest link or stream: 1e7 Mbit/s (10 Tbit/s).
pub const MAX_MBPS: f64 = 1e7;
/// Most bytes one run can move: 1e15 (a petabyte).
pub const MAX_BYTES: u64 = 1_000_000_000_000_000;
/// Most passes, requests, retransmits... one run can count.
pub const MAX_COUNT: u64 = 1_000_000_000_000;
/// Smallest nonzero magnitude a measured value can have.
pub const MIN_NONZERO: f64 = 1e-30;
/// How much longer than the whole migration a downtime may be, ms (it is
/// measured on other clocks and by other means, so a little).
pub const DOWNTIME_SLACK_MS: f64 = 1000.0;

/// A value no run can have: which field, the value, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absurd {
    /// Field path (`total_time_ms`, `stream.playout[0].stall_ms`).
    pub field: String,
    /// The value as written.
    pub value: String,
    /// Why it cannot be.
    pub why: String,
}

#[derive(Clone, Copy)]
enum Kind {
    /// A duration, ms: 0..=MAX_MS.
    Ms,
    /// A difference of times, ms: |v| <= MAX_MS.
    SignedMs,
    /// A rate, Mbit/s or MB/s: 0..=MAX_MBPS.
    Rate,
    /// A link rate: above 0 (metrics divide by it), at most MAX_MBPS.
    Link,
    /// A percentage 0..=100.
    Pct,
    /// A relative change, %: |v| <= 1e6.
    Change,
}

fn check_f64(field: &str, v: f64, kind: Kind) -> Result<(), Absurd> {
    let why = if !v.is_finite() {
        Some("not a finite number".to_string())
    } else if v != 0.0 && v.abs() < MIN_NONZERO {
        // No clock or counter resolves this; squared twice (Welch's
        // degrees of freedom) it underflows to 0/0.
        Some(format!(
            "nonzero but below {} (no measurement is that small)",
            show(MIN_NONZERO)
        ))
    } else {
        match kind {
            Kind::Ms if v < 0.0 => Some("a negative time".into()),
            Kind::Ms | Kind::SignedMs if v.abs() > MAX_MS => {
                Some(format!("above {} ms (over 11 days)", show(MAX_MS)))
            }
            Kind::Rate if v < 0.0 => Some("a negative rate".into()),
            Kind::Link if v <= 0.0 => Some("not above 0 (metrics divide by it)".into()),
            Kind::Rate | Kind::Link if v > MAX_MBPS => {
                Some(format!("above {} Mbit/s (10 Tbit/s)", show(MAX_MBPS)))
            }
            Kind::Pct if !(0.0..=100.0).contains(&v) => Some("not a percentage (0 to 100)".into()),
            Kind::Change if v.abs() > 1e6 => Some("beyond ±1e6 %".into()),
            _ => None,
        }
    };
    match why {
        Some(why) => Err(Absurd {
            field: field.to_string(),
            value: show(v),
            why,
        }),
        None => Ok(()),
    }
}

fn check_u64(field: &str, v: u64, max: u64, what: &str) -> Result<(), Absurd> {
    if v > max {
        return Err(Absurd {
            field: field.into(),
            value: v.to_string(),
            why: format!("more than {} {what}", show(max as f64)),
        });
    }
    Ok(())
}

/// Check one record: a run_id that is a plain folder name (it names the
/// run's raw data, `runs/<run_id>`, and its charts), and the numbers the
/// analyzer uses: times within 0 and [`MAX_MS`], rates within 0 and
/// [`MAX_MBPS`], byte counts up to [`MAX_BYTES`], counts up to
/// [`MAX_COUNT`], percentages, no nonzero value below [`MIN_NONZERO`], a
/// positive guest RAM and link rate (metrics divide by them), and no
/// downtime longer than the migration's total time by more than
/// [`DOWNTIME_SLACK_MS`]. The first offence is returned.
pub fn check_record(r: &RunRecord) -> Result<(), Absurd> {
    use Kind::*;
    let id = &r.run_id;
    if id.is_empty()
        || id.starts_with('.')
        || id.contains(['/', '\\'])
        || id.chars().any(char::is_control)
        || id.len() > 200
    {
        return Err(Absurd {
            field: "run_id".into(),
            value: super::clip(id),
            why: "not a plain name (it names the run's folder under runs/)".into(),
        });
    }
    let mut f: Vec<(String, Option<f64>, Kind)> = [
        ("wall_ms", r.wall_ms, Ms),
        ("total_time_ms", r.total_time_ms, Ms),
        ("qemu_total_time_ms", r.qemu_total_time_ms, Ms),
        ("qemu_setup_time_ms", r.qemu_setup_time_ms, Ms),
        ("downtime_qemu_ms", r.downtime_qemu_ms, Ms),
        ("downtime_libvirt_ms", r.downtime_libvirt_ms, Ms),
        (
            "downtime_libvirt_net_ms",
            r.downtime_libvirt_net_ms,
            SignedMs,
        ),
        ("downtime_probe_ms", r.downtime_probe_ms, Ms),
        ("throughput_mbps", r.throughput_mbps, Rate),
        ("link_rate_mbps", Some(r.link_rate_mbps), Link),
        ("workload_rate_before_mbs", r.workload_rate_before_mbs, Rate),
        ("workload_rate_during_mbs", r.workload_rate_during_mbs, Rate),
        ("disk_time_ms", r.disk_time_ms, Ms),
        ("disk_throughput_mbps", r.disk_throughput_mbps, Rate),
        ("downtime_limit_final_ms", r.downtime_limit_final_ms, Ms),
        ("max_throttle_pct", r.max_throttle_pct, Pct),
        ("postcopy_time_ms", r.postcopy_time_ms, Ms),
        ("paused_ms", r.paused_ms, Ms),
        ("workload_slowdown_pct", r.workload_slowdown_pct, Change),
        ("switchover_probe_ms", r.switchover_probe_ms, Ms),
        ("downtime_icmp_ms", r.downtime_icmp_ms, Ms),
    ]
    .into_iter()
    .map(|(n, v, k)| (n.to_string(), v, k))
    .collect();
    for (i, x) in r.interventions.iter().enumerate() {
        f.push((format!("interventions[{i}].t_ms"), Some(x.t_ms), SignedMs));
        f.push((format!("interventions[{i}].value"), x.value, SignedMs));
    }
    if let Some(s) = &r.stream {
        f.push(("stream.longest_gap_ms".into(), Some(s.longest_gap_ms), Ms));
        f.push(("stream.switchover_gap_ms".into(), s.switchover_gap_ms, Ms));
        f.push((
            "stream.longest_send_gap_ms".into(),
            Some(s.longest_send_gap_ms),
            Ms,
        ));
        for (i, p) in s.playout.iter().enumerate() {
            for (n, v) in [
                ("buffer_ms", p.buffer_ms),
                ("startup_ms", p.startup_ms),
                ("stall_ms", p.stall_ms),
                ("longest_stall_ms", p.longest_stall_ms),
            ] {
                f.push((format!("stream.playout[{i}].{n}"), Some(v), Ms));
            }
        }
    }
    if let Some(rr) = &r.rr {
        f.push(("rr.switchover_gap_ms".into(), rr.switchover_gap_ms, Ms));
        for (phase, l) in [
            ("before", rr.before),
            ("during", rr.during),
            ("after", rr.after),
        ] {
            if let Some(l) = l {
                for (n, v) in [
                    ("p50", l.p50),
                    ("p99", l.p99),
                    ("p999", l.p999),
                    ("max", l.max),
                ] {
                    f.push((format!("rr.{phase}.{n}"), Some(v), Ms));
                }
            }
        }
    }
    if let Some(x) = &r.fault {
        for (n, v) in [
            ("struck_ms", x.struck_ms),
            ("cleared_ms", x.cleared_ms),
            ("to_end_ms", x.to_end_ms),
            ("to_recovery_ms", x.to_recovery_ms),
            ("probe_gap_ms", x.probe_gap_ms),
        ] {
            f.push((format!("fault.{n}"), v, SignedMs));
        }
    }
    for (name, v, kind) in &f {
        if let Some(v) = v {
            check_f64(name, *v, *kind)?;
        }
    }
    for (name, v) in [
        ("transferred_bytes", r.transferred_bytes),
        ("zero_bytes", r.zero_bytes),
        ("disk_bytes", r.disk_bytes),
        ("mirror_progress_bytes", r.mirror_progress_bytes),
        ("multifd_bytes", r.multifd_bytes),
        ("normal_bytes", r.normal_bytes),
        ("wire_bytes", r.wire_bytes),
    ] {
        if let Some(v) = v {
            check_u64(name, v, MAX_BYTES, "bytes")?;
        }
    }
    let counts = [
        ("passes", r.passes),
        (
            "stream.retransmits",
            r.stream.as_ref().map(|s| s.retransmits),
        ),
        ("stream.lost_bytes", r.stream.as_ref().map(|s| s.lost_bytes)),
        ("rr.over_deadline", r.rr.as_ref().map(|x| x.over_deadline)),
        ("rr.retransmits", r.rr.as_ref().map(|x| x.retransmits)),
    ];
    for (name, v) in counts {
        if let Some(v) = v {
            check_u64(name, v, MAX_COUNT, "")?;
        }
    }
    let p = &r.params;
    if p.ram.0 == 0 {
        return Err(Absurd {
            field: "params.ram".into(),
            value: p.ram.to_string(),
            why: "no guest RAM (metrics divide by it)".into(),
        });
    }
    check_u64("params.ram", p.ram.0, MAX_BYTES, "bytes")?;
    check_f64("params.link_rate", p.link_rate.0 as f64 / 1e6, Link).map_err(|a| Absurd {
        value: p.link_rate.to_string(),
        ..a
    })?;
    if let Some(total) = r.total_time_ms {
        for (name, v) in [
            ("downtime_qemu_ms", r.downtime_qemu_ms),
            ("downtime_libvirt_ms", r.downtime_libvirt_ms),
            ("downtime_probe_ms", r.downtime_probe_ms),
            ("switchover_probe_ms", r.switchover_probe_ms),
            ("downtime_icmp_ms", r.downtime_icmp_ms),
        ] {
            if let Some(d) = v.filter(|d| *d > total + DOWNTIME_SLACK_MS) {
                return Err(Absurd {
                    field: name.into(),
                    value: show(d),
                    why: format!(
                        "longer than the whole migration (total_time_ms = {}) by more than {} s",
                        show(total),
                        DOWNTIME_SLACK_MS / 1e3
                    ),
                });
            }
        }
    }
    Ok(())
}
