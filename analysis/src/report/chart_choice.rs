//! Which charts apply to the data and drawing them: bars with intervals,
//! lines over a numeric dimension, the convergence map, per-run timelines
//! and RTT CDFs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::charts::bars::{Bars, Series};
use crate::charts::lines::{Line, Lines};
use crate::charts::timeline::Timeline;
use crate::charts::{render, Rendered};
use crate::dims::dim;
use crate::frame::{all_runs, group_key, varying};
use crate::load::ResultsSet;
use crate::stats::Estimate;
use crate::summary::{metric_of, Summary, SummaryRow};

use super::MAX_TIMELINES;

fn short_label(row: &SummaryRow) -> String {
    if row.dims.is_empty() {
        return "all runs".into();
    }
    row.dims.values().cloned().collect::<Vec<_>>().join(" · ")
}

/// Charts that apply to this data.
pub fn charts(
    sets: &[ResultsSet],
    summary: &Summary,
    dir: &Path,
    series: &super::drawn_series::Series,
) -> Result<Vec<Rendered>> {
    let mut out = Vec::new();
    let rows = &summary.rows;
    let cats: Vec<String> = rows.iter().map(short_label).collect();
    let groups = summary.varying.join(" × ");
    let runs = all_runs(sets);
    let marked = |m: &str| super::outliers::per_category(&runs, rows, m);
    if !summary.varying.is_empty() {
        let bound: Vec<Option<f64>> = metric_of(rows, "bound_s")
            .iter()
            .map(|e| e.map(|e| e.median))
            .collect();
        out.push(render(
            &Bars {
                name: "total-time".into(),
                title: format!("Total migration time per {groups}"),
                y_axis: "total time (s)".into(),
                categories: cats.clone(),
                series: vec![Series {
                    name: "total time (median, 95% CI)".into(),
                    values: metric_of(rows, "total_time_s"),
                    outliers: marked("total_time_s"),
                }],
                marker: Some((
                    bound,
                    "physical bound (data that must cross / link rate)".into(),
                )),
            },
            dir,
        )?);
        // Each source of a downtime figure that has one: QEMU's own (QMP),
        // libvirt's two (libvirt backend); then what clients saw: the
        // network (ICMP, kernel echo), the application (UDP echo from the
        // agent) and a TCP stream's longest gap.
        // With services, every client figure is the switchover's (so the
        // migration's setup stall is not compared with it).
        let services = rows
            .iter()
            .any(|r| r.metrics.contains_key("downtime_icmp_ms"));
        let probe = if services {
            (
                "switchover_probe_ms",
                "UDP probe at switchover (application)",
            )
        } else {
            ("downtime_probe_ms", "probe-measured (client view)")
        };
        let sources = [
            ("downtime_qemu_ms", "QEMU-reported"),
            ("downtime_libvirt_ms", "libvirt-reported"),
            ("downtime_libvirt_net_ms", "libvirt, without clock offset"),
            ("downtime_icmp_ms", "ICMP echo at switchover (network)"),
            probe,
            ("stall_rr_ms", "TCP requests' stall"),
            ("stall_stream_ms", "TCP stream's gap"),
        ];
        let series: Vec<Series> = sources
            .iter()
            .map(|(m, name)| Series {
                name: (*name).into(),
                values: metric_of(rows, m),
                outliers: if super::outliers::FLAGGED_METRICS.contains(m) {
                    marked(m)
                } else {
                    Vec::new()
                },
            })
            .filter(|s| s.values.iter().any(Option::is_some) || s.name.starts_with("QEMU"))
            .collect();
        let reported = |n: &str| n.contains("reported") || n.contains("offset");
        let mut by: Vec<&str> = series
            .iter()
            .filter(|s| reported(&s.name))
            .map(|s| s.name.split(['-', ',']).next().unwrap_or(""))
            .collect();
        by.dedup();
        out.push(render(
            &Bars {
                name: "downtime".into(),
                title: format!(
                    "Downtime per {groups}: as {} reported, and as clients saw it",
                    by.join("/")
                ),
                y_axis: "downtime (ms)".into(),
                categories: cats.clone(),
                series,
                marker: None,
            },
            dir,
        )?);
        out.push(render(
            &Bars {
                name: "throughput".into(),
                title: format!("Migration throughput per {groups}"),
                y_axis: "throughput (Mbit/s)".into(),
                categories: cats.clone(),
                series: vec![Series {
                    name: "throughput".into(),
                    values: metric_of(rows, "throughput_mbps"),
                    outliers: Vec::new(),
                }],
                marker: Some((
                    rows.iter()
                        .map(|r| r.dim_values.get("link_rate").copied())
                        .collect(),
                    "link rate".into(),
                )),
            },
            dir,
        )?);
        let util: Vec<Option<Estimate>> = metric_of(rows, "link_utilisation")
            .into_iter()
            .map(|e| e.map(|e| e.scaled(100.0)))
            .collect();
        out.push(render(
            &Bars {
                name: "link-utilisation".into(),
                title: format!("Link utilisation per {groups}"),
                y_axis: "throughput / link rate (%)".into(),
                categories: cats.clone(),
                series: vec![Series {
                    name: "link utilisation".into(),
                    values: util,
                    outliers: Vec::new(),
                }],
                marker: None,
            },
            dir,
        )?);
    }
    let vary = varying(&runs);
    let varies = |name: &str| summary.varying.iter().any(|v| v == name);
    super::service::charts(&runs, &vary, rows, &cats, &groups, dir, &mut out)?;
    if varies("dirty_rate") {
        out.push(render(
            &lines_over(
                rows,
                &summary.varying,
                "dirty_rate",
                "total-time-vs-dirty-rate",
                "Total time against dirty rate, with the physical bound",
                &[("total_time_s", false, ""), ("bound_s", true, " bound")],
                "total time (s)",
            ),
            dir,
        )?);
    }
    if varies("downtime_limit") {
        let mut chart = lines_over(
            rows,
            &summary.varying,
            "downtime_limit",
            "downtime-vs-limit",
            "Downtime against the max-downtime setting (QEMU-reported solid, probe-measured dashed)",
            &[
                ("downtime_qemu_ms", false, " reported"),
                ("downtime_probe_ms", true, " measured"),
            ],
            "downtime (ms)",
        );
        // The limit itself, for reading "follows the limit" off the chart.
        let mut limits: Vec<f64> = rows
            .iter()
            .map(|r| r.dim_values["downtime_limit"])
            .collect();
        limits.sort_by(f64::total_cmp);
        limits.dedup();
        let colors = chart
            .lines
            .iter()
            .map(|l| l.color)
            .max()
            .map_or(0, |c| c + 1);
        chart.lines.push(Line {
            name: "the limit (y = x)".into(),
            points: limits
                .into_iter()
                .map(|x| (x, Estimate::exact(x)))
                .collect(),
            color: colors,
            dashed: true,
        });
        out.push(render(&chart, dir)?);
    }
    if varies("storage_mode") {
        let median = |m: &str| {
            metric_of(rows, m)
                .iter()
                .map(|e| e.map(|e| e.median))
                .collect::<Vec<_>>()
        };
        out.push(render(
            &crate::charts::stacked::Stacked {
                name: "storage-phases".into(),
                title: format!(
                    "Where the time goes per {groups}: disk phase, then RAM phase (medians)"
                ),
                y_axis: "time (s)".into(),
                categories: cats.clone(),
                segments: vec![
                    (
                        "disk phase (mirror until in sync)".into(),
                        median("disk_time_s"),
                    ),
                    (
                        "RAM phase (migrate to completion)".into(),
                        median("ram_phase_s"),
                    ),
                ],
            },
            dir,
        )?);
    }
    let remedies = [
        "variant",
        "auto_converge",
        "postcopy",
        "downtime_steps",
        "multifd_channels",
        "xbzrle_cache",
    ];
    if remedies.iter().any(|d| varies(d)) {
        out.push(render(
            &Bars {
                name: "workload-slowdown".into(),
                title: format!("Workload slowdown while migrating per {groups} (completed runs)"),
                y_axis: "slowdown: 1 − rate during / rate before (%)".into(),
                categories: cats.clone(),
                series: vec![Series {
                    name: "workload slowdown".into(),
                    values: metric_of(rows, "workload_slowdown_pct"),
                    outliers: Vec::new(),
                }],
                marker: None,
            },
            dir,
        )?);
    }
    if varies("dirty_rate") || varies("link_rate") || varies("max_bandwidth") {
        out.push(render(&super::pooled::convergence(&runs), dir)?);
    }
    // Per-run timelines: the outliers first (the runs a reader wants to
    // see, most extreme first, at most half the timelines), then the first
    // repetition of each group; never more than MAX_TIMELINES, however
    // many runs (the other runs are in the aggregate charts).
    let mut flagged: Vec<_> = super::outliers::FLAGGED_METRICS
        .iter()
        .flat_map(|m| super::outliers::flagged(&runs, m))
        .collect();
    flagged.sort_by(|a, b| b.mads.total_cmp(&a.mads));
    let mut seen = std::collections::HashSet::new();
    let firsts = runs.iter().filter(|r| seen.insert(group_key(r, &vary)));
    let key = |r: &&crate::frame::RunRef| (r.set.name.clone(), r.rec.run_id.clone());
    let chosen = pick_timelines(flagged.iter().map(|f| f.run), firsts, key, MAX_TIMELINES);
    let outlier = |r: &crate::frame::RunRef| {
        flagged
            .iter()
            .find(|f| f.run.set.name == r.set.name && f.run.rec.run_id == r.rec.run_id)
            .map(|f| format!(" — outlier, {:.1} MADs from its group's median", f.mads))
            .unwrap_or_default()
    };
    for r in chosen {
        let progress = series.progress(r);
        if progress.is_empty() {
            continue;
        }
        let outages = series
            .probes(r)
            .map(|ev| {
                let thr =
                    migbench_pure::outage::outage_threshold_ms(r.rec.params.probe_interval.ms());
                migbench_pure::outage::outage_windows(&ev, thr)
                    .iter()
                    .map(|w| (w.start_ms, w.end_ms))
                    .collect()
            })
            .unwrap_or_default();
        let t0 = progress[0].t_ms;
        out.push(render(
            &Timeline {
                name: format!(
                    "timeline-{}-{}",
                    sanitize(&r.set.name),
                    sanitize(&r.rec.run_id)
                ),
                title: format!(
                    "{}{} ({}): link {}, dirty {}, RAM {}, limit {}{}",
                    r.rec.run_id,
                    if r.rec.params.variant.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", r.rec.params.variant)
                    },
                    r.rec.outcome,
                    r.rec.params.link_rate,
                    r.rec.params.dirty_rate,
                    r.rec.params.ram,
                    r.rec.params.downtime_limit,
                    outlier(r)
                ),
                progress,
                workload: series.workload(r),
                outages,
                t0_ms: t0,
                interventions: r
                    .rec
                    .interventions
                    .iter()
                    .map(|i| (i.t_ms / 1e3, intervention_label(i)))
                    .chain(fault_marks(r.rec))
                    .collect(),
                service: super::service::timeline_series(r, series),
            },
            dir,
        )?);
    }
    if let Some(cdf) = super::pooled::rtt_cdf(&runs, series) {
        out.push(render(&cdf, dir)?);
    }
    Ok(out)
}

/// The runs that get a timeline: up to half of `max` from `outliers`
/// (most extreme first), then `firsts` (each group's first run) up to
/// `max`, each run once (`key` names a run).
fn pick_timelines<T, K: Eq + std::hash::Hash>(
    outliers: impl Iterator<Item = T>,
    firsts: impl Iterator<Item = T>,
    key: impl Fn(&T) -> K,
    max: usize,
) -> Vec<T> {
    let mut picked = std::collections::HashSet::new();
    let mut chosen: Vec<T> = outliers
        .filter(|r| picked.insert(key(r)))
        .take(max / 2)
        .collect();
    for r in firsts {
        if chosen.len() >= max {
            break;
        }
        if picked.insert(key(&r)) {
            chosen.push(r);
        }
    }
    chosen
}

/// An injected fault's moments as markers: struck, lifted, recovered
/// (seconds since `migrate`, like the interventions).
fn fault_marks(rec: &migbench_model::RunRecord) -> Vec<(f64, String)> {
    let Some(f) = rec.fault.as_ref() else {
        return Vec::new();
    };
    let Some(struck) = f.struck_ms else {
        return Vec::new();
    };
    let mut marks = vec![(struck / 1e3, f.fault.kind.name().to_string())];
    if let Some(c) = f.cleared_ms {
        marks.push((c / 1e3, "lifted".into()));
    }
    if let Some(back) = f.to_recovery_ms {
        marks.push(((struck + back) / 1e3, "recovered".into()));
    }
    marks
}

/// A few words for an intervention marker.
fn intervention_label(i: &migbench_model::record::Intervention) -> String {
    use migbench_model::record::Action;
    match i.action {
        Action::SetDowntimeLimit => format!("limit {:.0} ms", i.value.unwrap_or(0.0)),
        Action::StartPostcopy => "post-copy".into(),
        Action::PauseGuest => "pause".into(),
        Action::Abort => "abort".into(),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Lines of some metrics over dimension `x`, one line per combination of
/// the other varying dimensions.
fn lines_over(
    rows: &[SummaryRow],
    varying: &[String],
    x: &str,
    name: &str,
    title: &str,
    metrics: &[(&str, bool, &str)],
    y_axis: &str,
) -> Lines {
    let others: Vec<&String> = varying.iter().filter(|v| v.as_str() != x).collect();
    let mut series: BTreeMap<String, Vec<&SummaryRow>> = BTreeMap::new();
    for r in rows {
        let key = others
            .iter()
            .map(|o| r.dims[*o].clone())
            .collect::<Vec<_>>()
            .join(" · ");
        series.entry(key).or_default().push(r);
    }
    let mut lines = Vec::new();
    for (ci, (key, rs)) in series.iter().enumerate() {
        for (m, dashed, suffix) in metrics {
            let mut points: Vec<(f64, Estimate)> = rs
                .iter()
                .filter_map(|r| Some((r.dim_values[x], *r.metrics.get(*m)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            if points.is_empty() {
                continue;
            }
            let base = if key.is_empty() {
                "all".to_string()
            } else {
                key.clone()
            };
            lines.push(Line {
                name: format!("{base}{suffix}"),
                points,
                color: ci,
                dashed: *dashed,
            });
        }
    }
    Lines {
        name: name.into(),
        title: title.into(),
        x_axis: dim(x).map(|d| d.axis).unwrap_or(x).into(),
        y_axis: y_axis.into(),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_go_to_outliers_first_then_one_run_per_group_capped() {
        // 30 outliers (run ids 1000..), 50 groups' first runs (0..50, run
        // 3 also an outlier): 6 outliers, then groups, 12 in all, no run
        // twice.
        let outliers = [3].into_iter().chain(1000..1030);
        let got = pick_timelines(outliers, 0..50, |r| *r, 12);
        assert_eq!(got, vec![3, 1000, 1001, 1002, 1003, 1004, 0, 1, 2, 4, 5, 6]);
        // Few runs: every group's first run, no outlier.
        assert_eq!(
            pick_timelines(std::iter::empty(), 0..3, |r| *r, 12),
            vec![0, 1, 2]
        );
    }
}
