//! The end-of-run table: one row per run with the headline measures (and
//! the disk's when runs have one, what the services' clients saw when
//! services ran, how each ended when a scenario has variants or
//! policies, and where the guest ended when faults were injected); the
//! line saying where the runs' time went; and the `--dry-run` plan before
//! any run.

use migbench_model::settings::StorageMode;
use migbench_model::RunRecord;

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

fn row(
    cells: &[String],
    pair: Option<&str>,
    disk: Option<&[String]>,
    svc: Option<&[String]>,
    how: Option<&[String]>,
    fault: Option<&[String]>,
) -> String {
    let pair = pair.map(|p| format!("{p:<12} ")).unwrap_or_default();
    let mut s = format!(
        "{:<9} {pair}{:<11} {:>8} {:>9} {:>9} {:>8} {:>10} {:>10} {:>6} {:>6} {:<10}",
        cells[0],
        cells[1],
        cells[2],
        cells[3],
        cells[4],
        cells[5],
        cells[6],
        cells[7],
        cells[8],
        cells[9],
        cells[10]
    );
    if let Some(d) = disk {
        s.push_str(&format!(
            " {:<17} {:>9} {:>8} {:<10}",
            d[0], d[1], d[2], d[3]
        ));
    }
    if let Some(v) = svc {
        s.push_str(&format!(" {:>8} {:>8} {:>8} {:>8}", v[0], v[1], v[2], v[3]));
    }
    if let Some(h) = how {
        s.push_str(&format!(" {:<18} {:<9} {:>6}", h[0], h[1], h[2]));
    }
    if let Some(f) = fault {
        s.push_str(&format!(" {:<36} {:<11} {:<7}", f[0], f[1], f[2]));
    }
    s.trim_end().to_string() + "\n"
}

/// Render the summary table as text.
pub fn render(records: &[RunRecord]) -> String {
    let disks = records
        .iter()
        .any(|r| r.params.storage_mode != StorageMode::None);
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Several host pairs: the second column names each run's pair.
    let pairs = records.iter().any(|r| !r.params.pair.is_empty());
    let head = strs(&[
        "run",
        "outcome",
        "link",
        "dirty",
        "total s",
        "qemu dt",
        "probe dt",
        "Mbit/s",
        "util%",
        "passes",
        "integrity",
    ]);
    let units = strs(&["", "", "", "", "", "ms", "ms", "", "", "", ""]);
    let dhead = strs(&["storage", "disk MiB", "disk s", "disk"]);
    let dunits = strs(&["", "on link", "", "integrity"]);
    let policies = records
        .iter()
        .any(|r| !r.params.variant.is_empty() || !r.interventions.is_empty());
    let services = records
        .iter()
        .any(|r| r.stream.is_some() || r.rr.is_some() || r.downtime_icmp_ms.is_some());
    let shead = strs(&["icmp dt", "req gap", "strm gap", "stall"]);
    let sunits = strs(&["ms", "ms", "ms", "n×ms"]);
    let phead = strs(&["variant", "detail", "slow"]);
    let punits = strs(&["", "", "down%"]);
    let faults = records.iter().any(|r| r.params.fault.is_some());
    let fhead = strs(&["fault", "guest", "answers"]);
    let funits = strs(&["", "ended on", ""]);
    let mut out = row(
        &head,
        pairs.then_some("pair"),
        disks.then_some(&dhead[..]),
        services.then_some(&shead[..]),
        policies.then_some(&phead[..]),
        faults.then_some(&fhead[..]),
    );
    out.push_str(&row(
        &units,
        pairs.then_some(""),
        disks.then_some(&dunits[..]),
        services.then_some(&sunits[..]),
        policies.then_some(&punits[..]),
        faults.then_some(&funits[..]),
    ));
    for r in records {
        let util = r.throughput_mbps.map(|t| 100.0 * t / r.link_rate_mbps);
        let cells = vec![
            r.run_id.clone(),
            r.outcome.to_string(),
            r.params.link_rate.to_string(),
            r.params.dirty_rate.to_string(),
            opt(r.total_time_ms.map(|t| t / 1e3), 2),
            opt(r.downtime_qemu_ms, 0),
            opt(r.downtime_probe_ms, 1),
            opt(r.throughput_mbps, 1),
            opt(util, 0),
            r.passes
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            r.integrity.to_string(),
        ];
        let disk = [
            r.params.storage_mode.to_string(),
            opt(r.disk_bytes.map(|b| b as f64 / 1048576.0), 1),
            opt(r.disk_time_ms.map(|t| t / 1e3), 2),
            r.disk_integrity.to_string(),
        ];
        let svc = [
            opt(r.downtime_icmp_ms, 1),
            opt(r.rr.as_ref().and_then(|x| x.switchover_gap_ms), 0),
            opt(r.stream.as_ref().and_then(|s| s.switchover_gap_ms), 0),
            // What a viewer with the smallest buffer saw: stalls × total ms.
            r.stream
                .as_ref()
                .and_then(|s| s.tightest())
                .map(|p| format!("{}×{:.0}", p.stalls, p.stall_ms))
                .unwrap_or_else(|| "-".into()),
        ];
        let how = [
            r.params.variant.clone(),
            r.outcome_detail
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            opt(r.workload_slowdown_pct, 0),
        ];
        let fault = [
            r.params.fault.to_string(),
            r.fault
                .as_ref()
                .map(|f| f.guest.to_string())
                .unwrap_or_else(|| "-".into()),
            r.fault
                .as_ref()
                .map(|f| if f.answers { "yes" } else { "no" }.to_string())
                .unwrap_or_else(|| "-".into()),
        ];
        out.push_str(&row(
            &cells,
            pairs.then_some(r.params.pair.as_str()),
            disks.then_some(&disk[..]),
            services.then_some(&svc[..]),
            policies.then_some(&how[..]),
            faults.then_some(&fault[..]),
        ));
    }
    out
}

/// Where the runs' time went: wall time, of it migrating, and the per-run
/// overhead (a run's wall time less its migration) of the runs that have
/// both; `None` when no run was timed.
pub fn render_timing(records: &[RunRecord]) -> Option<String> {
    let wall: f64 = records.iter().filter_map(|r| r.wall_ms).sum::<f64>() / 1e3;
    if wall == 0.0 {
        return None;
    }
    let migrating: f64 = records.iter().filter_map(|r| r.total_time_ms).sum::<f64>() / 1e3;
    let mut over: Vec<f64> = records
        .iter()
        .filter_map(|r| Some((r.wall_ms? - r.total_time_ms?) / 1e3))
        .collect();
    over.sort_by(f64::total_cmp);
    let mut line = format!(
        "time: {} runs took {wall:.1} s, {migrating:.1} s of it migrating",
        records.iter().filter(|r| r.wall_ms.is_some()).count()
    );
    if let (Some(lo), Some(hi), Some(median)) = (
        over.first(),
        over.last(),
        migbench_model::stats::median(&over),
    ) {
        line.push_str(&format!(
            "; overhead per run (wall less migration) median {median:.2} s, {lo:.2}–{hi:.2} s"
        ));
    }
    Some(line)
}

/// The `--dry-run` plan: each run in the order it would run with its
/// estimated duration, and the matrix's (for `auto` repetitions, at the
/// minimum and at the maximum of runs per cell).
pub fn render_plan(sc: &migbench_model::Scenario, matrix: &[migbench_model::RunParams]) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "scenario {} ({} runs, repetitions {}):\n",
        sc.name,
        matrix.len(),
        sc.repetitions
    );
    // Host pairs run in parallel: the longest pair's time.
    let total = migbench_predict::plan::matrix_secs(matrix);
    for p in sc.repetitions.order(matrix) {
        let est = migbench_predict::plan::run_secs(p);
        let _ = writeln!(s, "  {}  {}  ~{:.0}s", p.run_id(), p.label(), est);
    }
    let _ = match sc.repetitions {
        migbench_model::repeat::Repetitions::Auto(a) => writeln!(
            s,
            "estimated duration: {:.1} min at the minimum of {} runs per cell, {:.1} min at the maximum",
            total / 60.0 * a.min as f64 / a.max as f64,
            a.min,
            total / 60.0
        ),
        _ => writeln!(s, "estimated duration: {:.1} min", total / 60.0),
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_line_takes_the_median_overhead_of_timed_migrations() {
        let p = migbench_model::matrix::sample_run("");
        let run = |wall: Option<f64>, total: Option<f64>| RunRecord {
            wall_ms: wall,
            total_time_ms: total,
            ..RunRecord::pending(&p, 0.0, "tcg")
        };
        assert_eq!(render_timing(&[run(None, None)]), None);
        let line = render_timing(&[
            run(Some(12_000.0), Some(10_000.0)),
            run(Some(3_000.0), Some(1_500.0)),
            run(Some(5_000.0), None), // failed before migrating
            run(Some(4_000.0), Some(1_000.0)),
        ])
        .unwrap();
        assert_eq!(
            line,
            "time: 4 runs took 24.0 s, 12.5 s of it migrating; overhead per run (wall less migration) median 2.00 s, 1.50–3.00 s"
        );
    }
    #[test]
    fn a_pair_column_appears_with_host_pairs_and_keeps_every_other_column() {
        let p = migbench_model::matrix::sample_run("");
        let plain = RunRecord::pending(&p, 0.0, "tcg");
        let paired = RunRecord::pending(
            &migbench_model::RunParams {
                pair: "rack-b".into(),
                ..p.clone()
            },
            0.0,
            "tcg",
        );
        let without = render(std::slice::from_ref(&plain));
        assert!(!without.contains("pair"), "{without}");
        let with = render(&[paired]);
        let head = with.lines().next().unwrap();
        assert!(head.starts_with("run       pair         outcome"), "{head}");
        assert!(head.ends_with("integrity"), "{head}");
        let run = with.lines().nth(2).unwrap();
        // The pair's column, then the same cells as without it.
        let rest = without.lines().nth(2).unwrap()[10..].to_string();
        assert_eq!(run, format!("{}rack-b       {rest}", &run[..10]), "{with}");
    }

    use migbench_model::record::{RrSummary, StreamSummary};

    #[test]
    fn service_columns_show_the_switchover_figures_only_when_services_ran() {
        let p = migbench_model::matrix::sample_run("");
        let plain = RunRecord::pending(&p, 0.0, "tcg");
        assert!(!render(std::slice::from_ref(&plain)).contains("icmp dt"));
        let mut r = plain;
        r.downtime_icmp_ms = Some(101.0);
        r.rr = Some(RrSummary {
            switchover_gap_ms: Some(222.0),
            ..RrSummary::default()
        });
        r.stream = Some(StreamSummary {
            longest_gap_ms: 999.0,
            switchover_gap_ms: Some(333.0),
            playout: vec![migbench_model::record::Playout {
                stalls: 2,
                stall_ms: 444.4,
                ..Default::default()
            }],
            ..StreamSummary::default()
        });
        let t = render(&[r]);
        assert!(t.contains("icmp dt") && t.contains("req gap"), "{t}");
        let row = t.lines().nth(2).unwrap();
        assert!(
            row.contains("101.0") && row.contains("222") && row.contains("333"),
            "{row}"
        );
        assert!(row.contains("2×444"), "a viewer's stalls: {row}");
        assert!(
            !row.contains("999"),
            "the longest gap is not the switchover's: {row}"
        );
    }

    #[test]
    fn fault_columns_say_where_the_guest_ended() {
        let p = migbench_model::matrix::sample_run("[fault]\ninject = \"dst-kill at 3s\"\n");
        let mut r = RunRecord::pending(&p, 0.0, "tcg");
        assert!(!render(&[RunRecord::pending(
            &migbench_model::matrix::sample_run(""),
            0.0,
            "tcg"
        )])
        .contains("fault"));
        r.fault = Some(migbench_model::fault::FaultRecord {
            fault: p.fault,
            struck: true,
            struck_ms: Some(3000.0),
            phase: Some("active".into()),
            cleared_ms: None,
            guest: migbench_model::fault::GuestLocation::Source,
            answers: true,
            to_end_ms: Some(90.0),
            to_recovery_ms: None,
            recover_attempts: 0,
            probe_gap_ms: Some(0.0),
            leftovers: Some(0),
            errors: vec![],
        });
        let t = render(&[r]);
        let row = t.lines().nth(2).unwrap();
        assert!(
            row.contains("dst-kill at 3s") && row.contains("source") && row.contains("yes"),
            "{t}"
        );
    }
}
