//! The model against real runs (`fixtures/model/*.jsonl`, TCG on 2
//! cores): the shipped constants are what a fit of the fixtures gives;
//! fitted on every configuration but one, it predicts the one left out
//! (the docs quote the table this prints, and the assertions hold it
//! to those figures); fitted on them all, it predicts configurations it
//! has never seen (`fixtures/model/holdout/`); a fit whose runs do not
//! vary RAM, link or limit keeps the prior for what they cannot tell.

mod model_fixtures;

use std::path::Path;

use migbench_model::stats::median;
use migbench_model::RunRecord;
use migbench_predict::accuracy::{
    check, downtime_tolerance_ms, downtime_tolerance_p90_ms, measured_downtime, Checked,
};
use migbench_predict::{fit, fit_report, Constants, Envelope, Model};
use model_fixtures::load;

fn fixtures() -> Vec<RunRecord> {
    load("")
}

/// The fit of every fixture, made once for the tests that use it.
fn fitted() -> &'static Model {
    static FITTED: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    FITTED.get_or_init(|| fit(&fixtures()).expect("constants fitted"))
}

/// Each fixture file's stem with the configurations it holds.
fn files() -> Vec<(String, Vec<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let mut out: Vec<(String, Vec<String>)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| {
            let cells = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .map(|l| cell(&serde_json::from_str::<RunRecord>(l).unwrap()))
                .collect();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), cells)
        })
        .collect();
    out.sort();
    out
}

/// A configuration: everything a run's parameters set but its repetition.
fn cell(r: &RunRecord) -> String {
    let p = &r.params;
    format!(
        "{} {} ws {} {} limit {} cap {}",
        p.ram, p.dirty_rate, p.working_set, p.link_rate, p.downtime_limit, p.max_bandwidth
    )
}

/// The `q`-quantile of `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = v.to_vec();
    v.sort_by(f64::total_cmp);
    let k = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[k]
}

/// Figures over checked runs: median and 90th percentile of |total time
/// error| (%) and |downtime error| (ms), and the share of runs whose
/// ending was right.
#[derive(Debug)]
struct Figures {
    runs: usize,
    time_median: f64,
    time_p90: f64,
    down_median: f64,
    down_p90: f64,
    /// Median of |downtime error| over the run's median tolerance (20 ms
    /// or 15 %): at most 1 meets the target.
    down_scaled_median: f64,
    /// 90th percentile of |downtime error| over the run's p90 tolerance
    /// (50 ms or 30 %).
    down_scaled_p90: f64,
    ending_pct: f64,
}

fn figures(checked: &[Checked]) -> Figures {
    let time: Vec<f64> = checked
        .iter()
        .filter_map(|c| c.time_error_pct.map(f64::abs))
        .collect();
    let down: Vec<f64> = checked
        .iter()
        .filter_map(|c| c.downtime_error_ms.map(f64::abs))
        .collect();
    let scaled = |tol: fn(f64) -> f64| -> Vec<f64> {
        checked
            .iter()
            .filter_map(|c| Some(c.downtime_error_ms?.abs() / tol(measured_downtime(c.rec)?)))
            .collect()
    };
    Figures {
        down_scaled_median: median(&scaled(downtime_tolerance_ms)).unwrap(),
        down_scaled_p90: quantile(&scaled(downtime_tolerance_p90_ms), 0.9),
        runs: checked.len(),
        time_median: median(&time).unwrap(),
        time_p90: quantile(&time, 0.9),
        down_median: median(&down).unwrap(),
        down_p90: quantile(&down, 0.9),
        ending_pct: checked
            .iter()
            .filter(|c| c.completed == c.predicted.converges)
            .count() as f64
            / checked.len() as f64
            * 100.0,
    }
}

fn print_row(k: &Checked) {
    let r = k.rec;
    let mut line = format!("{:<60}", cell(r));
    match (k.time_error_pct, r.total_time_ms) {
        (Some(e), Some(t)) => {
            line += &format!(
                " {:>7.1} {:>7.1} {:>6.1}",
                t / 1e3,
                k.predicted.total_time_ms / 1e3,
                e
            )
        }
        _ => line += &format!(" {:>22}", ""),
    }
    if let (Some(e), Some(d)) = (k.downtime_error_ms, measured_downtime(r)) {
        line += &format!(" {d:>7.0} {:>7.0} {e:>6.0}", d + e);
    }
    println!(
        "{line}  {} / {}",
        r.outcome,
        if k.predicted.converges {
            "completes"
        } else {
            "does not"
        }
    );
}

/// One configuration's measured medians: total time and downtime, ms.
fn medians(runs: &[&RunRecord]) -> (f64, f64) {
    let of = |v: Vec<f64>| median(&v).expect("a measured run");
    (
        of(runs.iter().filter_map(|r| r.total_time_ms).collect()),
        of(runs.iter().filter_map(|r| measured_downtime(r)).collect()),
    )
}

/// The rounding `LAB` writes a constant with, by its name; a constant
/// without one fails the test below until it has one, so none is shipped
/// unchecked. `None`: not fitted (the prior's, equal).
fn rounding(name: &str) -> Option<f64> {
    Some(match name {
        "goodput" => 0.001,
        "dirty_scale" | "remainder_share" | "sync_share" => 0.01,
        "setup_ms"
        | "setup_ms_per_gib"
        | "pass_ms"
        | "switchover_ms"
        | "switchover_ms_per_gib"
        | "check_ms" => 1.0,
        "base_bytes" | "base_bytes_per_gib" | "background_rate" | "tail_bytes" | "check_bytes" => {
            0.1e6
        }
        "dirty_capacity" | "compress_rate" => return None,
        other => panic!("no rounding for the constant `{other}`: say how LAB writes it"),
    })
}

/// Each constant as shipped against a fresh fit of the fixtures: equal
/// within the rounding `LAB` is written with.
#[test]
fn the_shipped_constants_are_a_fit_of_the_fixtures() {
    let m = fitted();
    let (f, lab) = (m.constants, Constants::LAB);
    println!("fitted: {f:?}");
    let (fitted, shipped) = (
        serde_json::to_value(f).unwrap(),
        serde_json::to_value(lab).unwrap(),
    );
    let names: Vec<&String> = fitted.as_object().unwrap().keys().collect();
    assert!(names.len() >= 17, "{names:?}");
    for name in names {
        let (x, y) = (
            fitted[name].as_f64().unwrap(),
            shipped[name].as_f64().unwrap(),
        );
        match rounding(name) {
            Some(unit) => assert!(
                (x - y).abs() <= unit / 2.0 + 1e-9,
                "{name}: fitted {x}, shipped {y} (rounded to {unit})"
            ),
            None => assert_eq!(x, y, "{name}: not fitted, the prior's"),
        }
    }
    // The envelope shipped is the fixtures'.
    println!("envelope: {:?}", m.envelope);
    assert_eq!(m.envelope, Envelope::LAB);
    assert_eq!(Model::LAB.constants, lab);
}

/// The figures the docs state for the leave-one-configuration-out
/// table: (total time median %, p90 %, downtime median ms, p90 ms,
/// endings right %). A change of the model or the fixtures that moves
/// them beyond the margins fails here until the docs say so.
const README_LOCO: (f64, f64, f64, f64, f64) = (3.2, 11.0, 22.0, 63.0, 98.9);

/// The docs' downtime figures in the issue's own units (|error| over
/// 20 ms or 15 % for the median, over 50 ms or 30 % for the 90th
/// percentile; at most 1 meets a target): the model left out one
/// configuration at a time, and the repeatability floor — each run
/// predicted by the median of the other repetitions of its own
/// configuration, which no model of the configuration can beat on
/// average.
/// (2026-12-06: the re-sync remainder moved the model's from 0.88 and
/// 1.03; the margins and the p90's hold at the floor + 0.05 are as
/// before.)
const README_SCALED: (f64, f64, f64, f64) = (0.71, 1.04, 0.60, 1.02);

#[test]
fn left_out_configurations_are_predicted_as_the_readme_says() {
    let recs = fixtures();
    let mut cells: Vec<String> = recs.iter().map(cell).collect();
    cells.sort();
    cells.dedup();
    assert!(cells.len() >= 40, "{} configurations", cells.len());
    println!(
        "{:<60} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6}  ending",
        "configuration left out", "total s", "pred s", "err %", "down ms", "pred ms", "err ms"
    );
    let mut all: Vec<Checked> = Vec::new();
    for c in &cells {
        let train: Vec<RunRecord> = recs.iter().filter(|r| cell(r) != *c).cloned().collect();
        let test: Vec<&RunRecord> = recs.iter().filter(|r| cell(r) == *c).collect();
        let constants = fit(&train).expect("fitted").constants;
        for k in check(&test, &constants) {
            print_row(&k);
            all.push(k);
        }
    }
    // Per fixture file, as the docs quote it.
    println!("| fixture | configurations | runs | total time median | p90 | downtime median | p90 | endings right |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, file_cells) in files() {
        let mut n = file_cells.clone();
        n.sort();
        n.dedup();
        let part: Vec<Checked> = all
            .iter()
            .filter(|k| file_cells.contains(&cell(k.rec)))
            .cloned()
            .collect();
        let g = figures(&part);
        println!(
            "| {name} | {} | {} | {:.1} % | {:.1} % | {:.0} ms | {:.0} ms | {:.0} % |",
            n.len(),
            g.runs,
            g.time_median,
            g.time_p90,
            g.down_median,
            g.down_p90,
            g.ending_pct
        );
    }
    let f = figures(&all);
    println!(
        "left out one of {} configurations at a time ({} runs): total time median {:.1} %, p90 {:.1} %; downtime median {:.0} ms, p90 {:.0} ms; endings right {:.0} %; downtime error over its tolerance: median {:.2} (of 20 ms or 15 %), p90 {:.2} (of 50 ms or 30 %)",
        cells.len(),
        f.runs,
        f.time_median,
        f.time_p90,
        f.down_median,
        f.down_p90,
        f.ending_pct,
        f.down_scaled_median,
        f.down_scaled_p90,
    );
    let (tm, tp, dm, dp, end) = README_LOCO;
    let near = |what: &str, got: f64, stated: f64, margin: f64| {
        assert!(
            (got - stated).abs() <= margin,
            "{what}: {got:.1} where the docs state {stated} (±{margin}): {f:?}"
        );
    };
    near("total time median %", f.time_median, tm, 0.3);
    near("total time p90 %", f.time_p90, tp, 1.0);
    near("downtime median ms", f.down_median, dm, 3.0);
    near("downtime p90 ms", f.down_p90, dp, 8.0);
    near("endings right %", f.ending_pct, end, 0.5);
    let floor = repeatability_floor(&recs);
    println!(
        "downtime |error| over its tolerance, median (of 20 ms or 15 %) and p90 (of 50 ms or 30 %): model {:.2} and {:.2}; the repeatability floor {:.2} and {:.2} ({} runs in configurations run more than once)",
        f.down_scaled_median, f.down_scaled_p90, floor.0, floor.1, floor.2
    );
    let (sm, sp, fm, fp) = README_SCALED;
    near("downtime scaled median", f.down_scaled_median, sm, 0.03);
    near("downtime scaled p90", f.down_scaled_p90, sp, 0.05);
    near("floor scaled median", floor.0, fm, 0.03);
    near("floor scaled p90", floor.1, fp, 0.05);
    // The targets: total time, endings and the downtime's median.
    assert!(f.time_median <= 5.0 && f.time_p90 <= 15.0, "{f:?}");
    assert!(f.ending_pct >= 95.0, "{f:?}");
    assert!(f.down_scaled_median <= 1.0, "{f:?}");
    // The downtime's 90th percentile target (1) is below what repeating
    // a configuration gives (the floor): the model is held at the floor.
    assert!(
        f.down_scaled_p90 <= floor.1 + 0.05,
        "p90 {:.2} against the floor {:.2}",
        f.down_scaled_p90,
        floor.1
    );
}

/// Each run's QEMU downtime predicted by the median of the other runs of
/// its configuration (configurations run more than once): the median of
/// |error| over 20 ms or 15 %, the 90th percentile over 50 ms or 30 %,
/// and the runs counted.
fn repeatability_floor(recs: &[RunRecord]) -> (f64, f64, usize) {
    let done: Vec<(&RunRecord, f64)> = recs
        .iter()
        .filter(|r| r.outcome == migbench_model::Outcome::Completed)
        .filter_map(|r| Some((r, measured_downtime(r)?)))
        .collect();
    let (mut m, mut p) = (Vec::new(), Vec::new());
    for (r, d) in &done {
        let others: Vec<f64> = done
            .iter()
            .filter(|(o, _)| cell(o) == cell(r) && o.params.variant == r.params.variant)
            .filter(|(o, _)| !std::ptr::eq(*o, *r))
            .map(|(_, d)| *d)
            .collect();
        if let Some(guess) = median(&others) {
            m.push((guess - d).abs() / downtime_tolerance_ms(*d));
            p.push((guess - d).abs() / downtime_tolerance_p90_ms(*d));
        }
    }
    (median(&m).unwrap(), quantile(&p, 0.9), m.len())
}

/// Configurations no fixture has (the issue's own: a 512 MiB guest over
/// 200 Mbit with a 200 ms limit, idle and 3 MB/s, with a working set of a
/// quarter of RAM as every fitted fixture has, and with the default
/// 64 MiB; a 384 MiB guest over 150 Mbit with a 250 ms limit, idle
/// and 2 MB/s; a 640 MiB guest over 400 Mbit with a 150 ms limit, idle
/// and 2 MB/s; a 576 MiB guest over 300 Mbit with a 200 ms limit, idle
/// and 4 MB/s, and a 704 MiB guest over 350 Mbit with a 180 ms limit,
/// idle and 3 MB/s, both run after the model's last change; three runs
/// each),
/// run here and never fitted on: each cell's median within the issue's
/// targets (total time 10 %, downtime 50 ms or 25 %).
#[test]
fn configurations_never_fitted_on_are_predicted_within_the_targets() {
    let c = fitted().constants;
    let held = load("holdout");
    assert_eq!(held.len(), 36);
    let mut cells: Vec<String> = held.iter().map(cell).collect();
    cells.sort();
    cells.dedup();
    for name in cells {
        let runs: Vec<&RunRecord> = held.iter().filter(|r| cell(r) == name).collect();
        let checked = check(&runs, &c);
        for k in &checked {
            print_row(k);
        }
        let p = checked[0].predicted;
        let (total, down) = medians(&runs);
        let pd = p.downtime_ms.unwrap();
        println!(
            "{name}: total {:.1} s predicted {:.1} s; downtime {down:.0} ms predicted {pd:.0} ms",
            total / 1e3,
            p.total_time_ms / 1e3
        );
        assert!(
            (p.total_time_ms - total).abs() <= 0.10 * total,
            "{name}: total {total} predicted {}",
            p.total_time_ms
        );
        assert!(
            (pd - down).abs() <= (0.25 * down).max(50.0),
            "{name}: downtime {down} predicted {pd}"
        );
    }
}

/// A configuration never fitted on whose downtime the model misses
/// (`fixtures/model/misses/check5`: an 896 MiB guest over 250 Mbit, a
/// 250 ms limit, 5 MB/s; run after the model's last change, then six
/// more runs per cell in `check5-again`): measured median 153 ms of nine
/// (105–207), predicted 234 ms, beyond the 50 ms or 25 %; the
/// idle cell (139 ms of nine, 57–204, predicted 158) and both total
/// times meet the targets. The docs state these figures; a change of the
/// model that moves them fails here until the docs say so (and a fix
/// moves the check to holdout/).
#[test]
fn the_documented_miss_is_what_the_docs_say() {
    let c = fitted().constants;
    let runs = load("misses");
    assert_eq!(runs.len(), 18);
    // (dirty rate MB/s, measured median ms, predicted ms, meets the target)
    for (rate, measured, predicted, meets) in [(0, 139.0, 157.0, true), (5, 153.0, 234.0, false)] {
        let cell: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.params.dirty_rate.0 == rate * 1_000_000)
            .collect();
        let p = check(&cell, &c)[0].predicted;
        let (total, down) = medians(&cell);
        let pd = p.downtime_ms.unwrap();
        println!("{rate} MB/s: downtime {down:.0} ms predicted {pd:.0} ms; total {total:.0} ms predicted {:.0} ms", p.total_time_ms);
        assert!(
            (down - measured).abs() < 0.5,
            "{rate} MB/s: measured {down}"
        );
        assert!((pd - predicted).abs() <= 5.0, "{rate} MB/s: predicted {pd}");
        assert_eq!(
            (pd - down).abs() <= (0.25 * down).max(50.0),
            meets,
            "{rate} MB/s"
        );
        assert!((p.total_time_ms - total).abs() <= 0.10 * total);
    }
}

/// A fit on runs of one RAM size (link-speed: 1 GiB) keeps the prior's
/// per-GiB slopes and says so, so a post-copy pause is not predicted as
/// nothing; one on a single configuration names every share it could not
/// tell apart too; nothing starts from `LAB`.
#[test]
fn a_fit_keeps_the_prior_for_what_its_runs_cannot_identify() {
    let recs = fixtures();
    let one_ram: Vec<RunRecord> = recs
        .iter()
        .filter(|r| r.params.ram.0 == 1 << 30 && r.params.downtime_limit.ms() == 300.0)
        .cloned()
        .collect();
    let f = fit_report(&one_ram).unwrap();
    println!("{:?}", f.unidentified);
    let c = f.model.constants;
    let prior = Constants::PRIOR;
    assert_eq!(c.setup_ms_per_gib, prior.setup_ms_per_gib);
    assert_eq!(c.switchover_ms_per_gib, prior.switchover_ms_per_gib);
    assert_eq!(c.base_bytes_per_gib, prior.base_bytes_per_gib);
    assert!(
        f.unidentified.iter().any(|u| u.contains("per-GiB")),
        "{:?}",
        f.unidentified
    );
    // Its link and dirty rate vary: the shares are fitted. Its remainder
    // takes all of its downtimes, so the switchover is the prior's (and
    // a post-copy switch still pauses the guest).
    assert_eq!(f.unidentified.len(), 2, "{:?}", f.unidentified);
    assert!(
        f.unidentified[1].starts_with("the switchover"),
        "{:?}",
        f.unidentified
    );
    assert_eq!(c.switchover_ms, prior.switchover_ms);
    // A post-copy switch of a 2 GiB guest still pauses it (the prior's
    // slope), where a slope fitted as 0 said "a 0 ms pause".
    let mut i = migbench_predict::Inputs {
        ram: 2.0 * (1u64 << 30) as f64,
        working_set: 0.5 * (1u64 << 30) as f64,
        dirty_rate: 50e6,
        link_bps: 1e9,
        downtime_limit_ms: 300.0,
        timeout_ms: 600_000.0,
        ..Default::default()
    };
    i.postcopy = migbench_predict::Switch::AfterPasses(2);
    let p = migbench_predict::predict(&i, &c);
    assert!(p.downtime_ms.unwrap() >= prior.switchover_ms, "{p:?}");
    // One configuration: nothing varies but the repetitions.
    let first = recs
        .iter()
        .find(|r| {
            r.outcome == migbench_model::Outcome::Completed
                && r.params.max_bandwidth == migbench_model::settings::BandwidthCap::Unlimited
        })
        .map(cell)
        .unwrap();
    let single: Vec<RunRecord> = recs.iter().filter(|r| cell(r) == first).cloned().collect();
    let s = fit_report(&single).unwrap();
    println!("{:?}", s.unidentified);
    let text = s.unidentified.join("; ");
    for what in ["per-GiB", "between QEMU's checks", "between syncs"] {
        assert!(text.contains(what), "{what}: {text}");
    }
    let sc = s.model.constants;
    assert_eq!(
        (sc.remainder_share, sc.sync_share),
        (prior.remainder_share, prior.sync_share)
    );
}
